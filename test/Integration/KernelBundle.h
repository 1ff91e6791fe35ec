//===- KernelBundle.h - load a normc bundle in tests -------------*- C++
//-*-===//
//
// The integration tests call generated kernels through their packed entry
// points directly (the runtime library has its own tests): this keeps the
// forward/backward checks independent of the runtime's validation layer.
// runAll() runs one whole call the way the runtime does (docs/abi.md).
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
using FinalizeFn = int32_t (*)(void *const *, const int64_t *);

/// The packed entry points of a kernel K (docs/abi.md); null where the
/// bundle does not export them.
struct KernelEntry {
  PackedFn packed = nullptr;     ///< __normc_K_packed
  WorkFn work = nullptr;         ///< __normc_K_work
  WorkFn workspace = nullptr;    ///< __normc_K_workspace (bytes)
  FinalizeFn finalize = nullptr; ///< __normc_K_finalize
  PackedFn prepass = nullptr;    ///< __normc_K_prepass
  WorkFn prepassWork = nullptr;  ///< __normc_K_prepass_work
};

/// Runs one whole call of `kernel` as the runtime does: allocates the
/// workspace (if the kernel has one; at least 8 bytes, aligned for double,
/// filled with NaN) and passes it after `pointers` (one per argument), runs
/// prepass items
/// [0, prepassWork), then work items [0, work), each step split into
/// `splits` contiguous ranges on as many threads and finished before the
/// next starts, then finalize. Returns the first nonzero code (the step
/// after a failing one does not run); -1 if packed or work is missing, the
/// prepass lacks its work or workspace function, or a count or size is
/// negative.
int32_t runAll(const KernelEntry &kernel, std::vector<void *> pointers,
               const std::vector<int64_t> &dims, int splits = 1);

class KernelBundle {
public:
  /// dlopens `path`; check ok().
  explicit KernelBundle(const std::string &path);
  ~KernelBundle();
  KernelBundle(const KernelBundle &) = delete;
  KernelBundle &operator=(const KernelBundle &) = delete;

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
