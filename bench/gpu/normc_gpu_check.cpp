//===- normc_gpu_check.cpp - GPU device check of normc's kernels ----------===//
//
// Runs on a machine with an NVIDIA GPU and its driver, from files built
// elsewhere (bench/gpu/prepare.sh): this program, libnormc_runtime.so and
// the kit's bundles (CPU code + PTX). No MLIR, no CUDA toolkit, no link-time
// CUDA dependency: the driver is opened with dlopen for memory and timing,
// and the runtime launches the kernels.
//
//   normc_gpu_check specs DIR   write the kit's spec files (prepare.sh)
//   normc_gpu_check check       every kit kernel, forward and backward, on
//                               the test plan's sizes and adversarial data,
//                               against the float64 reference
//                               (test/reference) with torch.testing's
//                               default tolerances
//   normc_gpu_check bench       LayerNorm/RMSNorm (and BatchNorm, GroupNorm,
//                               InstanceNorm) forward and backward: median
//                               time with CUDA events, GB/s of ideal bytes,
//                               and a device-to-device copy of the same
//                               bytes timed in the same run; JSON lines
//
// `--device=cpu` runs check and bench through the runtime's CPU path with
// host memory instead: it exercises everything but the CUDA calls, on any
// machine (used to test the kit where there is no GPU).
//
//===----------------------------------------------------------------------===//

#include "CudaDriverApi.h"

#include "TestConfigs.h"

#include "DTypes.h"
#include "NormReference.h"
#include "TestData.h"
#include "Tolerance.h"

#include "normc/runtime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace normc;
using namespace normc::kit;
using namespace normc::ref;

namespace {

//===----------------------------------------------------------------------===//
// Small helpers
//===----------------------------------------------------------------------===//

std::string strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char *fmt, ...) {
  char buffer[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buffer, sizeof(buffer), fmt, ap);
  va_end(ap);
  return buffer;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  return normc::test::shapeText(shape);
}

std::vector<std::string> split(const std::string &text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep))
    if (!item.empty())
      out.push_back(item);
  return out;
}

bool contains(const std::vector<std::string> &list, const std::string &v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

/// Directory of this executable (the kit folder).
std::string selfDir() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0)
    return ".";
  path[n] = 0;
  std::string p = path;
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool fileExists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

double median(std::vector<double> v) {
  if (v.empty())
    return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string jsonEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if ((unsigned char)c < 0x20)
      out += strf("\\u%04x", c);
    else
      out += c;
  }
  return out;
}

std::string jsonNumber(double v) {
  if (!std::isfinite(v))
    return "null";
  return strf("%.9g", v);
}

//===----------------------------------------------------------------------===//
// The kit's kernels
//===----------------------------------------------------------------------===//

constexpr double kEps = 1e-5;

/// One forward kernel of the kit; its spec asks for the backward too, so the
/// bundle also holds `name + "_backward"`.
struct KitKernel {
  std::string name;
  std::string bundle; // bundle file stem: kernels/<bundle>.so
  std::string op;     // manifest op name, e.g. "layer_norm"
  std::string layout; // "" for rows, "nchw"/"nhwc" for channel ops
  DType dtype = DType::F32;
  std::string spec; // the spec function text
  std::function<NormDesc(const std::vector<int64_t> &)> desc;
  std::vector<std::vector<int64_t>> checkShapes;
  std::vector<int64_t> benchShape; // empty: not benchmarked
};

const char *opBundle(normc::test::Op op) {
  switch (op) {
  case normc::test::Op::LayerNorm:
    return "layer_norm";
  case normc::test::Op::RMSNorm:
    return "rms_norm";
  case normc::test::Op::BatchNormTrain:
  case normc::test::Op::BatchNormInfer:
    return "batch_norm";
  case normc::test::Op::InstanceNorm:
    return "instance_norm";
  case normc::test::Op::GroupNorm:
    return "group_norm";
  }
  return "other";
}

std::string join(const std::vector<std::string> &v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + v[i];
  return out;
}

/// A spec function: `results = norm.<op> operands {attrs}`, marked for
/// backward derivation.
std::string
specFunction(const std::string &name,
             const std::vector<std::pair<std::string, std::string>> &args,
             const std::string &op, const std::string &operands,
             const std::vector<std::string> &attrs,
             const std::vector<std::string> &results) {
  std::vector<std::string> decls, types, names;
  for (auto &[n, t] : args) {
    decls.push_back("%" + n + ": " + t);
    types.push_back(t);
  }
  for (size_t i = 0; i < results.size(); ++i)
    names.push_back("%r" + std::to_string(i));
  std::string text = "func.func @" + name + "(" + join(decls) + ") -> (" +
                     join(results) + ") attributes {norm.backward} {\n";
  text += "  " + join(names) + " = norm." + op + " " + operands + " {" +
          join(attrs) + "} : (" + join(types) + ") -> (" + join(results) +
          ")\n";
  text += "  return " + join(names) + " : " + join(results) + "\n}\n";
  return text;
}

/// The benchmark kernels: a static normalized size, as a model declares it.
void addBenchKernels(std::vector<KitKernel> &kernels) {
  const std::string eps = "eps = 1.0e-05 : f64";
  for (const char *op : {"layer_norm", "rms_norm"})
    for (int64_t hidden : {int64_t(4096), int64_t(8192)})
      for (DType dt : {DType::F32, DType::BF16}) {
        KitKernel k;
        k.op = op;
        k.dtype = dt;
        k.bundle = "bench";
        k.name = strf("bench_%s_%lld_%s", op, (long long)hidden, dtypeName(dt));
        std::string h = std::to_string(hidden), e = dtypeName(dt);
        std::string x = "tensor<?x" + h + "x" + e + ">";
        std::string vec = "tensor<" + h + "x" + e + ">";
        std::string stat = "tensor<?xf32>";
        bool ln = k.op == "layer_norm";
        if (ln)
          k.spec =
              specFunction(k.name, {{"x", x}, {"w", vec}, {"b", vec}}, op,
                           "%x weight(%w) bias(%b)", {eps}, {x, stat, stat});
        else
          k.spec = specFunction(k.name, {{"x", x}, {"w", vec}}, op,
                                "%x weight(%w)", {eps}, {x, stat});
        k.desc = [ln](const std::vector<int64_t> &s) {
          return ln ? layerNormDesc(s, 1, true, kEps)
                    : rmsNormDesc(s, 1, true, kEps);
        };
        k.checkShapes = {{37, hidden}, {300, hidden}};
        k.benchShape = hidden == 4096 ? std::vector<int64_t>{16384, 4096}
                                      : std::vector<int64_t>{4096, 8192};
        kernels.push_back(k);
      }
  // Channel ops on [N, 64, 56, 56] NCHW (ResNet-50's first stage).
  for (const char *op : {"batch_norm", "group_norm", "instance_norm"})
    for (DType dt : {DType::F32, DType::BF16}) {
      KitKernel k;
      k.op = op;
      k.layout = "nchw";
      k.dtype = dt;
      k.bundle = "bench";
      k.name = strf("bench_%s_nchw_%s", op, dtypeName(dt));
      std::string e = dtypeName(dt);
      std::string x = "tensor<?x64x56x56x" + e + ">";
      std::string vec = "tensor<64x" + e + ">";
      std::string opName = k.op;
      if (opName == "batch_norm") {
        std::string stat = "tensor<64xf32>";
        k.spec = specFunction(
            k.name,
            {{"x", x}, {"w", vec}, {"b", vec}, {"rm", stat}, {"rv", stat}}, op,
            "%x weight(%w) bias(%b) running(%rm, %rv)",
            {eps, "training", "momentum = 1.000000e-01 : f64"},
            {x, stat, stat, stat, stat});
        k.desc = [](const std::vector<int64_t> &s) {
          return batchNormDesc(s, 1, true, true, kEps, true, 0.1);
        };
      } else if (opName == "group_norm") {
        std::string stat = "tensor<?x32xf32>";
        k.spec = specFunction(k.name, {{"x", x}, {"w", vec}, {"b", vec}}, op,
                              "%x weight(%w) bias(%b)",
                              {eps, "num_groups = 32 : i64"}, {x, stat, stat});
        k.desc = [](const std::vector<int64_t> &s) {
          return groupNormDesc(s, 1, 32, true, kEps);
        };
      } else {
        std::string stat = "tensor<?x64xf32>";
        k.spec = specFunction(k.name, {{"x", x}, {"w", vec}, {"b", vec}}, op,
                              "%x weight(%w) bias(%b)", {eps}, {x, stat, stat});
        k.desc = [](const std::vector<int64_t> &s) {
          return instanceNormDesc(s, 1, true, kEps);
        };
      }
      k.checkShapes = {{3, 64, 56, 56}};
      k.benchShape = {32, 64, 56, 56};
      kernels.push_back(k);
    }
}

/// Every kernel of the kit: the integration tests' configurations
/// (test/Integration/TestConfigs: each op x f32/f16/bf16 x affine x eps
/// placement x layout, fully dynamic shapes) and the benchmark kernels.
std::vector<KitKernel> kitKernels() {
  std::vector<KitKernel> kernels;
  for (const normc::test::Config &c : normc::test::allConfigs()) {
    if (c.dtype == DType::F64) // not a GPU target of the issue
      continue;
    KitKernel k;
    k.name = c.name();
    k.op = opBundle(c.op);
    k.bundle = std::string("check_") + opBundle(c.op);
    if (c.isChannelOp())
      k.layout = c.channelsLast ? "nsc" : "ncs";
    k.dtype = c.dtype;
    k.spec = normc::test::specFor(c, /*backward=*/true);
    k.desc = [c](const std::vector<int64_t> &s) {
      return normc::test::descFor(c, s);
    };
    k.checkShapes = normc::test::shapesFor(c);
    // Beyond the CPU test plan, for the GPU mappings: many rows of a
    // mid-size row (multi-block dgamma/dbeta partials), long rows, and a
    // huge row (several blocks per row).
    if (!c.isChannelOp()) {
      k.checkShapes.push_back({2049, 257});
      k.checkShapes.push_back({257, 8192});
      k.checkShapes.push_back({3, 262144});
    } else {
      k.checkShapes.push_back(c.channelsLast
                                  ? std::vector<int64_t>{256, 33, 8}
                                  : std::vector<int64_t>{256, 8, 33});
    }
    kernels.push_back(k);
  }
  addBenchKernels(kernels);
  return kernels;
}

//===----------------------------------------------------------------------===//
// Device memory: CUDA through the driver, or host memory (--device=cpu)
//===----------------------------------------------------------------------===//

struct Device {
  bool cuda = false;
  CudaDriverApi api;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  std::string name = "cpu";

  bool check(CUresult r, const char *what, std::string &error) const {
    if (r == CUDA_SUCCESS)
      return true;
    error = std::string(what) + ": " + api.describe(r);
    return false;
  }
  /// Makes the device's context current on the calling thread.
  bool bind(std::string &error) const {
    return !cuda || check(api.cuCtxSetCurrent(ctx), "cuCtxSetCurrent", error);
  }
  bool alloc(size_t bytes, void **out, std::string &error) const {
    if (!cuda) {
      *out = std::malloc(bytes ? bytes : 1);
      if (!*out)
        error = "out of host memory";
      return *out != nullptr;
    }
    CUdeviceptr p = 0;
    if (!check(api.cuMemAlloc(&p, bytes ? bytes : 1), "cuMemAlloc", error))
      return false;
    *out = reinterpret_cast<void *>(static_cast<uintptr_t>(p));
    return true;
  }
  void release(void *p) const {
    if (!p)
      return;
    if (cuda)
      api.cuMemFree(static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p)));
    else
      std::free(p);
  }
  static CUdeviceptr dptr(const void *p) {
    return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p));
  }
  bool fill(void *dst, uint8_t byte, size_t bytes, CUstream s,
            std::string &error) const {
    if (!cuda) {
      std::memset(dst, byte, bytes);
      return true;
    }
    return check(api.cuMemsetD8Async(dptr(dst), byte, bytes, s),
                 "cuMemsetD8Async", error);
  }
  bool upload(void *dst, const void *src, size_t bytes, CUstream s,
              std::string &error) const {
    if (!cuda) {
      std::memcpy(dst, src, bytes);
      return true;
    }
    return check(api.cuMemcpyHtoDAsync(dptr(dst), src, bytes, s),
                 "cuMemcpyHtoDAsync", error);
  }
  bool download(void *dst, const void *src, size_t bytes, CUstream s,
                std::string &error) const {
    if (!cuda) {
      std::memcpy(dst, src, bytes);
      return true;
    }
    return check(api.cuMemcpyDtoHAsync(dst, dptr(src), bytes, s),
                 "cuMemcpyDtoHAsync", error);
  }
  bool sync(CUstream s, std::string &error) const {
    return !cuda ||
           check(api.cuStreamSynchronize(s), "cuStreamSynchronize", error);
  }
  normc_device runtimeDevice() const {
    normc_device d;
    d.type = cuda ? NORMC_DEVICE_CUDA : NORMC_DEVICE_CPU;
    d.ordinal = 0;
    return d;
  }
};

/// Opens device 0. For CUDA, first asks the runtime (so that a machine
/// without a driver or GPU gets the runtime's own message), then loads the
/// driver for memory and timing and makes the primary context current.
bool openDevice(bool cuda, Device &d, std::string &error) {
  d.cuda = cuda;
  if (!cuda)
    return true;
  int32_t count = 0;
  if (normc_device_count(NORMC_DEVICE_CUDA, &count) != NORMC_OK) {
    error = normc_last_error();
    return false;
  }
  if (!d.api.load(error))
    return false;
  if (!d.check(d.api.cuInit(0), "cuInit", error) ||
      !d.check(d.api.cuDeviceGet(&d.dev, 0), "cuDeviceGet", error) ||
      !d.check(d.api.cuDevicePrimaryCtxRetain(&d.ctx, d.dev),
               "cuDevicePrimaryCtxRetain", error) ||
      !d.bind(error))
    return false;
  char name[256] = {0};
  d.api.cuDeviceGetName(name, sizeof(name) - 1, d.dev);
  d.name = name;
  return true;
}

int attribute(const Device &d, int attr) {
  int v = 0;
  if (d.cuda && d.api.cuDeviceGetAttribute(&v, attr, d.dev) != CUDA_SUCCESS)
    return 0;
  return v;
}

/// A stream owned by one thread (null on the CPU).
struct Stream {
  const Device &d;
  CUstream s = nullptr;
  explicit Stream(const Device &dev) : d(dev) {}
  bool create(std::string &error) {
    return !d.cuda || d.check(d.api.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING),
                              "cuStreamCreate", error);
  }
  ~Stream() {
    if (s)
      d.api.cuStreamDestroy(s);
  }
};

//===----------------------------------------------------------------------===//
// Bundles
//===----------------------------------------------------------------------===//

struct Bundles {
  std::string dir;
  std::map<std::string, normc_bundle *> open;
  std::map<std::string, std::string> errors;

  /// The bundle kernels/<stem>.so, opened once; null with errors[stem] set.
  normc_bundle *get(const std::string &stem) {
    auto it = open.find(stem);
    if (it != open.end())
      return it->second;
    auto e = errors.find(stem);
    if (e != errors.end())
      return nullptr;
    std::string path = dir + "/kernels/" + stem + ".so";
    normc_bundle *b = nullptr;
    if (!fileExists(path)) {
      errors[stem] = path + " is missing (did its spec compile? see "
                            "prepare.log)";
      return nullptr;
    }
    if (normc_bundle_open(path.c_str(), &b) != NORMC_OK) {
      errors[stem] = normc_last_error();
      return nullptr;
    }
    open[stem] = b;
    return b;
  }
  ~Bundles() {
    for (auto &[stem, b] : open)
      normc_bundle_close(b);
  }
};

/// The "gpu_archs" list of a manifest, e.g. `["sm_80", "sm_90"]`, or "".
std::string gpuArchs(const normc_bundle *b) {
  std::string m = normc_bundle_manifest_json(b);
  size_t at = m.find("\"gpu_archs\"");
  if (at == std::string::npos)
    return "";
  size_t open = m.find('[', at), close = m.find(']', at);
  if (open == std::string::npos || close == std::string::npos)
    return "";
  std::string list = m.substr(open, close - open + 1);
  return list == "[]" ? "" : list;
}

//===----------------------------------------------------------------------===//
// One kernel call with the kit's own buffers
//===----------------------------------------------------------------------===//

/// A named tensor of a call: inputs carry their values, outputs the
/// expected values (already rounded to the output type).
struct Named {
  DType dtype;
  std::vector<double> values;
};
using NamedMap = std::map<std::string, Named>;

/// The dynamic sizes of `kernel` for an `x` (or `dy`) of `xShape`, read off
/// the manifest's shape of that argument.
bool dimsFor(const normc_kernel *kernel, const std::vector<int64_t> &xShape,
             std::vector<int64_t> &dims, std::string &error) {
  size_t numDims = normc_kernel_num_dims(kernel);
  dims.assign(numDims, -1);
  size_t index = 0;
  if (normc_kernel_find_arg(kernel, "x", &index) != NORMC_OK) {
    error = "kernel has no argument 'x'";
    return false;
  }
  normc_arg_info info;
  normc_kernel_arg(kernel, index, &info);
  if (info.rank != xShape.size()) {
    error = strf("x has rank %zu in the manifest, the case has %zu", info.rank,
                 xShape.size());
    return false;
  }
  for (size_t d = 0; d < info.rank; ++d) {
    if (info.shape[d].symbol >= 0)
      dims[info.shape[d].symbol] = xShape[d];
    else if (info.shape[d].size != xShape[d]) {
      error = strf("x dim %zu is %lld in the manifest, %lld in the case", d,
                   (long long)info.shape[d].size, (long long)xShape[d]);
      return false;
    }
  }
  for (size_t i = 0; i < numDims; ++i)
    if (dims[i] < 0) {
      error = std::string("dim ") + normc_kernel_dim_name(kernel, i) +
              " does not appear in x";
      return false;
    }
  return true;
}

std::vector<int64_t> argShape(const normc_arg_info &info,
                              const std::vector<int64_t> &dims) {
  std::vector<int64_t> shape;
  for (size_t d = 0; d < info.rank; ++d)
    shape.push_back(info.shape[d].symbol >= 0 ? dims[info.shape[d].symbol]
                                              : info.shape[d].size);
  return shape;
}

DType kitDType(normc_dtype d) {
  switch (d) {
  case NORMC_DTYPE_F16:
    return DType::F16;
  case NORMC_DTYPE_BF16:
    return DType::BF16;
  case NORMC_DTYPE_F64:
    return DType::F64;
  default:
    return DType::F32;
  }
}

constexpr size_t kGuard = 256;    // bytes before and after every buffer
constexpr uint8_t kPoison = 0xFF; // NaN in f32, f16 and bf16

struct OutputResult {
  std::string name;
  CompareReport report;
  double used = 0; // fraction of the tolerance used by the worst element
  bool guardOk = true;
};

/// Runs `kernel` once on the device with `inputs`, compares every output
/// with `expected`. Outputs start as NaN (0xFF bytes); every buffer has
/// kGuard bytes before and after it that must stay untouched. With
/// `misalign`, every tensor starts one element past a 256-byte boundary
/// (the kernels' scalar paths), else on one (their vector paths).
bool runAndCompare(const Device &dev, CUstream stream, normc_context *ctx,
                   const normc_kernel *kernel,
                   const std::vector<int64_t> &xShape, const NamedMap &inputs,
                   const NamedMap &expected, bool misalign,
                   std::vector<OutputResult> &results, std::string &error) {
  std::vector<int64_t> dims;
  if (!dimsFor(kernel, xShape, dims, error))
    return false;
  size_t nargs = normc_kernel_num_args(kernel);
  std::vector<std::vector<int64_t>> shapes(nargs);
  std::vector<void *> buffers(nargs, nullptr);
  std::vector<size_t> bytes(nargs, 0), lead(nargs, kGuard);
  std::vector<normc_tensor> tensors(nargs);
  std::vector<const Named *> named(nargs, nullptr);
  std::vector<bool> isOut(nargs, false);
  bool ok = true;
  auto cleanup = [&] {
    std::string ignored;
    dev.sync(stream, ignored);
    for (void *p : buffers)
      dev.release(p);
  };
  for (size_t i = 0; i < nargs && ok; ++i) {
    normc_arg_info info;
    normc_kernel_arg(kernel, i, &info);
    shapes[i] = argShape(info, dims);
    isOut[i] = info.io != NORMC_IO_IN;
    const NamedMap &from = isOut[i] ? expected : inputs;
    auto it = from.find(info.name);
    if (it == from.end()) {
      error = strf("the kit has no %s '%s' for this kernel",
                   isOut[i] ? "output" : "input", info.name);
      ok = false;
      break;
    }
    named[i] = &it->second;
    if (kitDType(info.dtype) != it->second.dtype) {
      error = strf("'%s' is %s in the manifest, %s in the kit", info.name,
                   normc_dtype_name(info.dtype), dtypeName(it->second.dtype));
      ok = false;
      break;
    }
    int64_t n = numel(shapes[i]);
    if ((size_t)n != it->second.values.size()) {
      error = strf("'%s' has %lld elements in the manifest, %zu in the kit",
                   info.name, (long long)n, it->second.values.size());
      ok = false;
      break;
    }
    bytes[i] = n * dtypeSize(it->second.dtype);
    if (misalign)
      lead[i] += dtypeSize(it->second.dtype);
    size_t total = lead[i] + bytes[i] + kGuard;
    if (!dev.alloc(total, &buffers[i], error)) {
      ok = false;
      break;
    }
    uint8_t *data = static_cast<uint8_t *>(buffers[i]) + lead[i];
    if (!dev.fill(buffers[i], kPoison, total, stream, error)) {
      ok = false;
      break;
    }
    if (!isOut[i] && bytes[i]) {
      std::vector<uint8_t> host = storeAs(it->second.dtype, it->second.values);
      // The copy is staged before the call returns (pageable memory).
      if (!dev.upload(data, host.data(), bytes[i], stream, error)) {
        ok = false;
        break;
      }
    }
    normc_tensor t{};
    t.data = data;
    t.dtype = info.dtype;
    t.rank = shapes[i].size();
    t.shape = shapes[i].data();
    t.strides = nullptr;
    t.device = dev.runtimeDevice();
    tensors[i] = t;
  }
  if (ok)
    ok = dev.sync(stream, error);
  if (ok && normc_run(ctx, kernel, tensors.data(), nargs) != NORMC_OK) {
    error = std::string("normc_run: ") + normc_last_error();
    ok = false;
  }
  for (size_t i = 0; i < nargs && ok; ++i) {
    if (!isOut[i])
      continue;
    std::vector<uint8_t> host(lead[i] + bytes[i] + kGuard);
    if (!dev.download(host.data(), buffers[i], host.size(), stream, error) ||
        !dev.sync(stream, error)) {
      ok = false;
      break;
    }
    normc_arg_info info;
    normc_kernel_arg(kernel, i, &info);
    OutputResult r;
    r.name = info.name;
    for (size_t b = 0; b < host.size(); ++b)
      if ((b < lead[i] || b >= lead[i] + bytes[i]) && host[b] != kPoison)
        r.guardOk = false;
    const Named &e = *named[i];
    r.report = compareBuffer(e.dtype, host.data() + lead[i], e.values.size(),
                             e.values);
    if (r.report.worstIndex >= 0) {
      Tolerance tol = defaultTolerance(e.dtype);
      double err = std::fabs(r.report.worstActual - r.report.worstExpected);
      r.used =
          std::isfinite(err)
              ? err / (tol.atol + tol.rtol * std::fabs(r.report.worstExpected))
              : INFINITY;
    }
    results.push_back(r);
  }
  cleanup();
  return ok;
}

//===----------------------------------------------------------------------===//
// check
//===----------------------------------------------------------------------===//

struct CheckOptions {
  std::string kit;
  bool cuda = true;
  std::vector<std::string> filters; // substrings of kernel names
  std::vector<std::string> bundles; // bundle stems (empty: all)
  int jobs = 0;
  int64_t maxElements = 0; // 0: no limit
  double timeLimit = 0;    // seconds; 0: no limit
  bool list = false;
};

struct Task {
  const KitKernel *k;
  const normc_kernel *fwd, *bwd;
  std::vector<int64_t> shape;
  uint64_t seed;
  bool misalign = false;
};

struct CheckState {
  std::mutex mu;
  int64_t passed = 0, failed = 0, notRun = 0;
  std::map<std::string, std::pair<int, std::string>> failedKernels;
  std::map<std::string, double> worstUsed; // "y bf16" -> fraction

  void report(bool pass, const std::string &kernel, const std::string &line,
              const std::string &why) {
    std::lock_guard<std::mutex> lock(mu);
    std::printf("%s %s\n", pass ? "PASS" : "FAIL", line.c_str());
    std::fflush(stdout);
    if (pass) {
      ++passed;
      return;
    }
    ++failed;
    auto &f = failedKernels[kernel];
    if (f.first++ == 0)
      f.second = why;
  }
  void noteWorst(const std::string &what, double used) {
    std::lock_guard<std::mutex> lock(mu);
    double &w = worstUsed[what];
    w = std::max(w, used);
  }
};

std::string describeOutputs(const std::vector<OutputResult> &rs) {
  std::string text;
  for (const OutputResult &r : rs)
    text += strf(" %s %.2f", r.name.c_str(), r.used);
  return text;
}

/// Judges one kernel call; returns the reason of a failure ("" if passed).
std::string judge(bool ran, const std::string &error,
                  const std::vector<OutputResult> &results) {
  if (!ran)
    return error;
  for (const OutputResult &r : results) {
    if (!r.guardOk)
      return r.name + ": wrote outside its buffer (guard bytes changed)";
    if (!r.report.ok)
      return r.name + ": " + r.report.message;
  }
  return "";
}

/// Forward then backward of one kernel on one shape.
void runTask(const Task &t, const Device &dev, CUstream stream,
             normc_context *ctx, const normc_kernel *fwd,
             const normc_kernel *bwd, CheckState &state) {
  const KitKernel &k = *t.k;
  std::string where =
      k.name + " " + shapeText(t.shape) + (t.misalign ? " misaligned" : "");
  NormDesc desc = k.desc(t.shape);
  if (std::string why = validate(desc); !why.empty()) {
    state.report(false, k.name, "fwd " + where,
                 "invalid reference desc: " + why);
    return;
  }
  const DType st = DType::F32; // statistics
  int64_t n = numel(t.shape);
  int64_t numStats = numel(statsShape(desc));
  int64_t numAffine = numel(gammaShape(desc));

  // Inputs, as the integration tests draw them: random and adversarial
  // sets (mean 1e4 / std 1e-3, constant, near the dtype's max, tiny
  // variance); BatchNorm inference's given statistics do not describe such
  // sets, so its x stays ordinary.
  std::vector<Pattern> patterns = {Pattern::Normal, Pattern::LargeMean,
                                   Pattern::Constant, Pattern::NearMax,
                                   Pattern::TinyVariance};
  if (desc.givenStats)
    patterns = {Pattern::Normal};
  uint64_t seed = t.seed;
  std::vector<double> x = generateInput(desc, k.dtype, patterns, seed);
  std::vector<double> gamma =
      randomNormal(numAffine, seed + 1, k.dtype, 1.0, 0.5);
  std::vector<double> beta =
      randomNormal(numAffine, seed + 2, k.dtype, 0.0, 1.0);
  std::vector<double> runMean = randomNormal(numStats, seed + 4, st);
  std::vector<double> runVar = randomUniform(numStats, seed + 5, 0.25, 4.0, st);

  ForwardInputs in =
      normc::ref::forwardInputs(desc, x, gamma, beta, runMean, runVar);
  ForwardResult ref = forward(desc, in);
  if (!ref.ok()) {
    state.report(false, k.name, "fwd " + where, "reference: " + ref.error);
    return;
  }

  // Forward.
  {
    NamedMap inputs, expected;
    inputs["x"] = {k.dtype, x};
    if (desc.hasGamma)
      inputs["gamma"] = {k.dtype, gamma};
    if (desc.hasBeta)
      inputs["beta"] = {k.dtype, beta};
    if (desc.givenStats) {
      inputs["mean"] = {st, runMean};
      inputs["var"] = {st, runVar};
    }
    if (desc.updateRunning) {
      inputs["running_mean"] = {st, runMean};
      inputs["running_var"] = {st, runVar};
      expected["running_mean_out"] = {st, roundToDType(ref.runningMean, st)};
      expected["running_var_out"] = {st, roundToDType(ref.runningVar, st)};
    }
    expected["y"] = {k.dtype, roundToDType(ref.y, k.dtype)};
    if (!desc.givenStats) {
      if (desc.center)
        expected["mean"] = {st, roundToDType(ref.mean, st)};
      expected["rstd"] = {st, roundToDType(ref.rstd, st)};
    }
    std::vector<OutputResult> results;
    std::string error;
    bool ran = runAndCompare(dev, stream, ctx, fwd, t.shape, inputs, expected,
                             t.misalign, results, error);
    std::string why = judge(ran, error, results);
    for (const OutputResult &r : results)
      state.noteWorst(std::string("fwd ") + r.name + " " + dtypeName(k.dtype),
                      r.used);
    state.report(why.empty(), k.name,
                 "fwd " + where +
                     (why.empty() ? describeOutputs(results) : ": " + why),
                 why);
  }

  // Backward, given the statistics a forward kernel saves (the reference
  // statistics rounded to f32), against the float64 gradient from exact
  // statistics.
  {
    std::vector<double> dy = randomNormal(n, seed + 3, k.dtype);
    BackwardInputs bin =
        normc::ref::backwardInputs(desc, dy, x, gamma, ref, runMean, runVar);
    BackwardOutputs wanted;
    wanted.dgamma = desc.hasGamma;
    wanted.dbeta = desc.hasBeta;
    BackwardResult g = backward(desc, bin, wanted);
    std::string bname = k.name + "_backward";
    if (!g.ok()) {
      state.report(false, bname, "bwd " + where, "reference: " + g.error);
      return;
    }
    NamedMap inputs, expected;
    inputs["dy"] = {k.dtype, dy};
    inputs["x"] = {k.dtype, x};
    if (desc.hasGamma)
      inputs["gamma"] = {k.dtype, gamma};
    if (desc.givenStats) {
      if (desc.center)
        inputs["mean"] = {st, runMean};
      inputs["var"] = {st, runVar};
    } else {
      if (desc.center)
        inputs["mean"] = {st, roundToDType(ref.mean, st)};
      inputs["rstd"] = {st, roundToDType(ref.rstd, st)};
    }
    expected["dx"] = {k.dtype, roundToDType(g.dx, k.dtype)};
    if (desc.hasGamma)
      expected["dgamma"] = {k.dtype, roundToDType(g.dgamma, k.dtype)};
    if (desc.hasBeta)
      expected["dbeta"] = {k.dtype, roundToDType(g.dbeta, k.dtype)};
    std::vector<OutputResult> results;
    std::string error;
    bool ran = runAndCompare(dev, stream, ctx, bwd, t.shape, inputs, expected,
                             t.misalign, results, error);
    std::string why = judge(ran, error, results);
    for (const OutputResult &r : results)
      state.noteWorst(std::string("bwd ") + r.name + " " + dtypeName(k.dtype),
                      r.used);
    state.report(why.empty(), bname,
                 "bwd " + where +
                     (why.empty() ? describeOutputs(results) : ": " + why),
                 why);
  }
}

bool selected(const std::string &name,
              const std::vector<std::string> &filters) {
  if (filters.empty())
    return true;
  for (const std::string &f : filters)
    if (name.find(f) != std::string::npos)
      return true;
  return false;
}

int runCheck(const CheckOptions &o) {
  auto start = std::chrono::steady_clock::now();
  std::vector<KitKernel> kernels = kitKernels();
  std::vector<const KitKernel *> chosen;
  for (const KitKernel &k : kernels)
    if (selected(k.name, o.filters) &&
        (o.bundles.empty() || contains(o.bundles, k.bundle)))
      chosen.push_back(&k);
  if (o.list) {
    for (const KitKernel *k : chosen)
      std::printf("%s (%s.so): %zu shapes\n", k->name.c_str(),
                  k->bundle.c_str(), k->checkShapes.size());
    return 0;
  }

  Device dev;
  std::string error;
  if (!openDevice(o.cuda, dev, error)) {
    std::fprintf(stderr, "normc_gpu_check: %s\n", error.c_str());
    std::fprintf(stderr, "normc_gpu_check: check needs an NVIDIA GPU and its "
                         "driver (or --device=cpu)\n");
    return 2;
  }
  std::printf("normc_gpu_check check: device %s, kit %s\n", dev.name.c_str(),
              o.kit.c_str());

  normc_context_options opts;
  normc_context_options_init(&opts);
  opts.num_threads = 1; // each checking thread runs its own calls
  opts.pin_threads = 0;
  normc_context *ctx = nullptr;
  if (normc_context_create(&opts, &ctx) != NORMC_OK) {
    std::fprintf(stderr, "normc_gpu_check: %s\n", normc_last_error());
    return 2;
  }

  CheckState state;
  Bundles bundles;
  bundles.dir = o.kit;
  std::vector<Task> tasks;
  size_t numKernels = 0;
  std::set<std::string> reportedBundles;
  struct BadBundle {
    std::string why;
    int kernels = 0, cases = 0;
  };
  std::map<std::string, BadBundle> badBundles;
  uint64_t seed = 1000;
  for (const KitKernel *k : chosen) {
    std::vector<std::vector<int64_t>> shapes;
    for (const auto &s : k->checkShapes)
      if (!o.maxElements || numel(s) <= o.maxElements)
        shapes.push_back(s);
    // Mid-size shapes run twice, the second time with every pointer one
    // element off a 16-byte boundary: the kernels' scalar (unvectorized)
    // paths.
    auto misaligned = [](const std::vector<int64_t> &s) {
      return numel(s) >= 1000 && numel(s) <= 300000;
    };
    int cases = 0;
    for (const auto &s : shapes)
      cases += misaligned(s) ? 2 : 1;
    normc_bundle *b = bundles.get(k->bundle);
    std::string bundleWhy;
    if (!b)
      bundleWhy = bundles.errors[k->bundle];
    else if (o.cuda && gpuArchs(b).empty())
      bundleWhy = "no GPU code (no gpu_archs in its manifest: compiled "
                  "without --gpu-arch?)";
    if (b && reportedBundles.insert(k->bundle).second) {
      std::string archs = gpuArchs(b);
      std::printf("bundle %s.so: %zu kernels, gpu_archs %s\n",
                  k->bundle.c_str(), normc_bundle_num_kernels(b),
                  archs.empty() ? "none" : archs.c_str());
    }
    if (!bundleWhy.empty()) {
      // Reported once per bundle below; every case counts as failed.
      auto &f = badBundles[k->bundle];
      f.why = bundleWhy;
      f.kernels += 1;
      f.cases += 2 * cases;
      continue;
    }
    std::string why;
    const normc_kernel *fwd = nullptr, *bwd = nullptr;
    if (why.empty() &&
        normc_bundle_find_kernel(b, k->name.c_str(), &fwd) != NORMC_OK)
      why = normc_last_error();
    if (why.empty() &&
        normc_bundle_find_kernel(b, (k->name + "_backward").c_str(), &bwd) !=
            NORMC_OK)
      why = normc_last_error();
    if (!why.empty()) {
      // One line for all the cases of the kernel, each counted as failed.
      std::lock_guard<std::mutex> lock(state.mu);
      std::printf("FAIL fwd+bwd %s (%d cases not run): %s\n", k->name.c_str(),
                  2 * cases, why.c_str());
      state.failed += 2 * cases;
      state.failedKernels[k->name] = {2 * cases, why};
      continue;
    }
    ++numKernels;
    for (const auto &s : shapes) {
      tasks.push_back({k, fwd, bwd, s, seed += 10});
      if (misaligned(s))
        tasks.push_back({k, fwd, bwd, s, seed += 10, true});
    }
  }
  for (auto &[stem, f] : badBundles) {
    std::printf("FAIL bundle %s.so (%d kernels, %d cases not run): %s\n",
                stem.c_str(), f.kernels, f.cases, f.why.c_str());
    state.failed += f.cases;
    state.failedKernels["bundle " + stem + ".so"] = {f.cases, f.why};
  }
  // Largest first: the reference's time grows with the size.
  std::stable_sort(tasks.begin(), tasks.end(),
                   [](const Task &a, const Task &b) {
                     return numel(a.shape) > numel(b.shape);
                   });

  // The first run of a bundle loads its module (the driver JIT-compiles the
  // PTX for this GPU): do one small case per bundle alone, and say how long
  // it took.
  std::vector<bool> done(tasks.size(), false);
  {
    std::map<std::string, size_t> smallest;
    for (size_t i = 0; i < tasks.size(); ++i) {
      auto [it, fresh] = smallest.emplace(tasks[i].k->bundle, i);
      if (!fresh && numel(tasks[i].shape) <= numel(tasks[it->second].shape))
        it->second = i;
    }
    Stream stream(dev);
    if (!stream.create(error)) {
      std::fprintf(stderr, "normc_gpu_check: %s\n", error.c_str());
      return 2;
    }
    for (auto &[stem, i] : smallest) {
      auto t0 = std::chrono::steady_clock::now();
      runTask(tasks[i], dev, stream.s, ctx, tasks[i].fwd, tasks[i].bwd, state);
      done[i] = true;
      std::printf(
          "bundle %s.so: first case (module load, PTX JIT) took "
          "%.2f s\n",
          stem.c_str(),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count());
    }
  }

  int jobs =
      o.jobs > 0
          ? o.jobs
          : std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::printf("%zu kernels, %zu shapes (forward + backward each), %d threads\n",
              numKernels, tasks.size(), jobs);
  std::fflush(stdout);
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j)
    threads.emplace_back([&] {
      std::string err;
      Stream stream(dev);
      if (!dev.bind(err) || !stream.create(err)) {
        std::lock_guard<std::mutex> lock(state.mu);
        std::printf("FAIL thread setup: %s\n", err.c_str());
        ++state.failed;
        return;
      }
      for (size_t i; (i = next++) < tasks.size();) {
        if (done[i])
          continue;
        if (o.timeLimit > 0 && std::chrono::duration<double>(
                                   std::chrono::steady_clock::now() - start)
                                       .count() > o.timeLimit) {
          std::lock_guard<std::mutex> lock(state.mu);
          state.notRun += 2;
          continue;
        }
        const Task &t = tasks[i];
        runTask(t, dev, stream.s, ctx, t.fwd, t.bwd, state);
      }
    });
  for (auto &t : threads)
    t.join();

  double sec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("\nworst fraction of the tolerance used (|error| / (atol + rtol "
              "|expected|), passing and failing cases):\n");
  for (auto &[what, used] : state.worstUsed)
    std::printf("  %-28s %.3g\n", what.c_str(), used);
  if (!state.failedKernels.empty()) {
    std::printf("\nfailed kernels (cases, first reason):\n");
    for (auto &[name, f] : state.failedKernels)
      std::printf("  %s: %d; %s\n", name.c_str(), f.first,
                  f.second.substr(0, 300).c_str());
  }
  std::printf("\ncheck took %.1f s on %s\n", sec, dev.name.c_str());
  if (state.notRun)
    std::printf("%lld cases not run: --time-limit=%g s reached\n",
                (long long)state.notRun, o.timeLimit);
  std::printf("%lld passed, %lld failed\n", (long long)state.passed,
              (long long)(state.failed + state.notRun));
  std::fflush(stdout);
  normc_context_destroy(ctx);
  return state.failed || state.notRun || state.passed == 0 ? 1 : 0;
}

//===----------------------------------------------------------------------===//
// bench
//===----------------------------------------------------------------------===//

struct BenchOptions {
  std::string kit;
  bool cuda = true;
  std::string json; // empty: stdout
  std::vector<std::string> ops, dtypes, dirs, filters;
  int rounds = 5, samples = 20, warmup = 10;
  double spinUs = 100;
};

/// A GPU kernel that spins for a given number of nanoseconds: launched
/// before every timed sample, it keeps the GPU busy while the host enqueues
/// the sample, so that launch overhead is not timed (the same is done for
/// the copy and for the PyTorch peers).
const char *kSpinPtx = R"(
.version 7.0
.target sm_80
.address_size 64
.visible .entry normc_kit_spin(.param .u64 ns)
{
  .reg .pred %p;
  .reg .b64 %n, %t0, %t1, %d;
  ld.param.u64 %n, [ns];
  mov.u64 %t0, %globaltimer;
SPIN:
  mov.u64 %t1, %globaltimer;
  sub.u64 %d, %t1, %t0;
  setp.lt.u64 %p, %d, %n;
  @%p bra SPIN;
  ret;
}
)";

using RunAsyncFn = normc_status (*)(normc_context *, const normc_kernel *,
                                    const normc_tensor *, size_t, void *);

/// Fast pseudo-random contents (the data does not matter for bandwidth,
/// as long as it is not zeros): `count` elements uniform in [lo, hi).
std::vector<uint8_t> pattern(DType dt, size_t count, double lo, double hi,
                             uint64_t seed) {
  std::vector<uint8_t> out(count * dtypeSize(dt));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < count; ++i) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    double u = double((s * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
    float v = float(lo + (hi - lo) * u);
    switch (dt) {
    case DType::F32:
      std::memcpy(&out[i * 4], &v, 4);
      break;
    case DType::F16: {
      uint16_t b = floatToHalfBits(v);
      std::memcpy(&out[i * 2], &b, 2);
      break;
    }
    case DType::BF16: {
      uint16_t b = floatToBFloat16Bits(v);
      std::memcpy(&out[i * 2], &b, 2);
      break;
    }
    case DType::F64: {
      double d = v;
      std::memcpy(&out[i * 8], &d, 8);
      break;
    }
    }
  }
  return out;
}

/// The range the benchmark's inputs are drawn from, by argument name (as
/// peers_torch.py draws them).
void inputRange(const std::string &name, double &lo, double &hi) {
  lo = -1, hi = 3; // x
  if (name == "gamma")
    lo = 0.5, hi = 1.5;
  else if (name == "beta")
    lo = -0.5, hi = 0.5;
  else if (name == "dy")
    lo = -1, hi = 1;
  else if (name == "mean")
    lo = 0.9, hi = 1.1;
  else if (name == "rstd")
    lo = 0.8, hi = 0.9;
  else if (name == "var" || name == "running_var")
    lo = 1.2, hi = 1.4;
  else if (name == "running_mean")
    lo = -0.1, hi = 0.1;
}

struct Timer {
  const Device &dev;
  CUstream stream = nullptr;
  CUfunction spin = nullptr;
  double spinNs = 0;
  std::vector<CUevent> starts, ends;

  explicit Timer(const Device &d) : dev(d) {}
  ~Timer() {
    for (CUevent e : starts)
      dev.api.cuEventDestroy(e);
    for (CUevent e : ends)
      dev.api.cuEventDestroy(e);
    if (stream)
      dev.api.cuStreamDestroy(stream);
  }
  bool init(int samples, double spinUs, std::string &error) {
    if (!dev.cuda)
      return true;
    if (!dev.check(dev.api.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING),
                   "cuStreamCreate", error))
      return false;
    for (int i = 0; i < samples; ++i) {
      CUevent a, b;
      if (!dev.check(dev.api.cuEventCreate(&a, CU_EVENT_DEFAULT),
                     "cuEventCreate", error) ||
          !dev.check(dev.api.cuEventCreate(&b, CU_EVENT_DEFAULT),
                     "cuEventCreate", error))
        return false;
      starts.push_back(a);
      ends.push_back(b);
    }
    CUmodule module = nullptr;
    if (spinUs > 0 &&
        dev.api.cuModuleLoadData(&module, kSpinPtx) == CUDA_SUCCESS &&
        dev.api.cuModuleGetFunction(&spin, module, "normc_kit_spin") ==
            CUDA_SUCCESS)
      spinNs = spinUs * 1e3;
    else
      spin = nullptr;
    return true;
  }
  /// Times `samples` calls of `op` (each after a spin), in seconds: with
  /// events on the stream, or with the host clock (CPU, or `host`: each
  /// call then includes its launch and a stream synchronization).
  bool time(int samples, const std::function<bool(std::string &)> &op,
            std::vector<double> &out, std::string &error, bool host = false) {
    if (!dev.cuda || host) {
      for (int i = 0; i < samples; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        if (!op(error) || !dev.sync(stream, error))
          return false;
        out.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      return true;
    }
    for (int i = 0; i < samples; ++i) {
      if (spin) {
        uint64_t ns = (uint64_t)spinNs;
        void *params[] = {&ns};
        if (!dev.check(dev.api.cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream,
                                              params, nullptr),
                       "cuLaunchKernel(spin)", error))
          return false;
      }
      if (!dev.check(dev.api.cuEventRecord(starts[i], stream), "cuEventRecord",
                     error) ||
          !op(error) ||
          !dev.check(dev.api.cuEventRecord(ends[i], stream), "cuEventRecord",
                     error))
        return false;
    }
    if (!dev.sync(stream, error))
      return false;
    for (int i = 0; i < samples; ++i) {
      float ms = 0;
      if (!dev.check(dev.api.cuEventElapsedTime(&ms, starts[i], ends[i]),
                     "cuEventElapsedTime", error))
        return false;
      out.push_back(ms * 1e-3);
    }
    return true;
  }
};

int runBench(const BenchOptions &o) {
  Device dev;
  std::string error;
  if (!openDevice(o.cuda, dev, error)) {
    std::fprintf(stderr, "normc_gpu_check: %s\n", error.c_str());
    std::fprintf(stderr, "normc_gpu_check: bench needs an NVIDIA GPU and its "
                         "driver (or --device=cpu)\n");
    return 2;
  }
  FILE *json = stdout;
  if (!o.json.empty() && !(json = std::fopen(o.json.c_str(), "a"))) {
    std::perror(o.json.c_str());
    return 2;
  }
  RunAsyncFn runAsync =
      reinterpret_cast<RunAsyncFn>(dlsym(RTLD_DEFAULT, "normc_run_async"));
  normc_context_options opts;
  normc_context_options_init(&opts);
  if (o.cuda)
    opts.num_threads = 1;
  normc_context *ctx = nullptr;
  if (normc_context_create(&opts, &ctx) != NORMC_OK) {
    std::fprintf(stderr, "normc_gpu_check: %s\n", normc_last_error());
    return 2;
  }
  Timer timer(dev);
  if (!timer.init(o.samples, o.spinUs, error)) {
    std::fprintf(stderr, "normc_gpu_check: %s\n", error.c_str());
    return 2;
  }
  bool async = o.cuda && runAsync;
  std::string timing =
      !o.cuda ? "host clock, synchronous normc_run (cpu)"
      : async ? "CUDA events around normc_run_async on one stream"
              : "host clock around synchronous normc_run (this runtime has no "
                "normc_run_async)";
  int major = attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  int minor = attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  double memKhz = attribute(dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
  double busBits = attribute(dev, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
  int driver = 0;
  if (o.cuda)
    dev.api.cuDriverGetVersion(&driver);
  std::fprintf(
      json,
      "{\"meta\": {\"src\": \"normc_gpu_check\", \"device\": \"%s\", "
      "\"compute_capability\": \"%d.%d\", \"sms\": %d, \"l2_bytes\": %d, "
      "\"mem_clock_khz\": %.0f, \"mem_bus_bits\": %.0f, \"peak_gbps\": %s, "
      "\"cuda_driver_version\": %d, \"timing\": \"%s\", \"spin_us\": %s, "
      "\"rounds\": %d, \"samples_per_round\": %d, \"warmup\": %d}}\n",
      jsonEscape(dev.name).c_str(), major, minor,
      attribute(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
      attribute(dev, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE), memKhz, busBits,
      jsonNumber(2.0 * memKhz * 1e3 * busBits / 8 / 1e9).c_str(), driver,
      jsonEscape(timing).c_str(), jsonNumber(timer.spin ? o.spinUs : 0).c_str(),
      o.rounds, o.samples, o.warmup);
  std::fflush(json);
  std::fprintf(stderr, "normc_gpu_check bench on %s; timing: %s%s\n",
               dev.name.c_str(), timing.c_str(),
               o.cuda && !timer.spin ? " (no spin kernel)" : "");

  Bundles bundles;
  bundles.dir = o.kit;
  int failures = 0;
  for (const KitKernel &k : kitKernels()) {
    if (k.benchShape.empty() || !selected(k.name, o.filters) ||
        (!o.ops.empty() && !contains(o.ops, k.op)) ||
        (!o.dtypes.empty() && !contains(o.dtypes, dtypeName(k.dtype))))
      continue;
    for (const char *dir : {"fwd", "bwd"}) {
      if (!o.dirs.empty() && !contains(o.dirs, dir))
        continue;
      std::string kname =
          k.name + (std::string(dir) == "bwd" ? "_backward" : "");
      std::string shape = shapeText(k.benchShape);
      std::string err, note;
      double sec = NAN, copySec = NAN;
      size_t ideal = 0, samples = 0;
      std::fprintf(stderr, "== %s %s %s %s\n", k.op.c_str(), shape.c_str(),
                   dtypeName(k.dtype), dir);
      const normc_kernel *kernel = nullptr;
      normc_bundle *b = bundles.get(k.bundle);
      std::vector<void *> buffers;
      std::vector<std::vector<int64_t>> shapes;
      std::vector<normc_tensor> tensors;
      void *copySrc = nullptr, *copyDst = nullptr;
      bool ok = true;
      auto fail = [&](const std::string &why) {
        err = why;
        ok = false;
      };
      if (!b)
        fail(bundles.errors[k.bundle]);
      else if (normc_bundle_find_kernel(b, kname.c_str(), &kernel) != NORMC_OK)
        fail(normc_last_error());
      std::vector<int64_t> dims;
      if (ok && !dimsFor(kernel, k.benchShape, dims, err))
        ok = false;
      size_t nargs = ok ? normc_kernel_num_args(kernel) : 0;
      shapes.resize(nargs);
      for (size_t i = 0; i < nargs && ok; ++i) {
        normc_arg_info info;
        normc_kernel_arg(kernel, i, &info);
        shapes[i] = argShape(info, dims);
        size_t count = numel(shapes[i]);
        DType dt = kitDType(info.dtype);
        size_t bytes = count * dtypeSize(dt);
        ideal += bytes;
        void *p = nullptr;
        if (!dev.alloc(bytes, &p, err)) {
          ok = false;
          break;
        }
        buffers.push_back(p);
        if (info.io != NORMC_IO_OUT) {
          // Tile a pattern of up to 4M elements over the tensor.
          double lo, hi;
          inputRange(info.name, lo, hi);
          size_t chunk = std::min<size_t>(count, size_t(1) << 22);
          std::vector<uint8_t> pat = pattern(dt, chunk, lo, hi, i + 1);
          size_t cb = pat.size();
          for (size_t off = 0; off < bytes && ok; off += cb)
            ok = dev.upload(static_cast<uint8_t *>(p) + off, pat.data(),
                            std::min(cb, bytes - off), timer.stream, err) &&
                 dev.sync(timer.stream, err);
        } else {
          ok = dev.fill(p, 0, bytes, timer.stream, err) &&
               dev.sync(timer.stream, err);
        }
        normc_tensor t{};
        t.data = p;
        t.dtype = info.dtype;
        t.rank = shapes[i].size();
        t.shape = shapes[i].data();
        t.device = dev.runtimeDevice();
        tensors.push_back(t);
      }
      // The copy of the same bytes: ideal / 2 read + ideal / 2 written.
      size_t half = ideal / 2;
      if (ok &&
          (!dev.alloc(half, &copySrc, err) || !dev.alloc(half, &copyDst, err) ||
           !dev.fill(copySrc, 0x3C, half, timer.stream, err) ||
           !dev.sync(timer.stream, err)))
        ok = false;
      auto runKernel = [&](std::string &e) {
        normc_status s =
            async ? runAsync(ctx, kernel, tensors.data(), tensors.size(),
                             timer.stream)
                  : normc_run(ctx, kernel, tensors.data(), tensors.size());
        if (s != NORMC_OK) {
          e = std::string(async ? "normc_run_async: " : "normc_run: ") +
              normc_last_error();
          return false;
        }
        return true;
      };
      auto runCopy = [&](std::string &e) {
        if (!dev.cuda) {
          std::memcpy(copyDst, copySrc, half);
          return true;
        }
        return dev.check(dev.api.cuMemcpyDtoDAsync(Device::dptr(copyDst),
                                                   Device::dptr(copySrc), half,
                                                   timer.stream),
                         "cuMemcpyDtoDAsync", e);
      };
      std::vector<double> kSamples, cSamples;
      if (ok) {
        // Warm-up (module load and PTX JIT, clocks), then rounds that
        // interleave the copy and the kernel.
        for (int i = 0; i < o.warmup && ok; ++i)
          ok = runCopy(err) && runKernel(err);
        ok = ok && dev.sync(timer.stream, err);
        for (int r = 0; r < o.rounds && ok; ++r)
          ok = timer.time(o.samples, runCopy, cSamples, err, !async) &&
               timer.time(o.samples, runKernel, kSamples, err, !async);
      }
      if (ok) {
        sec = median(kSamples);
        copySec = median(cSamples);
        samples = kSamples.size();
      } else {
        ++failures;
        note = err;
      }
      for (void *p : buffers)
        dev.release(p);
      dev.release(copySrc);
      dev.release(copyDst);
      double gbps = ok ? ideal / sec / 1e9 : NAN;
      double copyGbps = ok ? ideal / copySec / 1e9 : NAN;
      std::fprintf(
          json,
          "{\"src\": \"normc_gpu_check\", \"impl\": \"normc\", \"op\": \"%s\", "
          "\"shape\": \"%s\", \"layout\": \"%s\", \"dtype\": \"%s\", "
          "\"dir\": \"%s\", \"device\": \"%s\", \"kernel\": \"%s\", "
          "\"bytes\": %zu, \"sec\": %s, \"copy_sec\": %s, \"gbps\": %s, "
          "\"copy_gbps\": %s, \"frac\": %s, \"samples\": %zu, "
          "\"timing\": \"%s\", \"note\": \"%s\"}\n",
          k.op.c_str(), shape.c_str(), k.layout.c_str(), dtypeName(k.dtype),
          dir, jsonEscape(dev.name).c_str(), kname.c_str(), ideal,
          jsonNumber(sec).c_str(), jsonNumber(copySec).c_str(),
          jsonNumber(gbps).c_str(), jsonNumber(copyGbps).c_str(),
          jsonNumber(ok ? copySec / sec : NAN).c_str(), samples,
          async ? "events" : "host", jsonEscape(note).c_str());
      std::fflush(json);
      if (ok)
        std::fprintf(stderr,
                     "  copy  %9.1f us %8.1f GB/s\n  normc %9.1f us %8.1f GB/s "
                     " %.2f of copy\n",
                     copySec * 1e6, copyGbps, sec * 1e6, gbps, copySec / sec);
      else
        std::fprintf(stderr, "  normc failed: %s\n", err.c_str());
    }
  }
  if (json != stdout)
    std::fclose(json);
  normc_context_destroy(ctx);
  return failures ? 1 : 0;
}

//===----------------------------------------------------------------------===//
// specs
//===----------------------------------------------------------------------===//

int writeSpecs(const std::string &dir) {
  std::map<std::string, std::string> files;
  for (const KitKernel &k : kitKernels())
    files[k.bundle] += k.spec;
  mkdir(dir.c_str(), 0755);
  for (auto &[stem, text] : files) {
    std::string path = dir + "/" + stem + ".mlir";
    std::ofstream out(path);
    out << "// Generated by normc_gpu_check specs: the kernels of " << stem
        << ".so (bench/gpu).\n"
        << text;
    out.close();
    if (!out) {
      std::fprintf(stderr, "normc_gpu_check: cannot write %s\n", path.c_str());
      return 1;
    }
    std::printf("%s\n", path.c_str());
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// main
//===----------------------------------------------------------------------===//

const char *kUsage = R"(usage: normc_gpu_check MODE [options]

modes:
  specs DIR     write the kit's spec files DIR/<bundle>.mlir
  check         every kit kernel, forward and backward, against the float64
                reference; one line per case, then "N passed, M failed";
                exit 1 if any case failed, 2 if there is no GPU/driver
  bench         LayerNorm/RMSNorm [16384,4096] and [4096,8192] (and
                BatchNorm/GroupNorm/InstanceNorm [32,64,56,56]), f32 and
                bf16, forward and backward, against a device-to-device copy
                of the same bytes; JSON lines

options:
  --kit=DIR            kit folder holding kernels/*.so (default: this
                       program's folder)
  --device=cuda|cpu    cpu: host memory and the runtime's CPU path (to test
                       the kit without a GPU)
  --filter=A,B         only kernels whose name contains A or B
check:
  --bundles=A,B        only these bundles (check_layer_norm, bench, ...)
  --jobs=N             host threads (default: cores, at most 16)
  --max-elements=N     skip shapes with more elements
  --time-limit=S       start no case after S seconds; those left count as
                       failed ("not run")
  --list               list the kernels and their shape counts
bench:
  --json=FILE          append JSON lines to FILE (default stdout)
  --ops=layer_norm,... --dtypes=f32,bf16 --dirs=fwd,bwd
  --rounds=N (5) --samples=N (20 per round) --warmup=N (10)
  --spin-us=US         GPU spin before each timed sample (100; 0: none)
)";

bool option(const char *arg, const char *name, std::string &value) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
    return false;
  value = arg + n + 1;
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string mode = argv[1];
  if (mode == "specs") {
    if (argc != 3) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    return writeSpecs(argv[2]);
  }
  if (mode != "check" && mode != "bench") {
    std::fprintf(stderr, "normc_gpu_check: unknown mode '%s'\n%s", mode.c_str(),
                 kUsage);
    return 2;
  }
  CheckOptions c;
  BenchOptions b;
  c.kit = b.kit = selfDir();
  for (int i = 2; i < argc; ++i) {
    std::string v;
    const char *a = argv[i];
    if (option(a, "--kit", v))
      c.kit = b.kit = v;
    else if (option(a, "--device", v)) {
      if (v != "cuda" && v != "cpu") {
        std::fprintf(stderr, "normc_gpu_check: --device=cuda or cpu\n");
        return 2;
      }
      c.cuda = b.cuda = v == "cuda";
    } else if (option(a, "--filter", v))
      c.filters = b.filters = split(v, ',');
    else if (mode == "check" && option(a, "--bundles", v))
      c.bundles = split(v, ',');
    else if (mode == "check" && option(a, "--jobs", v))
      c.jobs = std::atoi(v.c_str());
    else if (mode == "check" && option(a, "--max-elements", v))
      c.maxElements = std::atoll(v.c_str());
    else if (mode == "check" && option(a, "--time-limit", v))
      c.timeLimit = std::atof(v.c_str());
    else if (mode == "check" && !std::strcmp(a, "--list"))
      c.list = true;
    else if (mode == "bench" && option(a, "--json", v))
      b.json = v;
    else if (mode == "bench" && option(a, "--ops", v))
      b.ops = split(v, ',');
    else if (mode == "bench" && option(a, "--dtypes", v))
      b.dtypes = split(v, ',');
    else if (mode == "bench" && option(a, "--dirs", v))
      b.dirs = split(v, ',');
    else if (mode == "bench" && option(a, "--rounds", v))
      b.rounds = std::max(1, std::atoi(v.c_str()));
    else if (mode == "bench" && option(a, "--samples", v))
      b.samples = std::max(1, std::atoi(v.c_str()));
    else if (mode == "bench" && option(a, "--warmup", v))
      b.warmup = std::max(0, std::atoi(v.c_str()));
    else if (mode == "bench" && option(a, "--spin-us", v))
      b.spinUs = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "normc_gpu_check: unknown option '%s'\n%s", a,
                   kUsage);
      return 2;
    }
  }
  return mode == "check" ? runCheck(c) : runBench(b);
}
