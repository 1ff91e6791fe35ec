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

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

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

/// Buffers aligned to a cache line, as framework allocators give them: the
/// kernels' streaming-store path needs aligned outputs (the forward and
/// backward test bundles are compiled with --streaming-stores=always).
template <class T> struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <class U> CacheLineAllocator(const CacheLineAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(::operator new(n * sizeof(T), kAlignment));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, kAlignment); }
  template <class U> bool operator==(const CacheLineAllocator<U> &) const {
    return true;
  }
  template <class U> bool operator!=(const CacheLineAllocator<U> &) const {
    return false;
  }
};
using AlignedBytes = std::vector<uint8_t, CacheLineAllocator<uint8_t>>;

inline AlignedBytes toAligned(const std::vector<uint8_t> &bytes) {
  return AlignedBytes(bytes.begin(), bytes.end());
}

/// Test executables that generate their spec are called once at build time
/// with `--write-spec FILE`; returns true (after writing) in that case.
bool handleWriteSpec(int argc, char **argv, const std::string &spec);

} // namespace normc::test

#endif // NORMC_TEST_INTEGRATION_KERNELBUNDLE_H
