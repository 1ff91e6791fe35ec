//===- Bundle.cpp - Opening bundles ---------------------------------------===//
//
// Opening is where all bundle-level checks happen: file type, manifest
// symbols, ABI version, manifest schema and symbol resolution. A bundle that
// opens successfully can be run without further bundle-level failures.
//
//===----------------------------------------------------------------------===//

#include "Bundle.h"

#include "Error.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

namespace normc {
namespace {

// Reads the start of the file so that "not a shared library" gets a precise
// message instead of whatever dlerror() says about a text file.
normc_status checkElfFile(const char *path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(NORMC_ERROR_LOAD_FAILED, "cannot open bundle '%s': %s", path,
                std::strerror(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return fail(NORMC_ERROR_LOAD_FAILED,
                "cannot open bundle '%s': not a regular file", path);
  }
  unsigned char header[EI_NIDENT + 2] = {};
  ssize_t got = ::pread(fd, header, sizeof(header), 0);
  ::close(fd);
  if (got < static_cast<ssize_t>(sizeof(header)) ||
      std::memcmp(header, ELFMAG, SELFMAG) != 0)
    return fail(NORMC_ERROR_LOAD_FAILED,
                "'%s' is not a shared library (no ELF header)", path);
  // e_type follows e_ident and is in the file's byte order.
  unsigned type = header[EI_DATA] == ELFDATA2MSB
                      ? (header[EI_NIDENT] << 8) | header[EI_NIDENT + 1]
                      : header[EI_NIDENT] | (header[EI_NIDENT + 1] << 8);
  if (type != ET_DYN)
    return fail(NORMC_ERROR_LOAD_FAILED,
                "'%s' is not a shared library (ELF type %u, expected ET_DYN)",
                path, type);
  return NORMC_OK;
}

// Size of the symbol at `address` from the ELF symbol table, or 0 if unknown.
size_t symbolSize(const void *address) {
  Dl_info info;
  void *extra = nullptr;
  if (!dladdr1(address, &info, &extra, RTLD_DL_SYMENT) || !extra ||
      info.dli_saddr != address)
    return 0;
  return static_cast<const ElfW(Sym) *>(extra)->st_size;
}

normc_status readManifestText(normc_bundle &bundle, const char *manifest) {
  size_t size = symbolSize(manifest);
  size_t length = size ? strnlen(manifest, size) : std::strlen(manifest);
  if (size && length == size)
    return fail(NORMC_ERROR_INVALID_MANIFEST,
                "bundle '%s': invalid manifest: normc_manifest is not "
                "NUL-terminated within its %zu bytes",
                bundle.path.c_str(), size);
  bundle.manifestText.assign(manifest, length);
  return NORMC_OK;
}

normc_status resolveKernels(normc_bundle &bundle) {
  std::string missing;
  size_t numMissing = 0;
  bundle.kernels.resize(bundle.manifest.kernels.size());
  for (size_t i = 0; i < bundle.kernels.size(); ++i) {
    const KernelSpec &spec = bundle.manifest.kernels[i];
    normc_kernel &kernel = bundle.kernels[i];
    kernel.spec = &spec;
    kernel.bundle = &bundle;
    kernel.index = i;
    kernel.entry = reinterpret_cast<PackedEntryFn>(
        dlsym(bundle.handle, spec.entry.c_str()));
    kernel.work =
        reinterpret_cast<WorkFn>(dlsym(bundle.handle, spec.work.c_str()));
    if (!spec.workspace.empty()) {
      kernel.workspace = reinterpret_cast<WorkFn>(
          dlsym(bundle.handle, spec.workspace.c_str()));
      if (!kernel.workspace)
        missing += format("%s'%s' (workspace of kernel '%s')",
                          numMissing++ ? ", " : "", spec.workspace.c_str(),
                          spec.name.c_str());
    }
    if (!spec.finalize.empty()) {
      kernel.finalize = reinterpret_cast<FinalizeFn>(
          dlsym(bundle.handle, spec.finalize.c_str()));
      if (!kernel.finalize)
        missing +=
            format("%s'%s' (finalize of kernel '%s')", numMissing++ ? ", " : "",
                   spec.finalize.c_str(), spec.name.c_str());
    }
    if (!spec.prepassEntry.empty()) {
      kernel.prepass = reinterpret_cast<PackedEntryFn>(
          dlsym(bundle.handle, spec.prepassEntry.c_str()));
      kernel.prepassWork = reinterpret_cast<WorkFn>(
          dlsym(bundle.handle, spec.prepassWork.c_str()));
      if (!kernel.prepass)
        missing +=
            format("%s'%s' (prepass of kernel '%s')", numMissing++ ? ", " : "",
                   spec.prepassEntry.c_str(), spec.name.c_str());
      if (!kernel.prepassWork)
        missing += format("%s'%s' (prepass work of kernel '%s')",
                          numMissing++ ? ", " : "", spec.prepassWork.c_str(),
                          spec.name.c_str());
    }
    for (const std::string &name : spec.dims)
      kernel.dimNames.push_back(name.c_str());
    // Collect every missing symbol so one error lists them all.
    if (!kernel.entry) {
      missing +=
          format("%s'%s' (entry of kernel '%s')", numMissing++ ? ", " : "",
                 spec.entry.c_str(), spec.name.c_str());
    }
    if (!kernel.work) {
      missing +=
          format("%s'%s' (work of kernel '%s')", numMissing++ ? ", " : "",
                 spec.work.c_str(), spec.name.c_str());
    }
    if (spec.hasGpu) {
      kernel.gpuPlan = reinterpret_cast<GpuPlanFn>(
          dlsym(bundle.handle, spec.gpu.plan.c_str()));
      if (!kernel.gpuPlan)
        missing +=
            format("%s'%s' (GPU plan of kernel '%s')", numMissing++ ? ", " : "",
                   spec.gpu.plan.c_str(), spec.name.c_str());
    }
  }
  // The PTX of every listed arch, even if no kernel has GPU code: a bundle
  // that claims an arch must carry it.
  for (const std::string &arch : bundle.manifest.gpuArchs) {
    std::string symbol = "normc_gpu_ptx_" + arch;
    const char *text =
        static_cast<const char *>(dlsym(bundle.handle, symbol.c_str()));
    if (!text) {
      missing += format("%s'%s' (PTX for %s)", numMissing++ ? ", " : "",
                        symbol.c_str(), arch.c_str());
      continue;
    }
    // The driver reads the text up to its NUL; make sure there is one.
    size_t size = symbolSize(text);
    if (size && strnlen(text, size) == size)
      return fail(NORMC_ERROR_LOAD_FAILED,
                  "bundle '%s': %s is not NUL-terminated within its %zu bytes",
                  bundle.path.c_str(), symbol.c_str(), size);
    bundle.gpuPtx.push_back(GpuPtx{arch, smArchNumber(arch), text});
  }
  if (numMissing)
    return fail(NORMC_ERROR_MISSING_SYMBOL,
                "bundle '%s': missing kernel symbol%s %s", bundle.path.c_str(),
                numMissing > 1 ? "s" : "", missing.c_str());
  return NORMC_OK;
}

} // namespace

normc_status openBundle(const char *path, normc_bundle **out) {
  if (!out)
    return fail(NORMC_ERROR_INVALID_ARGUMENT, "normc_bundle_open: out is NULL");
  *out = nullptr;
  if (!path || !*path)
    return fail(NORMC_ERROR_INVALID_ARGUMENT,
                "normc_bundle_open: path is NULL or empty");
  if (normc_status status = checkElfFile(path))
    return status;

  std::unique_ptr<normc_bundle> bundle(new normc_bundle());
  bundle->path = path;
  // dlopen searches the library path for names without a slash; a bundle
  // path always means a file.
  std::string loadPath =
      std::strchr(path, '/') ? path : std::string("./") + path;
  bundle->handle = dlopen(loadPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!bundle->handle) {
    const char *reason = dlerror();
    return fail(NORMC_ERROR_LOAD_FAILED, "cannot load bundle '%s': %s", path,
                reason ? reason : "unknown dlopen error");
  }

  const void *manifest = dlsym(bundle->handle, "normc_manifest");
  const void *abiVersion = dlsym(bundle->handle, "normc_abi_version");
  if (!manifest || !abiVersion)
    return fail(NORMC_ERROR_NOT_A_BUNDLE,
                "'%s' is not a normc bundle (missing symbol%s %s)", path,
                !manifest && !abiVersion ? "s" : "",
                !manifest && !abiVersion ? "'normc_manifest' and "
                                           "'normc_abi_version'"
                : !manifest              ? "'normc_manifest'"
                                         : "'normc_abi_version'");

  size_t abiSize = symbolSize(abiVersion);
  if (abiSize && abiSize != sizeof(uint32_t))
    return fail(NORMC_ERROR_NOT_A_BUNDLE,
                "'%s' is not a normc bundle (normc_abi_version is %zu bytes, "
                "expected 4)",
                path, abiSize);
  uint32_t version = *static_cast<const uint32_t *>(abiVersion);
  if (version != NORMC_BUNDLE_ABI_VERSION)
    return fail(NORMC_ERROR_ABI_MISMATCH,
                "bundle '%s' has ABI version %u but this runtime supports ABI "
                "version %u",
                path, version, NORMC_BUNDLE_ABI_VERSION);

  if (normc_status status =
          readManifestText(*bundle, static_cast<const char *>(manifest)))
    return status;
  std::string error;
  if (!parseManifest(bundle->manifestText, bundle->manifest, error))
    return fail(NORMC_ERROR_INVALID_MANIFEST,
                "bundle '%s': invalid manifest: %s", path, error.c_str());
  if (bundle->manifest.abiVersion != version)
    return fail(NORMC_ERROR_INVALID_MANIFEST,
                "bundle '%s': invalid manifest: abi_version %u does not match "
                "the normc_abi_version symbol (%u)",
                path, bundle->manifest.abiVersion, version);

  if (normc_status status = resolveKernels(*bundle))
    return status;
  *out = bundle.release();
  return NORMC_OK;
}

} // namespace normc

normc_bundle::~normc_bundle() {
  // Modules first: they were loaded from this library's PTX.
  cudaModules.unloadAll();
  if (handle)
    dlclose(handle);
}
