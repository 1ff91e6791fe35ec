//===- Context.cpp - Execution contexts -----------------------------------===//

#include "Context.h"

#include "Error.h"

normc_status normc_context::getDevice(normc_device device,
                                      normc::Device **out) {
  using namespace normc;
  if (device.type == NORMC_DEVICE_CPU) {
    *out = &cpu;
    return NORMC_OK;
  }
  std::lock_guard<std::mutex> lock(cudaMutex);
  auto it = cudaDevices.find(device.ordinal);
  if (it != cudaDevices.end()) {
    *out = it->second.get();
    return NORMC_OK;
  }
  const CudaDriver *driver = nullptr;
  if (normc_status status = loadCudaDriver(&driver))
    return status;
  int32_t count = 0;
  if (normc_status status = cudaDeviceCount(*driver, &count))
    return status;
  if (device.ordinal >= count)
    return fail(NORMC_ERROR_DEVICE_UNAVAILABLE,
                "CUDA device %d does not exist (%d device%s available)",
                device.ordinal, count, count == 1 ? "" : "s");
  auto created = std::make_unique<CudaDevice>(*driver, device.ordinal);
  *out = created.get();
  cudaDevices.emplace(device.ordinal, std::move(created));
  return NORMC_OK;
}
