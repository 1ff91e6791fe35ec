//===- Validate.h - Tensor descriptor validation ----------------*- C++ -*-===//
//
// Checks run arguments against a kernel signature and, on success, produces
// the packed argument and dims arrays the kernel entry expects. Kernels
// trust their arguments completely, so everything a kernel could trip over
// is rejected here with a message naming the kernel, arg and dim.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_VALIDATE_H
#define NORMC_RUNTIME_VALIDATE_H

#include "Bundle.h"

#include <cstdint>
#include <vector>

namespace normc {

struct LaunchArgs {
  /// One data pointer per manifest arg, in manifest order.
  std::vector<void *> pointers;
  /// Number of elements of each arg (the GPU functions' memref sizes).
  std::vector<int64_t> numElements;
  /// Value of each dynamic dim symbol, in manifest order.
  std::vector<int64_t> dims;
  /// The device all tensors live on.
  normc_device device = {NORMC_DEVICE_CPU, 0};
};

/// Validates `args` for `kernel`; sets the last error on failure.
normc_status validateArgs(const normc_kernel &kernel, const normc_tensor *args,
                          size_t nargs, LaunchArgs &out);

/// "cpu" or "cuda:N", for messages.
std::string deviceName(normc_device device);

} // namespace normc

#endif // NORMC_RUNTIME_VALIDATE_H
