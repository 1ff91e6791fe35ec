//===- Emulator.h - the context of one emulated GPU thread ------*- C++ -*-===//
//
// Shared with the compiler's norm-emulate-gpu-kernels pass
// (codegen/GpuEmulation.cpp), which reads these fields at fixed offsets:
// keep the layout in sync (static_asserts below).
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_TEST_GPU_EMULATOR_EMULATOR_H
#define NORMC_TEST_GPU_EMULATOR_EMULATOR_H

#include <cstddef>
#include <cstdint>

extern "C" {

struct normc_emu_thread {
  int64_t thread_id[3];
  int64_t block_id[3];
  int64_t block_dim[3];
  int64_t grid_dim[3];
  void *shared;
  void (*barrier)(normc_emu_thread *);
  float (*shuffle_down_f32)(normc_emu_thread *, float, int32_t);
  double (*shuffle_down_f64)(normc_emu_thread *, double, int32_t);
};

} // extern "C"

static_assert(offsetof(normc_emu_thread, block_id) == 24, "layout");
static_assert(offsetof(normc_emu_thread, block_dim) == 48, "layout");
static_assert(offsetof(normc_emu_thread, grid_dim) == 72, "layout");
static_assert(offsetof(normc_emu_thread, shared) == 96, "layout");
static_assert(offsetof(normc_emu_thread, barrier) == 104, "layout");
static_assert(offsetof(normc_emu_thread, shuffle_down_f32) == 112, "layout");
static_assert(offsetof(normc_emu_thread, shuffle_down_f64) == 120, "layout");

#endif // NORMC_TEST_GPU_EMULATOR_EMULATOR_H
