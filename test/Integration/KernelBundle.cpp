//===- KernelBundle.cpp - load a normc bundle in tests --------------------===//

#include "KernelBundle.h"

#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <limits>
#include <thread>

using namespace normc::test;

KernelBundle::KernelBundle(const std::string &path) {
  handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    message = std::string("cannot load bundle: ") + dlerror();
}

KernelBundle::~KernelBundle() {
  if (handle)
    dlclose(handle);
}

KernelEntry KernelBundle::kernel(const std::string &name) const {
  KernelEntry entry;
  if (!handle)
    return entry;
  auto get = [&](const char *suffix) {
    return dlsym(handle, ("__normc_" + name + suffix).c_str());
  };
  entry.packed = reinterpret_cast<PackedFn>(get("_packed"));
  entry.work = reinterpret_cast<WorkFn>(get("_work"));
  entry.workspace = reinterpret_cast<WorkFn>(get("_workspace"));
  entry.finalize = reinterpret_cast<FinalizeFn>(get("_finalize"));
  entry.prepass = reinterpret_cast<PackedFn>(get("_prepass"));
  entry.prepassWork = reinterpret_cast<WorkFn>(get("_prepass_work"));
  return entry;
}

namespace {

/// Runs items [0, items) of `fn` split into `splits` ranges on as many
/// threads; returns the first nonzero code.
int32_t runSplit(PackedFn fn, void *const *args, const int64_t *dims,
                 int64_t items, int splits) {
  if (items <= 0)
    return items < 0 ? -1 : 0;
  if (splits <= 1)
    return fn(args, dims, 0, items);
  std::vector<int32_t> codes(splits, 0);
  std::vector<std::thread> threads;
  for (int s = 0; s < splits; ++s)
    threads.emplace_back([&, s] {
      codes[s] = fn(args, dims, items * s / splits, items * (s + 1) / splits);
    });
  for (std::thread &t : threads)
    t.join();
  for (int32_t code : codes)
    if (code)
      return code;
  return 0;
}

} // namespace

int32_t normc::test::runAll(const KernelEntry &kernel,
                            std::vector<void *> pointers,
                            const std::vector<int64_t> &dims, int splits) {
  if (!kernel.packed || !kernel.work ||
      (kernel.prepass && (!kernel.prepassWork || !kernel.workspace)))
    return -1;
  static const int64_t noDims[1] = {0};
  const int64_t *d = dims.empty() ? noDims : dims.data();
  std::vector<double> workspace;
  if (kernel.workspace) {
    int64_t bytes = kernel.workspace(d);
    if (bytes < 0)
      return -1;
    // NaN, not zeros: a step that reads a slot no step wrote shows.
    workspace.assign(static_cast<size_t>(bytes + 7) / 8 + 1,
                     std::numeric_limits<double>::quiet_NaN());
    pointers.push_back(workspace.data());
  }
  if (pointers.empty())
    pointers.push_back(nullptr);
  if (kernel.prepass)
    if (int32_t code = runSplit(kernel.prepass, pointers.data(), d,
                                kernel.prepassWork(d), splits))
      return code;
  if (int32_t code =
          runSplit(kernel.packed, pointers.data(), d, kernel.work(d), splits))
    return code;
  return kernel.finalize ? kernel.finalize(pointers.data(), d) : 0;
}

void *KernelBundle::symbol(const std::string &name) const {
  return handle ? dlsym(handle, name.c_str()) : nullptr;
}

bool normc::test::handleWriteSpec(int argc, char **argv,
                                  const std::string &spec) {
  if (argc != 3 || std::strcmp(argv[1], "--write-spec") != 0)
    return false;
  std::ofstream out(argv[2]);
  out << spec;
  return true;
}
