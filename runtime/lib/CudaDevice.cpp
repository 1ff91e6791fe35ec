//===- CudaDevice.cpp - Kernels on a CUDA GPU -----------------------------===//

#include "CudaDevice.h"

#include "Error.h"

namespace normc {

normc_status CudaDevice::launch(const normc_kernel &kernel,
                                const LaunchArgs &) {
  return fail(NORMC_ERROR_UNSUPPORTED,
              "kernel '%s' has no CUDA code for cuda:%d: bundle ABI version "
              "%u carries CPU entry points only",
              kernel.spec->name.c_str(), ordinal, NORMC_BUNDLE_ABI_VERSION);
}

} // namespace normc
