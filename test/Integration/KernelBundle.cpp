//===- KernelBundle.cpp - load a normc bundle in tests --------------------===//

#include "KernelBundle.h"

#include <cstring>
#include <dlfcn.h>
#include <fstream>

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
  entry.packed = reinterpret_cast<PackedFn>(
      dlsym(handle, ("__normc_" + name + "_packed").c_str()));
  entry.work = reinterpret_cast<WorkFn>(
      dlsym(handle, ("__normc_" + name + "_work").c_str()));
  return entry;
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
