//===- Device.h - Execution device abstraction ------------------*- C++ -*-===//
//
// A Device runs one validated kernel launch. The CPU device calls the
// bundle's packed entry on a thread pool; the CUDA device loads the PTX
// carried by the bundle and launches the GPU functions its plan lists.
// Validation is device independent and happens before a device is chosen.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_DEVICE_H
#define NORMC_RUNTIME_DEVICE_H

#include "Validate.h"

namespace normc {

struct LaunchOptions {
  /// The CUstream to enqueue on (NULL: the default stream); ignored by the
  /// CPU.
  void *stream = nullptr;
  /// Whether to wait for the work to complete. The CPU always does.
  bool wait = true;
};

class Device {
public:
  virtual ~Device() = default;

  /// Runs (or enqueues) every work item of `kernel`. Must be safe to call
  /// from several threads at once. Sets the last error on failure.
  virtual normc_status launch(const normc_kernel &kernel,
                              const LaunchArgs &args,
                              const LaunchOptions &options) = 0;
};

/// The meaning of a kernel's (or GPU plan's) nonzero return code, for
/// messages: "NORMC_ERR_BAD_SHAPE: ..." or "unknown code".
const char *kernelCodeName(int32_t code);

} // namespace normc

#endif // NORMC_RUNTIME_DEVICE_H
