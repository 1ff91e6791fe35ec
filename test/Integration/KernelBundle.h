//===- KernelBundle.h - load a normc bundle in tests -------------*- C++
//-*-===//
//
// The integration tests call generated kernels through their packed entry
// points directly (the runtime library has its own tests): this keeps the
// forward/backward checks independent of the runtime's validation layer.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_INTEGRATION_KERNELBUNDLE_H
#define NORMC_TEST_INTEGRATION_KERNELBUNDLE_H

#include <cstdint>
#include <string>

namespace normc::test {

using PackedFn = int32_t (*)(void *const *, const int64_t *, int64_t, int64_t);
using WorkFn = int64_t (*)(const int64_t *);

struct KernelEntry {
  PackedFn packed = nullptr;
  WorkFn work = nullptr;
};

class KernelBundle {
public:
  /// dlopens `path`; check ok().
  explicit KernelBundle(const std::string &path);
  ~KernelBundle();
  KernelBundle(const KernelBundle &) = delete;
  KernelBundle &operator=(const KernelBundle &) = delete;

  using WorkspaceFn = int64_t (*)(const int64_t *);

  bool ok() const { return handle != nullptr; }
  /// Any exported symbol (null when absent).
  void *symbol(const std::string &name) const;
  const std::string &error() const { return message; }
  KernelEntry kernel(const std::string &name) const;

private:
  void *handle = nullptr;
  std::string message;
};

/// Test executables that generate their spec are called once at build time
/// with `--write-spec FILE`; returns true (after writing) in that case.
bool handleWriteSpec(int argc, char **argv, const std::string &spec);

} // namespace normc::test

#endif // NORMC_TEST_INTEGRATION_KERNELBUNDLE_H
