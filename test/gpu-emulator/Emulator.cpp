//===- Emulator.cpp - a CUDA driver that runs normc kernels on the CPU ----===//
//
// Loaded by the runtime through $NORMC_CUDA_DRIVER in place of libcuda.so.1
// so that normc's GPU kernels run, bit for bit as compiled (minus the PTX
// backend), on machines without a GPU:
//
//  - "device memory" is host memory, so device pointers are host pointers;
//  - cuModuleLoadData receives a bundle's `normc_gpu_ptx_<arch>` text; the
//    bundle that holds it (dladdr) must have been compiled with
//    `normc --gpu-emulation`, which adds `__normc_emu_<kernel>_launch`;
//  - cuLaunchKernel runs every block in turn, its threads as fibers
//    (ucontext): a barrier switches to the next thread until all have
//    reached it, exactly the CUDA rule; warp shuffles exchange through a
//    per-block buffer between two barriers (the kernels shuffle uniformly);
//  - streams execute immediately, events record a host clock.
//
// It emulates a device of compute capability $NORMC_EMU_CC (default 90).
//
//===----------------------------------------------------------------------===//

#include "Emulator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <string>
#include <ucontext.h>
#include <vector>

namespace {

using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kInvalidImage = 200, kInvalidHandle = 400, kNotFound = 500,
                   kLaunchFailed = 719;

struct Module {
  void *library = nullptr;
};
struct Function {
  void (*launch)(void **params, normc_emu_thread *thread) = nullptr;
};
struct Event {
  double seconds = 0;
};

std::mutex launchMutex;
int contextToken;

//===----------------------------------------------------------------------===//
// Blocks of fibers
//===----------------------------------------------------------------------===//

constexpr size_t kStackBytes = 64 * 1024;
constexpr int kMaxThreads = 1024;

struct Fiber {
  normc_emu_thread thread; // first: the kernel's context pointer is a Fiber*
  ucontext_t context;
  std::vector<char> stack;
  bool done = false;
  bool atBarrier = false;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  Fiber *current = nullptr;
  std::vector<double> shared = std::vector<double>(128);
  std::vector<double> lanes = std::vector<double>(kMaxThreads);
  void (*launch)(void **, normc_emu_thread *) = nullptr;
  void **params = nullptr;
  std::string error;
};

Block *activeBlock = nullptr;

void barrier(normc_emu_thread *thread) {
  Fiber *fiber = reinterpret_cast<Fiber *>(thread);
  fiber->atBarrier = true;
  swapcontext(&fiber->context, &activeBlock->scheduler);
}

int64_t flatThread(const normc_emu_thread *t) {
  return t->thread_id[0] +
         t->block_dim[0] *
             (t->thread_id[1] + t->block_dim[1] * t->thread_id[2]);
}

template <typename T>
T shuffleDown(normc_emu_thread *thread, T value, int32_t offset) {
  int64_t self = flatThread(thread);
  activeBlock->lanes[self] = static_cast<double>(value);
  barrier(thread);
  int64_t lane = self % 32, source = self + offset;
  int64_t count =
      thread->block_dim[0] * thread->block_dim[1] * thread->block_dim[2];
  T result = value;
  if (lane + offset < 32 && source < count)
    result = static_cast<T>(activeBlock->lanes[source]);
  barrier(thread); // the buffer is reused by the next shuffle
  return result;
}
float shuffleF32(normc_emu_thread *t, float v, int32_t o) {
  return shuffleDown(t, v, o);
}
double shuffleF64(normc_emu_thread *t, double v, int32_t o) {
  return shuffleDown(t, v, o);
}

void fiberMain(unsigned high, unsigned low) {
  Fiber *fiber = reinterpret_cast<Fiber *>(
      (static_cast<uintptr_t>(high) << 32) | static_cast<uintptr_t>(low));
  activeBlock->launch(activeBlock->params, &fiber->thread);
  fiber->done = true;
  swapcontext(&fiber->context, &activeBlock->scheduler);
}

/// Runs one block to completion; false (with block.error) on a barrier
/// that not every thread reaches.
bool runBlock(Block &block) {
  for (Fiber &fiber : block.fibers) {
    fiber.done = false;
    fiber.atBarrier = false;
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = fiber.stack.data();
    fiber.context.uc_stack.ss_size = fiber.stack.size();
    fiber.context.uc_link = nullptr;
    uintptr_t address = reinterpret_cast<uintptr_t>(&fiber);
    makecontext(&fiber.context, reinterpret_cast<void (*)()>(fiberMain), 2,
                static_cast<unsigned>(address >> 32),
                static_cast<unsigned>(address & 0xffffffffu));
  }
  while (true) {
    size_t finished = 0, waiting = 0;
    for (Fiber &fiber : block.fibers) {
      if (fiber.done) {
        ++finished;
        continue;
      }
      fiber.atBarrier = false;
      block.current = &fiber;
      swapcontext(&block.scheduler, &fiber.context);
      if (fiber.done)
        ++finished;
      else
        ++waiting;
    }
    if (waiting == 0)
      return true;
    if (finished != 0) {
      block.error = "barrier not reached by every thread of the block";
      return false;
    }
  }
}

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

extern "C" {

CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return kSuccess;
}
CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0)
    return 101;
  *device = 0;
  return kSuccess;
}
CUresult cuDeviceGetName(char *name, int length, int) {
  std::snprintf(name, length, "normc GPU emulator");
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  const char *cc = std::getenv("NORMC_EMU_CC");
  int capability = cc ? std::atoi(cc) : 90;
  switch (attribute) {
  case 75: // compute capability major
    *value = capability / 10;
    break;
  case 76: // minor
    *value = capability % 10;
    break;
  case 16: // multiprocessors
    *value = 1;
    break;
  default:
    *value = 0;
  }
  return kSuccess;
}
CUresult cuGetErrorName(CUresult error, const char **name) {
  *name = error == kSuccess ? "CUDA_SUCCESS" : "CUDA_ERROR_EMULATOR";
  return kSuccess;
}
CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = error == kSuccess ? "no error" : "emulator error";
  return kSuccess;
}

CUresult cuDevicePrimaryCtxRetain(void **context, int) {
  *context = &contextToken;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRelease(int) { return kSuccess; }
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
CUresult cuCtxPushCurrent(void *) { return kSuccess; }
CUresult cuCtxPushCurrent_v2(void *) { return kSuccess; }
CUresult cuCtxPopCurrent(void **context) {
  if (context)
    *context = &contextToken;
  return kSuccess;
}
CUresult cuCtxPopCurrent_v2(void **context) { return cuCtxPopCurrent(context); }
CUresult cuCtxSetCurrent(void *) { return kSuccess; }
CUresult cuCtxGetCurrent(void **context) {
  *context = &contextToken;
  return kSuccess;
}
CUresult cuCtxSynchronize() { return kSuccess; }

CUresult cuModuleLoadData(Module **module, const void *image) {
  Dl_info info;
  if (!image || !dladdr(image, &info) || !info.dli_fname)
    return kInvalidImage;
  void *library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (!library)
    return kInvalidImage;
  *module = new Module{library};
  return kSuccess;
}
CUresult cuModuleLoadDataEx(Module **module, const void *image, unsigned,
                            void *, void **) {
  return cuModuleLoadData(module, image);
}
CUresult cuModuleUnload(Module *module) {
  if (!module)
    return kInvalidHandle;
  dlclose(module->library);
  delete module;
  return kSuccess;
}
CUresult cuModuleGetFunction(Function **function, Module *module,
                             const char *name) {
  if (!module)
    return kInvalidHandle;
  std::string symbol = std::string("__normc_emu_") + name + "_launch";
  void *entry = dlsym(module->library, symbol.c_str());
  if (!entry)
    return kNotFound;
  *function = new Function{
      reinterpret_cast<void (*)(void **, normc_emu_thread *)>(entry)};
  return kSuccess;
}

CUresult cuLaunchKernel(Function *function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned, void *, void **params,
                        void **extra) {
  if (!function || extra)
    return kInvalidValue;
  uint64_t threads = uint64_t(blockX) * blockY * blockZ;
  if (threads == 0 || threads > kMaxThreads || gridX == 0 || gridY == 0 ||
      gridZ == 0)
    return kInvalidValue;
  std::lock_guard<std::mutex> lock(launchMutex);
  Block block;
  block.launch = function->launch;
  block.params = params;
  block.fibers.resize(threads);
  for (Fiber &fiber : block.fibers)
    fiber.stack.resize(kStackBytes);
  activeBlock = &block;
  for (unsigned z = 0; z < gridZ; ++z)
    for (unsigned y = 0; y < gridY; ++y)
      for (unsigned x = 0; x < gridX; ++x) {
        std::fill(block.shared.begin(), block.shared.end(), 0.0);
        uint64_t index = 0;
        for (unsigned tz = 0; tz < blockZ; ++tz)
          for (unsigned ty = 0; ty < blockY; ++ty)
            for (unsigned tx = 0; tx < blockX; ++tx) {
              normc_emu_thread &t = block.fibers[index++].thread;
              t = normc_emu_thread{{tx, ty, tz},
                                   {x, y, z},
                                   {blockX, blockY, blockZ},
                                   {gridX, gridY, gridZ},
                                   block.shared.data(),
                                   barrier,
                                   shuffleF32,
                                   shuffleF64};
            }
        if (!runBlock(block)) {
          std::fprintf(stderr, "gpu emulator: %s\n", block.error.c_str());
          activeBlock = nullptr;
          return kLaunchFailed;
        }
      }
  activeBlock = nullptr;
  return kSuccess;
}

CUresult cuStreamCreate(void **stream, unsigned) {
  *stream = nullptr;
  return kSuccess;
}
CUresult cuStreamDestroy(void *) { return kSuccess; }
CUresult cuStreamDestroy_v2(void *) { return kSuccess; }
CUresult cuStreamSynchronize(void *) { return kSuccess; }

CUresult cuMemAlloc_v2(uint64_t *pointer, size_t bytes) {
  void *memory = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!memory)
    return kOutOfMemory;
  *pointer = reinterpret_cast<uint64_t>(memory);
  return kSuccess;
}
CUresult cuMemFree_v2(uint64_t pointer) {
  std::free(reinterpret_cast<void *>(pointer));
  return kSuccess;
}
CUresult cuMemAllocAsync(uint64_t *pointer, size_t bytes, void *) {
  return cuMemAlloc_v2(pointer, bytes);
}
CUresult cuMemFreeAsync(uint64_t pointer, void *) {
  return cuMemFree_v2(pointer);
}
CUresult cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes) {
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes) {
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes) {
  std::memmove(reinterpret_cast<void *>(dst),
               reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes,
                              void *) {
  return cuMemcpyDtoD_v2(dst, src, bytes);
}
CUresult cuMemsetD8_v2(uint64_t dst, unsigned char value, size_t bytes) {
  std::memset(reinterpret_cast<void *>(dst), value, bytes);
  return kSuccess;
}

CUresult cuEventCreate(Event **event, unsigned) {
  *event = new Event();
  return kSuccess;
}
CUresult cuEventDestroy(Event *event) {
  delete event;
  return kSuccess;
}
CUresult cuEventDestroy_v2(Event *event) { return cuEventDestroy(event); }
CUresult cuEventRecord(Event *event, void *) {
  event->seconds = now();
  return kSuccess;
}
CUresult cuEventSynchronize(Event *) { return kSuccess; }
CUresult cuEventElapsedTime(float *ms, Event *start, Event *end) {
  *ms = static_cast<float>((end->seconds - start->seconds) * 1e3);
  return kSuccess;
}

} // extern "C"
