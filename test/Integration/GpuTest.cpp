//===- GpuTest.cpp - GPU kernels through the runtime, on the GPU emulator -===//
//
// Every configuration of TestConfigs is compiled with `norm.backward` and
// `normc --gpu-arch=sm_90 --gpu-emulation` (see CMakeLists), so the bundle
// holds each kernel's PTX, its host plan function and host copies of the
// GPU function bodies. The test loads the GPU emulator
// (test/gpu-emulator) as the CUDA driver ($NORMC_CUDA_DRIVER) and runs the
// kernels with normc_run on tensors of device {NORMC_DEVICE_CUDA, 0}: the
// runtime calls the plan, allocates the workspace and issues the launches,
// which the emulator runs block by block, each GPU thread a fiber. Emulated
// device memory is host memory, so tensors are host buffers (256-byte
// aligned as cuMemAlloc's, followed by guard bytes that must stay intact).
//
// What is checked:
//   * every configuration, forward: y and every saved/running statistic
//     against the float64 reference; backward: dx, dgamma and dbeta against
//     the float64 gradient from exact statistics (the kernel gets the saved
//     statistics rounded to their type, as a forward kernel stores them);
//     both after rounding the reference to the output type, with
//     torch.testing's default tolerances and the data sets of ForwardTest
//     and BackwardTest (random, large mean, constant, near-max, tiny
//     variance), on sizes chosen for the paths of the GPU schedule (see
//     Sizes below); failures name the statistic and data set of the worst
//     element;
//   * unaligned buffers (the scalar fallback of the vector path);
//   * determinism: repeated runs (normc_run and normc_run_async) give
//     bitwise identical outputs on the split and dgamma/dbeta paths;
//   * the forward's saved statistics feed the backward, both on the GPU;
//   * a zero-size batch and error reporting: a kernel without GPU code on
//     the CUDA device, and sizes the plan rejects (GroupNorm channels not
//     divisible by the groups, BatchNorm training on one value per
//     channel), which report the runtime's error like the CPU does.
//
//===----------------------------------------------------------------------===//

#include "KernelBundle.h"
#include "RuntimeConfigs.h"
#include "TestConfigs.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include "normc/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

using namespace normc::ref;
using namespace normc::test;

namespace normc::test {
/// gtest prints parameters in failures: the name, not the struct's bytes.
void PrintTo(const Config &c, std::ostream *os) { *os << c.name(); }
} // namespace normc::test

namespace {

//===----------------------------------------------------------------------===//
// Sizes
//===----------------------------------------------------------------------===//

/// The sizes of the test plan, after GpuEmitter::schedule
/// (codegen/GpuKernels.cpp). m is the number of elements one statistic
/// reduces: a warp (32 threads) per statistic and 8 statistics per block
/// while m <= 1024, then 128 threads (2 statistics per block) up to 4096,
/// 256 threads up to 16384, 512 beyond. When fewer than 256 blocks of
/// statistics have m >= 16384 each, the plan splits every statistic over K
/// blocks: a partials launch, then an apply launch that merges the partials
/// (K up to the outer reduced extent when there are outer reduced dims,
/// else ceil(m / (threads x vector width)) chunks of the inner dim; about
/// 1024 blocks at most). The contiguous inner dim takes 128-bit vectors when
/// it is a multiple of the vector width (4 f32, 8 f16/bf16, 2 f64) and every
/// buffer is 16-byte aligned, scalar code otherwise. The backward adds the
/// dgamma/dbeta partials and finalize launches: one thread per gamma
/// element and chunk of the other elements (up to 1024 chunks of 16 or
/// more).
///
/// Channel ops run as [N, C, S] (NCS) or [N, S, C] (NSC) with C = 8, so m
/// is N*S for BatchNorm (8 statistics), S for InstanceNorm (N*8 of them)
/// and 2*S for GroupNorm (N*4). NCS statistics are contiguous along S
/// (BatchNorm and GroupNorm have an outer reduced dim: N, or a group's 2
/// channels); NSC ones are strided (scalar), except GroupNorm's, whose inner
/// dim is a group's 2 channels and outer reduced dim S.
///
/// The emulator runs every GPU thread as a fiber (some 40 us of CPU a thread
/// that reduces, 3 us one that does not), so the sizes stay small: every
/// configuration runs the sizes marked kEvery; those marked kOneVariant run
/// on one of the four affine/eps variants of each (op, layout, dtype), the
/// variant changing with the dtype (and every f64 configuration); the
/// longer NSC and 65537-element split paths, which launch more blocks, run
/// on one configuration each (longCases).

enum Tier { kEvery, kOneVariant };

/// A size of the test plan and the GPU path it is there for.
struct GpuShape {
  std::vector<int64_t> dims; // row ops: {rows, m}; channel ops: {N, S}
  const char *path;
  Tier tier = kEvery;
  bool ncsOnly = false; // channel ops: run on the NCS layout only
};

const std::vector<GpuShape> &rowShapes() {
  static const std::vector<GpuShape> shapes = {
      {{1, 1}, "warp per row, a single element"},
      {{7, 3}, "warp per row, 7 of the block's 8 rows, scalar"},
      {{9, 17}, "warp per row, 2 blocks (1 valid row in the second), scalar"},
      {{4, 1024}, "warp per row, 128-bit vectors"},
      {{5, 1151}, "128 threads x 2 rows a block, odd: scalar"},
      {{3, 4096}, "128 threads x 2 rows a block, 128-bit vectors"},
      {{2, 12288}, "256 threads a row, 128-bit vectors"},
      {{1, 16384},
       "256 threads, split along the row into 8-32 blocks, 128-bit vectors",
       kOneVariant},
      {{2, 16385},
       "512 threads, split along the row into 5-17 blocks, odd: scalar, "
       "short last split",
       kOneVariant},
  };
  return shapes;
}

const std::vector<GpuShape> &channelShapes() {
  static const std::vector<GpuShape> shapes = {
      {{1, 1},
       "one element a statistic (not BatchNorm training): warp per "
       "statistic"},
      {{2, 3}, "warp per statistic, scalar"},
      {{3, 17}, "warp per statistic, scalar"},
      {{2, 256}, "warp per statistic, NCS: 128-bit vectors"},
      {{1, 1151}, "128 threads (GroupNorm m 2302), scalar"},
      {{1, 4096},
       "BatchNorm, InstanceNorm: 128 threads, GroupNorm m 8192: "
       "256 threads; NCS: 128-bit vectors"},
      {{2, 4096},
       "BatchNorm m 8192 over N = 2, GroupNorm m 8192: 256 threads; "
       "InstanceNorm: 16 statistics",
       kOneVariant},
      {{2, 8192},
       "BatchNorm m 16384: split over N, 2 blocks a channel; GroupNorm m "
       "16384: split over a group's 2 channels; InstanceNorm: 256 threads",
       kOneVariant,
       /*ncsOnly=*/true},
  };
  return shapes;
}

/// Whether `c` is the variant of its (op, layout, dtype) that runs the
/// kOneVariant sizes.
bool runsOneVariantSizes(const Config &c) {
  if (c.dtype == DType::F64)
    return true;
  int variant = 2 * c.affine + c.epsOutside;
  return variant == ((int)c.op + (int)c.dtype + c.channelsLast) % 4;
}

/// A longer split path and the configuration it runs on.
struct LongCase {
  Config c;
  std::vector<int64_t> shape;
  const char *path;
};

void PrintTo(const LongCase &lc, std::ostream *os) {
  *os << lc.c.name() << " " << shapeText(lc.shape);
}

/// Split paths whose plans launch more blocks (1-3 s each on the emulator),
/// forward and backward on one configuration each. GroupNorm NSC with
/// C = 8 is left out: its split is along S, into about 1024 blocks of 256
/// threads of which 2 have elements (a group's 2 channels), some 25 s on
/// the emulator; the [1, 16, 4096] case covers that split.
const std::vector<LongCase> &longCases() {
  static const std::vector<LongCase> cases = {
      {{Op::LayerNorm, DType::BF16, true, true, false},
       {2, 65537},
       "LayerNorm: 17 blocks a row, scalar, short last split"},
      {{Op::BatchNormTrain, DType::F16, true, false, true},
       {2, 8192, kChannels},
       "NSC BatchNorm m 16384: split along N*S (8 blocks a channel), "
       "strided"},
      {{Op::BatchNormTrain, DType::BF16, false, true, false},
       {1, kChannels, 20000},
       "NCS BatchNorm, N = 1: 512 threads, split along S (5 blocks), "
       "128-bit vectors"},
      {{Op::InstanceNorm, DType::F32, true, false, true},
       {1, 16384, kChannels},
       "NSC InstanceNorm m 16384: split along S (16 blocks), strided"},
      {{Op::GroupNorm, DType::F64, true, true, true},
       {1, 16, 4096},
       "NSC GroupNorm, C = 4096: m 16384 split along S (16 blocks), a "
       "group's 1024 channels in 128-bit vectors"},
  };
  return cases;
}

std::vector<int64_t> xShape(const Config &c, const std::vector<int64_t> &d) {
  if (!c.isChannelOp())
    return d;
  return c.channelsLast ? std::vector<int64_t>{d[0], d[1], kChannels}
                        : std::vector<int64_t>{d[0], kChannels, d[1]};
}

/// x shapes of `c` with the path each exercises.
std::vector<std::pair<std::vector<int64_t>, const char *>>
gpuShapesFor(const Config &c) {
  std::vector<std::pair<std::vector<int64_t>, const char *>> shapes;
  for (const GpuShape &s : c.isChannelOp() ? channelShapes() : rowShapes()) {
    if (s.ncsOnly && c.channelsLast)
      continue;
    if (s.tier == kOneVariant && !runsOneVariantSizes(c))
      continue;
    // Running statistics need two values per channel (as PyTorch); the
    // plan rejects one (GpuErrors below).
    if (c.op == Op::BatchNormTrain && s.dims[0] * s.dims[1] < 2)
      continue;
    // Configurations with a static innermost dim (rows of 3, channels-last
    // C = 12, ...) run the same sizes with that dim fixed.
    shapes.push_back({withStaticInner(c, xShape(c, s.dims)), s.path});
  }
  return shapes;
}

//===----------------------------------------------------------------------===//
// Problems: inputs and float64 expectations
//===----------------------------------------------------------------------===//

void eraseNearMax(std::vector<Pattern> &patterns) {
  patterns.erase(
      std::remove(patterns.begin(), patterns.end(), Pattern::NearMax),
      patterns.end());
}

std::vector<Pattern> allPatterns() {
  return {Pattern::Normal, Pattern::LargeMean, Pattern::Constant,
          Pattern::NearMax, Pattern::TinyVariance};
}

/// The data sets of ForwardTest (`backward` false) and BackwardTest, rotated
/// by `rotation`: statistic s follows pattern (s + rotation) % 5, so sizes
/// with a single statistic (a long row) also see every set across the
/// configurations.
std::vector<Pattern> patternsFor(const Config &c, bool backward,
                                 size_t rotation) {
  // BatchNorm inference takes statistics, not data: keep x ordinary.
  if (c.op == Op::BatchNormInfer)
    return {Pattern::Normal};
  std::vector<Pattern> patterns = allPatterns();
  // As BackwardTest: f64 gradients are checked at f64's tolerance, which
  // the reference's own statistics cannot meet on large-mean or tiny-spread
  // sets; those are covered in f32 and 16-bit.
  if (backward && c.dtype == DType::F64)
    patterns = {Pattern::Normal, Pattern::Constant, Pattern::NearMax};
  // Known limitation of the GPU kernels (docs/gpu.md): f64 data within a
  // factor 2 of the largest double overflows the f64 statistics (the CPU
  // kernels redo such statistics scaled by 2^-600; the GPU ones do not yet).
  // f32/f16/bf16 near-max data is covered: their statistics are f64.
  if (c.dtype == DType::F64)
    eraseNearMax(patterns);
  std::rotate(patterns.begin(), patterns.begin() + rotation % patterns.size(),
              patterns.end());
  return patterns;
}

/// Inputs of one case and the float64 forward with exact statistics.
struct Problem {
  Config c;
  std::vector<int64_t> shape;
  NormDesc desc;
  DType stat;
  std::vector<Pattern> patterns; // statistic s follows patterns[s % size]
  std::vector<double> x, gamma, beta, dy, runMean, runVar;
  ForwardResult ref;

  Problem(const Config &c, const std::vector<int64_t> &shape,
          const std::vector<Pattern> &patterns, uint64_t seed)
      : c(c), shape(shape), desc(descFor(c, shape)),
        stat(c.dtype == DType::F64 ? DType::F64 : DType::F32),
        patterns(patterns) {
    x = generateInput(desc, c.dtype, patterns, seed);
    int64_t numStats = numel(statsShape(desc));
    int64_t numAffine = numel(gammaShape(desc));
    gamma = randomNormal(numAffine, seed + 1, c.dtype, 1.0, 0.5);
    beta = randomNormal(numAffine, seed + 2, c.dtype, 0.0, 1.0);
    dy = randomNormal(numel(shape), seed + 3, c.dtype);
    runMean = randomNormal(numStats, seed + 4, stat);
    runVar = randomUniform(numStats, seed + 5, 0.25, 4.0, stat);
    ForwardInputs in =
        normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
    ref = forward(desc, in);
  }

  std::vector<int64_t> statShape() const { return statsShape(desc); }
  std::vector<int64_t> affineShape() const { return gammaShape(desc); }

  /// For failure messages: the statistic and data set element `index` of
  /// `output` belongs to ("" for dgamma/dbeta, which sum over statistics).
  std::string where(const Arg &output, int64_t index) const {
    int64_t count = numel(output.shape), stat = -1;
    if (index < 0)
      return "";
    if (count == numel(shape))
      stat = statsIndexMap(desc)[index];
    else if (output.name.find("gamma") == std::string::npos &&
             output.name.find("beta") == std::string::npos)
      stat = index;
    if (stat < 0)
      return "";
    return "; worst element in statistic " + std::to_string(stat) +
           " (data set " + patternName(patterns[stat % patterns.size()]) + ")";
  }
  /// The forward kernel's args: x, [gamma, [beta]], [running mean/var],
  /// then y, [mean], rstd (none for BatchNorm inference), [running outputs],
  /// outputs carrying the reference.
  std::vector<Arg> forwardArgs() const {
    std::vector<Arg> a = {{"x", false, c.dtype, shape, x}};
    if (c.affine) {
      a.push_back({"gamma", false, c.dtype, affineShape(), gamma});
      if (c.hasBias())
        a.push_back({"beta", false, c.dtype, affineShape(), beta});
    }
    if (c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer) {
      a.push_back({"running_mean", false, stat, statShape(), runMean});
      a.push_back({"running_var", false, stat, statShape(), runVar});
    }
    a.push_back({"y", true, c.dtype, shape, ref.y});
    if (c.op != Op::BatchNormInfer) {
      if (c.op != Op::RMSNorm)
        a.push_back({"mean", true, stat, statShape(), ref.mean});
      a.push_back({"rstd", true, stat, statShape(), ref.rstd});
    }
    if (c.op == Op::BatchNormTrain) {
      a.push_back(
          {"running_mean_out", true, stat, statShape(), ref.runningMean});
      a.push_back({"running_var_out", true, stat, statShape(), ref.runningVar});
    }
    return a;
  }

  /// The backward kernel's args: dy, x, [gamma], then mean and var
  /// (BatchNorm inference: the given ones) or [mean] and rstd (what a
  /// forward kernel saves: the exact ones rounded to the statistics type),
  /// then dx, [dgamma], [dbeta] carrying the float64 gradient from exact
  /// statistics. Empty with `error` set when the reference fails.
  std::vector<Arg> backwardArgs(std::string &error) const {
    BackwardInputs in =
        normc::ref::backwardInputs(desc, dy, x, gamma, ref, runMean, runVar);
    BackwardResult grads = backward(desc, in);
    if (!grads.ok()) {
      error = "reference backward: " + grads.error;
      return {};
    }
    std::vector<Arg> a = {{"dy", false, c.dtype, shape, dy},
                          {"x", false, c.dtype, shape, x}};
    if (c.affine)
      a.push_back({"gamma", false, c.dtype, affineShape(), gamma});
    if (c.op == Op::BatchNormInfer) {
      a.push_back({"mean", false, stat, statShape(), runMean});
      a.push_back({"var", false, stat, statShape(), runVar});
    } else {
      if (desc.center)
        a.push_back(
            {"mean", false, stat, statShape(), roundToDType(ref.mean, stat)});
      a.push_back(
          {"rstd", false, stat, statShape(), roundToDType(ref.rstd, stat)});
    }
    a.push_back({"dx", true, c.dtype, shape, grads.dx});
    if (desc.hasGamma)
      a.push_back({"dgamma", true, c.dtype, affineShape(), grads.dgamma});
    if (desc.hasBeta)
      a.push_back({"dbeta", true, c.dtype, affineShape(), grads.dbeta});
    return a;
  }
};

//===----------------------------------------------------------------------===//
// Calls on the emulated device
//===----------------------------------------------------------------------===//

constexpr size_t kAlign = 256, kGuard = 64;
constexpr uint8_t kFill = 0xA5;

/// "Device" memory: a host buffer at `misalign` bytes past a 256-byte
/// boundary, pre-filled with kFill and followed by kGuard bytes of it.
class DeviceBuffer {
public:
  DeviceBuffer(size_t bytes, size_t misalign)
      : bytes(bytes), storage(bytes + misalign + kGuard + kAlign, kFill) {
    uintptr_t base = reinterpret_cast<uintptr_t>(storage.data());
    uintptr_t aligned = (base + kAlign - 1) / kAlign * kAlign;
    data = storage.data() + (aligned - base) + misalign;
  }
  bool guardIntact() const {
    return std::all_of(data + bytes, data + bytes + kGuard,
                       [](uint8_t b) { return b == kFill; });
  }
  bool untouched() const {
    return std::all_of(data, data + bytes + kGuard,
                       [](uint8_t b) { return b == kFill; });
  }
  std::vector<uint8_t> contents() const {
    return std::vector<uint8_t>(data, data + bytes);
  }

  size_t bytes;
  uint8_t *data;

private:
  std::vector<uint8_t> storage;
};

constexpr normc_device kCuda0 = {NORMC_DEVICE_CUDA, 0};

/// The buffers and descriptors of one call on cuda:0 (or another device).
struct DeviceCall {
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<normc_tensor> tensors;

  /// `misalign`: bytes past the 16-byte boundary of every buffer.
  explicit DeviceCall(const std::vector<Arg> &args, size_t misalign = 0,
                      normc_device device = kCuda0) {
    for (const Arg &arg : args) {
      size_t bytes = numel(arg.shape) * dtypeSize(arg.dtype);
      buffers.push_back(std::make_unique<DeviceBuffer>(bytes, misalign));
      if (!arg.output)
        storeAs(arg.dtype, arg.values, buffers.back()->data);
    }
    for (size_t i = 0; i < args.size(); ++i) {
      normc_tensor t{};
      t.data = buffers[i]->data;
      t.dtype = runtimeDType(args[i].dtype);
      t.rank = args[i].shape.size();
      t.shape = args[i].shape.data();
      t.device = device;
      tensors.push_back(t);
    }
  }

  normc_status run(normc_context *ctx, const normc_kernel *kernel,
                   bool async = false) {
    if (async)
      return normc_run_async(ctx, kernel, tensors.data(), tensors.size(),
                             nullptr);
    return normc_run(ctx, kernel, tensors.data(), tensors.size());
  }
  bool guardsIntact() const {
    return std::all_of(buffers.begin(), buffers.end(),
                       [](const auto &b) { return b->guardIntact(); });
  }
  bool outputsUntouched(const std::vector<Arg> &args) const {
    for (size_t i = 0; i < args.size(); ++i)
      if (args[i].output && !buffers[i]->untouched())
        return false;
    return true;
  }
  std::vector<std::vector<uint8_t>>
  outputBytes(const std::vector<Arg> &args) const {
    std::vector<std::vector<uint8_t>> out;
    for (size_t i = 0; i < args.size(); ++i)
      if (args[i].output)
        out.push_back(buffers[i]->contents());
    return out;
  }
};

//===----------------------------------------------------------------------===//
// The bundle, the emulated device and the record of errors
//===----------------------------------------------------------------------===//

normc_bundle *bundle = nullptr;
normc_context *context = nullptr;
std::string setupError;
WorstErrors forwardWorst, backwardWorst;

std::string lastError() { return normc_last_error(); }

class GpuEnvironment : public ::testing::Environment {
public:
  void SetUp() override {
    // Before the first runtime call that loads a driver.
    setenv("NORMC_CUDA_DRIVER", NORMC_GPU_EMULATOR, 1);
    int32_t devices = 0;
    if (normc_device_count(NORMC_DEVICE_CUDA, &devices) != NORMC_OK ||
        devices != 1) {
      setupError = "the GPU emulator " NORMC_GPU_EMULATOR
                   " is not a usable driver: " +
                   lastError();
      return;
    }
    if (normc_bundle_open(NORMC_GPU_TEST_BUNDLE, &bundle) != NORMC_OK) {
      setupError = lastError();
      return;
    }
    normc_context_options options;
    normc_context_options_init(&options);
    options.num_threads = 1;
    options.pin_threads = 0;
    if (normc_context_create(&options, &context) != NORMC_OK)
      setupError = lastError();
  }
  void TearDown() override {
    forwardWorst.print("gpu forward: worst errors against the float64 "
                       "reference (after rounding to the output type):");
    backwardWorst.print("gpu backward: worst errors against the float64 "
                        "gradient (after rounding to the output type):");
    normc_context_destroy(context);
    context = nullptr;
    normc_bundle_close(bundle);
    bundle = nullptr;
  }
};

bool ready() { return bundle && context; }

const normc_kernel *findKernel(const std::string &name) {
  const normc_kernel *kernel = nullptr;
  if (normc_bundle_find_kernel(bundle, name.c_str(), &kernel) != NORMC_OK)
    return nullptr;
  return kernel;
}

/// Compares every output of `call` with the reference in `args`; records
/// the errors per output name and dtype in `worst` when given.
void compareOutputs(const std::vector<Arg> &args, const DeviceCall &call,
                    WorstErrors *worst, const Problem *p = nullptr) {
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg &o = args[i];
    if (!o.output)
      continue;
    std::vector<double> expected = roundToDType(o.values, o.dtype);
    CompareReport report = compareBuffer(o.dtype, call.buffers[i]->data,
                                         expected.size(), expected);
    EXPECT_TRUE(report.ok) << o.name << ": " << report.message
                           << (p ? p->where(o, report.worstIndex) : "");
    if (worst)
      worst->add(o.name + " " + dtypeName(o.dtype), o.dtype, report);
  }
}

size_t configIndex(const Config &c) {
  std::vector<Config> all = allConfigs();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].name() == c.name())
      return i;
  return 0;
}

/// Rows with a static width get the fused dx + dgamma/dbeta backward kernel
/// (gamma along the row, whole 128-bit vectors per thread): the specs of
/// TestConfigs are fully dynamic, so these are written here.
constexpr int64_t kStaticWidth = 256;
const char *kStaticPrefix = "static_";
const std::vector<Config> kStaticRowConfigs = {
    {Op::LayerNorm, DType::F32, true, false, false},
    {Op::LayerNorm, DType::BF16, true, true, false},
    {Op::RMSNorm, DType::F16, true, false, false},
    {Op::RMSNorm, DType::F32, true, true, false}};

std::string staticRowSpec(const Config &c) {
  bool rms = c.op == Op::RMSNorm;
  std::string t = normc::ref::dtypeName(c.dtype);
  std::string w = std::to_string(kStaticWidth);
  std::string x = "tensor<?x" + w + "x" + t + ">",
              g = "tensor<" + w + "x" + t + ">", st = "tensor<?xf32>";
  std::string results = rms ? x + ", " + st : x + ", " + st + ", " + st;
  std::string values = rms ? "%r0, %r1" : "%r0, %r1, %r2";
  std::string args = rms ? "%x: " + x + ", %w: " + g
                         : "%x: " + x + ", %w: " + g + ", %b: " + g;
  std::string operandTypes = rms ? x + ", " + g : x + ", " + g + ", " + g;
  return "func.func @" + std::string(kStaticPrefix) + c.name() + "(" + args +
         ") -> (" + results + ") attributes {norm.backward} {\n  " + values +
         " = norm." + (rms ? "rms_norm" : "layer_norm") + " %x weight(%w)" +
         (rms ? "" : " bias(%b)") + " {eps = 1.0e-05 : f64" +
         (c.epsOutside ? ", eps_outside" : "") + "} : (" + operandTypes +
         ") -> (" + results + ")\n  return " + values + " : " + results +
         "\n}\n";
}

std::string fullSpec() {
  std::string spec;
  for (const Config &c : allConfigs())
    spec += specFor(c, /*backward=*/true);
  for (const Config &c : kStaticRowConfigs)
    spec += staticRowSpec(c);
  return spec;
}

//===----------------------------------------------------------------------===//
// Every configuration against the float64 reference
//===----------------------------------------------------------------------===//

/// Runs the forward (or backward) kernel of `c` on cuda:0 for `p`'s inputs
/// and compares every output with the reference.
void checkOnGpu(const Problem &p, bool backward, WorstErrors *worst,
                size_t misalign = 0, const std::string &prefix = "") {
  const Config &c = p.c;
  std::string name = prefix + c.name() + (backward ? "_backward" : "");
  const normc_kernel *kernel = findKernel(name);
  ASSERT_NE(kernel, nullptr) << lastError();
  ASSERT_EQ(normc_kernel_has_device_code(kernel, NORMC_DEVICE_CUDA), 1);
  ASSERT_TRUE(p.ref.ok()) << p.ref.error;
  std::string error;
  std::vector<Arg> args = backward ? p.backwardArgs(error) : p.forwardArgs();
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(normc_kernel_num_args(kernel), args.size());
  DeviceCall call(args, misalign);
  ASSERT_EQ(call.run(context, kernel), NORMC_OK) << lastError();
  EXPECT_TRUE(call.guardsIntact()) << "wrote past a buffer";
  compareOutputs(args, call, worst, &p);
}

class GpuKernels : public ::testing::TestWithParam<Config> {};

TEST_P(GpuKernels, ForwardMatchesFloat64Reference) {
  const Config &c = GetParam();
  ASSERT_TRUE(ready()) << setupError;
  size_t index = configIndex(c), rotation = index;
  uint64_t seed = 1000 * index;
  for (const auto &[shape, path] : gpuShapesFor(c)) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape) + " (" + path + ")");
    Problem p(c, shape, patternsFor(c, false, rotation++), seed += 10);
    checkOnGpu(p, /*backward=*/false, &forwardWorst);
  }
}

TEST_P(GpuKernels, BackwardMatchesFloat64Gradient) {
  const Config &c = GetParam();
  ASSERT_TRUE(ready()) << setupError;
  size_t index = configIndex(c), rotation = index;
  uint64_t seed = 1000 * index + 500;
  for (const auto &[shape, path] : gpuShapesFor(c)) {
    SCOPED_TRACE(c.name() + "_backward shape " + shapeText(shape) + " (" +
                 path + ")");
    Problem p(c, shape, patternsFor(c, true, rotation++), seed += 10);
    checkOnGpu(p, /*backward=*/true, &backwardWorst);
  }
}

INSTANTIATE_TEST_SUITE_P(AllNorms, GpuKernels,
                         ::testing::ValuesIn(allConfigs()),
                         [](const ::testing::TestParamInfo<Config> &info) {
                           return info.param.name();
                         });

class GpuLongReductions : public ::testing::TestWithParam<LongCase> {};

TEST_P(GpuLongReductions, MatchFloat64Reference) {
  const LongCase &lc = GetParam();
  ASSERT_TRUE(ready()) << setupError;
  SCOPED_TRACE(lc.c.name() + " shape " + shapeText(lc.shape) + " (" + lc.path +
               ")");
  // Every data set across the statistics (and, for a single one, across the
  // two directions).
  size_t rotation = configIndex(lc.c);
  for (bool backward : {false, true}) {
    SCOPED_TRACE(backward ? "backward" : "forward");
    Problem p(lc.c, lc.shape, patternsFor(lc.c, backward, rotation++),
              backward ? 31 : 37);
    checkOnGpu(p, backward, backward ? &backwardWorst : &forwardWorst);
  }
}

INSTANTIATE_TEST_SUITE_P(SplitPaths, GpuLongReductions,
                         ::testing::ValuesIn(longCases()),
                         [](const ::testing::TestParamInfo<LongCase> &info) {
                           return info.param.c.name() + "_" +
                                  shapeText(info.param.shape);
                         });

//===----------------------------------------------------------------------===//
// Paths and properties of a few kernels
//===----------------------------------------------------------------------===//

const Config kLayerNorm = {Op::LayerNorm, DType::F32, true, false, false};
const Config kLayerNormHalf = {Op::LayerNorm, DType::F16, true, true, false};
const Config kBatchNormNcs = {Op::BatchNormTrain, DType::BF16, true, false,
                              false};
const Config kGroupNormNsc = {Op::GroupNorm, DType::F16, true, false, true};
const Config kInstanceNorm = {Op::InstanceNorm, DType::F32, true, false, false};

/// The data sets of the tests below, which check a property rather than the
/// numerics on every set: those of the main tests but the near-max one.
const std::vector<Pattern> kPathPatterns = {Pattern::Normal, Pattern::LargeMean,
                                            Pattern::Constant,
                                            Pattern::TinyVariance};

/// The fused dx + dgamma/dbeta kernel: at least 256 blocks of rows (warps of
/// 8 rows here: 2100 rows), each thread row summing about 8 rows in
/// registers; also with misaligned buffers (its element-wise fallback).
TEST(GpuPaths, FusedBackwardOfStaticRows) {
  ASSERT_TRUE(ready()) << setupError;
  for (const Config &c : kStaticRowConfigs)
    for (size_t misalign : {0, 1}) {
      SCOPED_TRACE(kStaticPrefix + c.name() + " misalign " +
                   std::to_string(misalign));
      const normc_kernel *kernel =
          findKernel(kStaticPrefix + c.name() + "_backward");
      ASSERT_NE(kernel, nullptr) << lastError();
      ASSERT_NE(std::string(normc_kernel_attrs_json(kernel)).size(), 0u);
      Problem p(c, {2100, kStaticWidth}, kPathPatterns, 77 + misalign);
      checkOnGpu(p, /*backward=*/true, &backwardWorst, misalign, kStaticPrefix);
    }
}

/// Buffers 4 bytes past a 16-byte boundary on sizes that would take 128-bit
/// vectors: the kernels must take their scalar code (an unaligned vector
/// access faults on a GPU; the emulator's host code would still compute it,
/// so this checks the values of the fallback).
TEST(GpuPaths, UnalignedBuffersTakeTheScalarPath) {
  ASSERT_TRUE(ready()) << setupError;
  for (const auto &[c, shape] :
       std::vector<std::pair<Config, std::vector<int64_t>>>{
           {kLayerNorm, {3, 4096}},
           {kLayerNormHalf, {1, 16384}},
           {kInstanceNorm, {2, kChannels, 4096}}}) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Problem p(c, shape, kPathPatterns, 77);
    for (bool backward : {false, true}) {
      SCOPED_TRACE(backward ? "backward" : "forward");
      checkOnGpu(p, backward, nullptr, /*misalign=*/4);
    }
  }
}

/// The same inputs run twice, with normc_run and normc_run_async (which the
/// emulator executes at once): bitwise identical outputs. The sizes take
/// the split paths (statistics merged from per-block partials in a fixed
/// order) and several dgamma/dbeta chunks (added in chunk order).
TEST(GpuPaths, RepeatedRunsAreBitwiseIdentical) {
  ASSERT_TRUE(ready()) << setupError;
  for (const auto &[c, shape] :
       std::vector<std::pair<Config, std::vector<int64_t>>>{
           {kLayerNorm, {1, 16385}},
           {kLayerNorm, {64, 257}},
           {kBatchNormNcs, {2, kChannels, 2048}}}) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Problem p(c, shape, kPathPatterns, 5);
    ASSERT_TRUE(p.ref.ok()) << p.ref.error;
    std::string error;
    for (bool backward : {false, true}) {
      SCOPED_TRACE(backward ? "backward" : "forward");
      const normc_kernel *kernel =
          findKernel(c.name() + (backward ? "_backward" : ""));
      ASSERT_NE(kernel, nullptr);
      std::vector<Arg> args =
          backward ? p.backwardArgs(error) : p.forwardArgs();
      ASSERT_TRUE(error.empty()) << error;
      DeviceCall first(args), second(args);
      ASSERT_EQ(first.run(context, kernel), NORMC_OK) << lastError();
      ASSERT_EQ(second.run(context, kernel, /*async=*/true), NORMC_OK)
          << lastError();
      compareOutputs(args, first, nullptr, &p);
      std::vector<std::vector<uint8_t>> a = first.outputBytes(args),
                                        b = second.outputBytes(args);
      for (size_t i = 0, o = 0; i < args.size(); ++i)
        if (args[i].output) {
          EXPECT_TRUE(a[o] == b[o]) << args[i].name << " differs between runs";
          ++o;
        }
    }
  }
}

/// Training on the GPU: the forward kernel's saved mean and rstd (device
/// buffers) feed the backward kernel; the gradient matches the float64 one
/// from exact statistics.
TEST(GpuPaths, ForwardStatisticsFeedTheBackward) {
  ASSERT_TRUE(ready()) << setupError;
  for (const auto &[c, shape] :
       std::vector<std::pair<Config, std::vector<int64_t>>>{
           {kLayerNorm, {2, 16384}},
           {kBatchNormNcs, {2, kChannels, 8192}},
           {kGroupNormNsc, {3, 17, kChannels}}}) {
    SCOPED_TRACE(c.name() + " shape " + shapeText(shape));
    Problem p(c, shape, kPathPatterns, 11);
    ASSERT_TRUE(p.ref.ok()) << p.ref.error;
    std::vector<Arg> fargs = p.forwardArgs();
    std::string error;
    std::vector<Arg> bargs = p.backwardArgs(error);
    ASSERT_TRUE(error.empty()) << error;
    DeviceCall forwardCall(fargs), backwardCall(bargs);
    ASSERT_EQ(forwardCall.run(context, findKernel(c.name())), NORMC_OK)
        << lastError();
    for (const char *name : {"mean", "rstd"}) {
      size_t f = 0, b = 0;
      while (fargs[f].name != name)
        ++f;
      while (bargs[b].name != name)
        ++b;
      backwardCall.tensors[b].data = forwardCall.buffers[f]->data;
    }
    ASSERT_EQ(backwardCall.run(context, findKernel(c.name() + "_backward")),
              NORMC_OK)
        << lastError();
    compareOutputs(bargs, backwardCall, nullptr, &p);
  }
}

/// A zero-size batch launches nothing for the rows; the backward still
/// writes dgamma/dbeta as zeros (as the CPU kernels do, RuntimeBackwardTest).
TEST(GpuPaths, ZeroSizeBatch) {
  ASSERT_TRUE(ready()) << setupError;
  for (const auto &[c, shape] :
       std::vector<std::pair<Config, std::vector<int64_t>>>{
           {kLayerNorm, {0, 33}},
           {kBatchNormNcs, {0, kChannels, 5}},
           {kGroupNormNsc, {0, 5, kChannels}}}) {
    SCOPED_TRACE(c.name() + "_backward shape " + shapeText(shape));
    int64_t affine = c.isChannelOp() ? kChannels : shape[1];
    int64_t stats = c.op == Op::BatchNormTrain ? kChannels : 0;
    std::vector<int64_t> statShape =
        c.op == Op::GroupNorm   ? std::vector<int64_t>{0, kGroups}
        : c.op == Op::LayerNorm ? std::vector<int64_t>{0}
                                : std::vector<int64_t>{kChannels};
    std::vector<Arg> args = {
        {"dy", false, c.dtype, shape, {}},
        {"x", false, c.dtype, shape, {}},
        {"gamma", false, c.dtype, {affine}, std::vector<double>(affine, 1.0)},
        {"mean", false, DType::F32, statShape, std::vector<double>(stats)},
        {"rstd", false, DType::F32, statShape, std::vector<double>(stats, 1.0)},
        {"dx", true, c.dtype, shape, {}},
        {"dgamma", true, c.dtype, {affine}, std::vector<double>(affine, 0.0)},
        {"dbeta", true, c.dtype, {affine}, std::vector<double>(affine, 0.0)}};
    const normc_kernel *kernel = findKernel(c.name() + "_backward");
    ASSERT_NE(kernel, nullptr);
    DeviceCall call(args);
    ASSERT_EQ(call.run(context, kernel), NORMC_OK) << lastError();
    EXPECT_TRUE(call.guardsIntact());
    for (size_t i = 6; i < 8; ++i) {
      std::vector<double> got =
          loadFrom(c.dtype, call.buffers[i]->data, affine);
      for (int64_t j = 0; j < affine; ++j)
        ASSERT_EQ(got[j], 0.0) << args[i].name << "[" << j << "]";
    }
  }
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(GpuErrors, BundleDescribesItsGpuCode) {
  ASSERT_TRUE(ready()) << setupError;
  ASSERT_EQ(normc_bundle_num_gpu_archs(bundle), 1u);
  EXPECT_STREQ(normc_bundle_gpu_arch(bundle, 0), "sm_90");
  EXPECT_EQ(normc_bundle_num_kernels(bundle),
            2 * (allConfigs().size() + kStaticRowConfigs.size()));
  for (size_t i = 0; i < normc_bundle_num_kernels(bundle); ++i)
    EXPECT_EQ(normc_kernel_has_device_code(normc_bundle_kernel(bundle, i),
                                           NORMC_DEVICE_CUDA),
              1)
        << normc_kernel_name(normc_bundle_kernel(bundle, i));
}

/// A kernel compiled without --gpu-arch (gpu_test_cpu_only.so: LayerNorm
/// of a 3x17 x, see CMakeLists) cannot run on cuda:0: the runtime says so
/// and does not fall back to the CPU.
TEST(GpuErrors, KernelWithoutGpuCode) {
  ASSERT_TRUE(ready()) << setupError;
  normc_bundle *cpuOnly = nullptr;
  ASSERT_EQ(normc_bundle_open(NORMC_GPU_TEST_CPU_BUNDLE, &cpuOnly), NORMC_OK)
      << lastError();
  EXPECT_EQ(normc_bundle_num_gpu_archs(cpuOnly), 0u);
  const normc_kernel *kernel = nullptr;
  ASSERT_EQ(normc_bundle_find_kernel(cpuOnly, "layer_norm_cpu_only", &kernel),
            NORMC_OK)
      << lastError();
  EXPECT_EQ(normc_kernel_has_device_code(kernel, NORMC_DEVICE_CUDA), 0);
  EXPECT_EQ(normc_kernel_has_device_code(kernel, NORMC_DEVICE_CPU), 1);

  Problem p(kLayerNorm, {3, 17}, {Pattern::Normal}, 3);
  ASSERT_TRUE(p.ref.ok());
  std::vector<Arg> args = p.forwardArgs();
  ASSERT_EQ(normc_kernel_num_args(kernel), args.size());
  DeviceCall call(args);
  EXPECT_EQ(call.run(context, kernel), NORMC_ERROR_UNSUPPORTED);
  EXPECT_EQ(lastError(), "kernel 'layer_norm_cpu_only' has no GPU code "
                         "(compile with normc --gpu-arch=... to run it on "
                         "cuda:0)");
  EXPECT_TRUE(call.outputsUntouched(args));
  // The same tensors on the CPU run.
  DeviceCall onCpu(args, 0, normc_device{NORMC_DEVICE_CPU, 0});
  EXPECT_EQ(onCpu.run(context, kernel), NORMC_OK) << lastError();
  compareOutputs(args, onCpu, nullptr);
  normc_bundle_close(cpuOnly);
}

/// Sizes the kernels reject (code 2, bad shape): the GPU plan refuses them
/// before any launch, reported as the CPU entry reports them, with nothing
/// written.
TEST(GpuErrors, BadShapesAreRejectedByThePlan) {
  ASSERT_TRUE(ready()) << setupError;
  auto args = [](const Config &c, std::vector<int64_t> shape, int64_t channels,
                 bool backward) {
    std::vector<int64_t> vec = {channels};
    std::vector<int64_t> stats =
        c.op == Op::GroupNorm ? std::vector<int64_t>{shape[0], kGroups} : vec;
    int64_t n = numel(shape), s = numel(stats);
    std::vector<double> ones(channels, 1.0), zeros(n, 0.0), statOnes(s, 1.0);
    std::vector<Arg> a;
    if (backward) {
      a = {{"dy", false, c.dtype, shape, zeros},
           {"x", false, c.dtype, shape, zeros},
           {"gamma", false, c.dtype, vec, ones},
           {"mean", false, DType::F32, stats, std::vector<double>(s, 0.0)},
           {"rstd", false, DType::F32, stats, statOnes},
           {"dx", true, c.dtype, shape, {}},
           {"dgamma", true, c.dtype, vec, {}},
           {"dbeta", true, c.dtype, vec, {}}};
      return a;
    }
    a = {{"x", false, c.dtype, shape, zeros},
         {"gamma", false, c.dtype, vec, ones},
         {"beta", false, c.dtype, vec, ones}};
    if (c.op == Op::BatchNormTrain) {
      a.push_back({"running_mean", false, DType::F32, stats, statOnes});
      a.push_back({"running_var", false, DType::F32, stats, statOnes});
    }
    a.push_back({"y", true, c.dtype, shape, {}});
    a.push_back({"mean", true, DType::F32, stats, {}});
    a.push_back({"rstd", true, DType::F32, stats, {}});
    if (c.op == Op::BatchNormTrain) {
      a.push_back({"running_mean_out", true, DType::F32, stats, {}});
      a.push_back({"running_var_out", true, DType::F32, stats, {}});
    }
    return a;
  };
  const Config groupNorm = {Op::GroupNorm, DType::F32, true, false, false};
  struct BadCase {
    Config c;
    std::vector<int64_t> shape;
    int64_t channels;
    bool backward;
  };
  for (const BadCase &bad : std::vector<BadCase>{
           // 6 channels in 4 groups.
           {groupNorm, {2, 6, 5}, 6, false},
           {groupNorm, {2, 6, 5}, 6, true},
           // One value per channel: no unbiased running variance.
           {kBatchNormNcs, {1, kChannels, 1}, kChannels, false}}) {
    std::string name = bad.c.name() + (bad.backward ? "_backward" : "");
    SCOPED_TRACE(name + " shape " + shapeText(bad.shape));
    const normc_kernel *kernel = findKernel(name);
    ASSERT_NE(kernel, nullptr);
    std::vector<Arg> a = args(bad.c, bad.shape, bad.channels, bad.backward);
    ASSERT_EQ(normc_kernel_num_args(kernel), a.size());
    DeviceCall call(a);
    EXPECT_EQ(call.run(context, kernel), NORMC_ERROR_KERNEL_FAILED);
    std::string expected =
        "kernel '" + name +
        "': GPU plan failed with code 2 (NORMC_ERR_BAD_SHAPE";
    EXPECT_EQ(lastError().compare(0, expected.size(), expected), 0)
        << lastError();
    EXPECT_TRUE(call.outputsUntouched(a));
    // The CPU rejects the same sizes with the same status.
    DeviceCall onCpu(a, 0, normc_device{NORMC_DEVICE_CPU, 0});
    EXPECT_EQ(onCpu.run(context, kernel), NORMC_ERROR_KERNEL_FAILED)
        << lastError();
    EXPECT_NE(lastError().find("code 2"), std::string::npos) << lastError();
  }
}

} // namespace

int main(int argc, char **argv) {
  if (normc::test::handleWriteSpec(argc, argv, fullSpec()))
    return 0;
  // The emulator allocates a 64 KiB stack per GPU thread for every launch
  // and frees them after it: keep the freed heap instead of returning it to
  // the kernel, which saves refaulting 16-32 MiB of pages per launch (a
  // third of the test's time).
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new GpuEnvironment);
  return RUN_ALL_TESTS();
}
