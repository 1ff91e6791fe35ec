//===- normc_bench.cpp - normc kernels vs memcpy and oneDNN ---------------===//
//
// Times normc kernels (forward and backward) against a memcpy of the same
// ideal bytes and against oneDNN, in one process, following
// shared/docs/benchmarking.md:
//
//  * yardstick: a copy of ideal/2 bytes (so read + write = ideal bytes) run
//    on the same threads, interleaved with the kernels;
//  * threads pinned (our own pool: thread 0 = the caller on the first allowed
//    CPU, worker i on the i-th); oneDNN runs on OpenMP (run with
//    OMP_PROC_BIND=close OMP_PLACES=cores, see bench/run_all.sh);
//  * warm-up >= 0.3 s and >= 3 calls before the first measured implementation
//    of a case, >= 0.1 s and >= 3 calls before every other one;
//  * median of >= 7 samples in each of >= 3 rounds that interleave the
//    implementations (a sample averages back-to-back calls when one call is
//    shorter than 1 ms);
//  * every buffer is allocated and faulted in once, outside the timed loops.
//
// Ideal bytes of a kernel = the size of every argument of its normc
// signature (each tensor read or written once), see anchors.md.
//
// Implementations:
//   copy       memcpy of ideal/2 bytes, split across the threads
//   normc      the bundle's __normc_K_packed over [0, work) split across our
//              pinned threads, after __normc_K_prepass over its items split
//              the same way (forward kernels on long rows), and followed by
//              __normc_K_finalize (backward kernels)
//   normc-rt   the same kernel through the runtime (normc_run, pinned pool)
//   onednn     oneDNN 2.6 layer/batch normalization, plain layout
//   onednn-blk oneDNN batch normalization on nChw16c (NCHW rows only)
//
// Output: a human-readable table on stderr, one JSON object per line and
// implementation on stdout (or --json=FILE), consumed by bench/report.py.
//
//===----------------------------------------------------------------------===//

#include "normc/runtime.h"

#ifdef NORMC_BENCH_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <random>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double now() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

struct Options {
  std::string normc = "build/bin/normc";
  std::string kernelDir = "build-bench/kernels";
  std::string json; // empty: stdout
  std::vector<std::string> ops = {"layer_norm", "rms_norm", "batch_norm",
                                  "group_norm", "instance_norm"};
  std::vector<std::string> dtypes = {"f32", "bf16"};
  std::vector<std::string> dirs = {"fwd", "bwd"};
  std::vector<int> threads = {1, 2};
  std::vector<std::string> rowShapes = {"64x768", "4096x4096", "16384x1024",
                                        "16384x4096", "8x65536"};
  std::vector<std::string> channelShapes = {"32x64x56x56"};
  std::vector<std::string> layouts = {"nchw", "nhwc"};
  std::vector<std::string> impls = {"copy", "normc", "normc-rt", "onednn",
                                    "onednn-blk"};
  int rounds = 3;
  int calls = 7;
  double firstWarmup = 0.3;
  double warmup = 0.1;
  double minSample = 1e-3;
  bool check = true;
  int pauseMs = 3; // between implementations: lets spinning workers sleep
  // Outputs start this many bytes past a page boundary (inputs: on one).
  // Small non-zero values show 4K-aliasing sensitivity.
  size_t misalign = 0;
};

std::vector<std::string> splitList(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

std::vector<int64_t> parseShape(const std::string &s) {
  std::vector<int64_t> dims;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, 'x'))
    dims.push_back(std::stoll(item));
  return dims;
}

/// Whether `s` is `rank` positive sizes joined by 'x' (what parseShape
/// reads); the options are checked with it before any case runs.
bool isShape(const std::string &s, size_t rank) {
  std::stringstream ss(s);
  std::string item;
  size_t count = 0;
  while (std::getline(ss, item, 'x')) {
    if (item.empty() || item.size() > 12 ||
        item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoll(item) <= 0)
      return false;
    ++count;
  }
  return count == rank && s.back() != 'x';
}

bool contains(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

//===----------------------------------------------------------------------===//
// Buffers and bf16
//===----------------------------------------------------------------------===//

struct Buffer {
  void *data = nullptr;
  void *base = nullptr;
  size_t bytes = 0;
  Buffer() = default;
  // Page-aligned, or `offset` bytes past a page boundary.
  explicit Buffer(size_t n, size_t offset = 0) : bytes(n) {
    if (posix_memalign(&base, 4096, std::max<size_t>(n, 64) + offset) != 0) {
      std::fprintf(stderr, "out of memory (%zu bytes)\n", n);
      std::exit(1);
    }
    data = static_cast<char *>(base) + offset;
    std::memset(data, 0, std::max<size_t>(n, 64)); // fault the pages in now
  }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  Buffer(Buffer &&o) noexcept : data(o.data), base(o.base), bytes(o.bytes) {
    o.data = o.base = nullptr;
  }
  Buffer &operator=(Buffer &&o) noexcept {
    std::swap(data, o.data);
    std::swap(base, o.base);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~Buffer() { std::free(base); }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float fromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

size_t dtypeSize(normc_dtype d) { return normc_dtype_size(d); }

float loadF(const void *p, normc_dtype d, size_t i) {
  if (d == NORMC_DTYPE_BF16)
    return fromBf16(static_cast<const uint16_t *>(p)[i]);
  return static_cast<const float *>(p)[i];
}
void storeF(void *p, normc_dtype d, size_t i, float v) {
  if (d == NORMC_DTYPE_BF16)
    static_cast<uint16_t *>(p)[i] = toBf16(v);
  else
    static_cast<float *>(p)[i] = v;
}

// Fills with lo + (hi-lo)*u, u uniform in [0,1), in parallel-free but fast
// fashion (a simple LCG: the values only need to be non-degenerate).
void fill(void *p, normc_dtype d, size_t n, float lo, float hi, uint64_t seed) {
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float u = static_cast<float>((s >> 40) & 0xffffff) / 16777216.0f;
    storeF(p, d, i, lo + (hi - lo) * u);
  }
}

//===----------------------------------------------------------------------===//
// Pinned thread pool (thread 0 is the caller)
//===----------------------------------------------------------------------===//

// The CPUs to pin to: $NORMC_BENCH_CPUS ("0,1"), else the online CPUs when
// OpenMP binding is on (libgomp pins the main thread before main() runs, so
// our own affinity mask no longer tells), else our affinity mask.
std::vector<int> allowedCpus() {
  std::vector<int> cpus;
  if (const char *env = std::getenv("NORMC_BENCH_CPUS")) {
    for (const auto &c : splitList(env))
      cpus.push_back(std::stoi(c));
    return cpus;
  }
  if (std::getenv("OMP_PROC_BIND") || std::getenv("GOMP_CPU_AFFINITY")) {
    for (int c = 0; c < get_nprocs(); ++c)
      cpus.push_back(c);
    return cpus;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set))
        cpus.push_back(c);
  return cpus;
}

void unpinSelf(const std::vector<int> &cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    CPU_SET(c, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void pinSelf(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

class Pool {
public:
  Pool(int n, const std::vector<int> &cpus) : n_(n) {
    if (!cpus.empty())
      pinSelf(cpus[0]);
    for (int i = 1; i < n; ++i)
      workers_.emplace_back([this, i, cpus] {
        if (!cpus.empty())
          pinSelf(cpus[i % cpus.size()]);
        loop(i);
      });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto &t : workers_)
      t.join();
  }
  int size() const { return n_; }
  // Runs fn(tid, nthreads) on every thread; returns when all are done.
  void run(const std::function<void(int, int)> &fn) {
    if (n_ == 1) {
      fn(0, 1);
      return;
    }
    job_ = &fn;
    done_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> l(m_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0, n_);
    while (done_.load(std::memory_order_acquire) != n_ - 1)
      __builtin_ia32_pause();
  }

private:
  void loop(int tid) {
    uint64_t seen = 0;
    while (true) {
      // Spin about 2 ms, then sleep: cheap hand-off inside a timing batch,
      // no stolen CPU between batches.
      double start = now();
      uint64_t g;
      int spins = 0;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        __builtin_ia32_pause();
        if (++spins == 4096) {
          spins = 0;
          if (now() - start > 2e-3) {
            std::unique_lock<std::mutex> l(m_);
            cv_.wait(l, [&] { return gen_.load() != seen; });
          }
        }
      }
      seen = g;
      if (stop_)
        return;
      (*job_)(tid, n_);
      done_.fetch_add(1, std::memory_order_release);
    }
  }
  int n_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> done_{0};
  const std::function<void(int, int)> *job_ = nullptr;
  bool stop_ = false;
};

void splitRange(int64_t total, int tid, int n, int64_t &b, int64_t &e) {
  int64_t base = total / n, extra = total % n;
  b = tid * base + std::min<int64_t>(tid, extra);
  e = b + base + (tid < extra ? 1 : 0);
}

//===----------------------------------------------------------------------===//
// normc bundles
//===----------------------------------------------------------------------===//

using PackedFn = int32_t (*)(void *const *, const int64_t *, int64_t, int64_t);
using WorkFn = int64_t (*)(const int64_t *);
using FinalizeFn = int32_t (*)(void *const *, const int64_t *);

struct Kernel {
  const normc_kernel *handle = nullptr;
  PackedFn packed = nullptr;
  WorkFn work = nullptr;
  WorkFn workspace = nullptr;
  FinalizeFn finalize = nullptr;
  PackedFn prepass = nullptr; // forward kernels on long rows
  WorkFn prepassWork = nullptr;
  std::vector<normc_arg_info> args;
};

// A kernel's workspace (at least 8 bytes), or an empty Buffer for kernels
// without one.
Buffer makeWorkspace(const Kernel &k, const std::vector<int64_t> &dims) {
  if (!k.workspace)
    return Buffer();
  return Buffer(
      static_cast<size_t>(std::max<int64_t>(k.workspace(dims.data()), 8)));
}

// One whole call on the calling thread (the outputs the checks compare):
// prepass items, work items, finalize. `ptrs` holds the workspace last.
int32_t runSerial(const Kernel &k, const std::vector<void *> &ptrs,
                  const std::vector<int64_t> &dims) {
  const int64_t *d = dims.data();
  int64_t prework = k.prepass ? k.prepassWork(d) : 0;
  if (prework > 0)
    if (int32_t rc = k.prepass(ptrs.data(), d, 0, prework))
      return rc;
  if (int32_t rc = k.packed(ptrs.data(), d, 0, k.work(d)))
    return rc;
  return k.finalize ? k.finalize(ptrs.data(), d) : 0;
}

struct Case {
  std::string op, shape, layout, dtype, dir;
  std::vector<int64_t> logical;  // N,C,H,W or rows,cols
  std::vector<int64_t> physical; // memory order
};

std::string caseName(const Case &c) {
  std::string s = c.op + " " + c.shape;
  if (!c.layout.empty())
    s += " " + c.layout;
  return s + " " + c.dtype + " " + c.dir;
}

bool fileExists(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// Compiles (once) the bundle holding kernel "k" and "k_backward".
std::string ensureBundle(const Options &o, const Case &c) {
  std::string spec;
  std::string shape;
  if (c.op == "layer_norm" || c.op == "rms_norm") {
    shape = "?x" + std::to_string(c.physical[1]);
  } else {
    shape = "?";
    for (size_t i = 1; i < c.physical.size(); ++i)
      shape += "x" + std::to_string(c.physical[i]);
  }
  std::string flags = "--op=" + c.op + " --shape=" + shape +
                      " --dtype=" + c.dtype + " --backward --name=k";
  if (c.op == "batch_norm")
    flags += " --training";
  if (c.op == "group_norm")
    flags += " --groups=32";
  if (c.layout == "nhwc")
    flags += " --layout=nhwc";
  std::string file = o.kernelDir + "/" + c.op + "_" + shape.substr(2) + "_" +
                     (c.layout.empty() ? "row" : c.layout) + "_" + c.dtype +
                     ".so";
  if (!fileExists(file)) {
    std::string cmd = "mkdir -p '" + o.kernelDir + "' && '" + o.normc + "' " +
                      flags + " --emit=shared -o '" + file + "'";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "normc failed: %s\n", cmd.c_str());
      return "";
    }
  }
  return file;
}

bool loadKernel(normc_bundle *bundle, void *dl, const std::string &name,
                Kernel &k) {
  if (normc_bundle_find_kernel(bundle, name.c_str(), &k.handle) != NORMC_OK) {
    std::fprintf(stderr, "%s\n", normc_last_error());
    return false;
  }
  std::string base = "__normc_" + name;
  k.packed = reinterpret_cast<PackedFn>(dlsym(dl, (base + "_packed").c_str()));
  k.work = reinterpret_cast<WorkFn>(dlsym(dl, (base + "_work").c_str()));
  k.workspace =
      reinterpret_cast<WorkFn>(dlsym(dl, (base + "_workspace").c_str()));
  k.finalize =
      reinterpret_cast<FinalizeFn>(dlsym(dl, (base + "_finalize").c_str()));
  k.prepass =
      reinterpret_cast<PackedFn>(dlsym(dl, (base + "_prepass").c_str()));
  k.prepassWork =
      reinterpret_cast<WorkFn>(dlsym(dl, (base + "_prepass_work").c_str()));
  k.args.resize(normc_kernel_num_args(k.handle));
  for (size_t i = 0; i < k.args.size(); ++i)
    (void)normc_kernel_arg(k.handle, i, &k.args[i]);
  // A prepass always comes with its item count and a workspace.
  return k.packed && k.work && (!k.prepass || (k.prepassWork && k.workspace));
}

// Concrete shapes: the symbols of the kernel get their values from the arg
// whose rank equals the data rank (x / dy).
struct Bound {
  std::vector<int64_t> dims;                // per symbol
  std::vector<std::vector<int64_t>> shapes; // per arg
  std::vector<size_t> bytes;                // per arg
};

Bound bindShapes(const Kernel &k, const std::vector<int64_t> &physical) {
  Bound b;
  b.dims.assign(normc_kernel_num_dims(k.handle), 0);
  for (const auto &a : k.args)
    if (a.rank == physical.size())
      for (size_t i = 0; i < a.rank; ++i)
        if (a.shape[i].symbol >= 0)
          b.dims[a.shape[i].symbol] = physical[i];
  for (const auto &a : k.args) {
    std::vector<int64_t> s;
    size_t n = 1;
    for (size_t i = 0; i < a.rank; ++i) {
      int64_t v =
          a.shape[i].symbol >= 0 ? b.dims[a.shape[i].symbol] : a.shape[i].size;
      s.push_back(v);
      n *= static_cast<size_t>(v);
    }
    b.shapes.push_back(s);
    b.bytes.push_back(n * dtypeSize(a.dtype));
  }
  return b;
}

//===----------------------------------------------------------------------===//
// Measurement
//===----------------------------------------------------------------------===//

struct Impl {
  std::string name;
  std::string note;
  std::function<void()> call;
  int reps = 1; // calls per sample
  std::vector<double> samples;
  bool failed = false;
};

double median(std::vector<double> v) {
  if (v.empty())
    return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Warm-up: >= `seconds` and >= 3 calls, or >= 1 s (a single call that long
// is its own warm-up). Returns the time of the last call.
double warm(Impl &im, double seconds) {
  double t0 = now();
  int calls = 0;
  double last = 0;
  while (true) {
    double a = now();
    im.call();
    last = now() - a;
    ++calls;
    double el = now() - t0;
    if ((calls >= 3 && el >= seconds) || el >= 1.0 || calls > 100000)
      break;
  }
  return last;
}

void measure(std::vector<Impl> &impls, const Options &o) {
  bool first = true;
  std::vector<double> lastCall;
  for (auto &im : impls) {
    double t = warm(im, first ? o.firstWarmup : o.warmup);
    im.reps =
        t >= o.minSample
            ? 1
            : static_cast<int>(std::ceil(o.minSample / std::max(t, 1e-7)));
    lastCall.push_back(t);
    first = false;
  }
  for (int r = 0; r < o.rounds; ++r) {
    for (size_t i = 0; i < impls.size(); ++i) {
      Impl &im = impls[i];
      // One untimed call puts caches and threads in this impl's state
      // (skipped for calls over 20 ms, where it would not matter).
      if (lastCall[i] < 20e-3)
        im.call();
      for (int c = 0; c < o.calls; ++c) {
        double a = now();
        for (int k = 0; k < im.reps; ++k)
          im.call();
        im.samples.push_back((now() - a) / im.reps);
      }
      // let OpenMP / pool spinners go to sleep before the next impl
      std::this_thread::sleep_for(std::chrono::milliseconds(o.pauseMs));
    }
  }
}

//===----------------------------------------------------------------------===//
// oneDNN
//===----------------------------------------------------------------------===//

#ifdef NORMC_BENCH_HAVE_DNNL
struct DnnlRun {
  std::string impl; // onednn / onednn-blk
  std::string info;
  dnnl::primitive prim;
  std::unordered_map<int, dnnl::memory> args;
  std::vector<Buffer> owned;
  // outputs to compare with normc (plain layouts only)
  void *y = nullptr, *dgamma = nullptr, *dbeta = nullptr;
  dnnl::memory::data_type dt;
};
#endif

//===----------------------------------------------------------------------===//
// The benchmark
//===----------------------------------------------------------------------===//

struct Bench {
  Options o;
  FILE *json = stdout;
  std::vector<int> cpus = allowedCpus();
#ifdef NORMC_BENCH_HAVE_DNNL
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
#endif

  void emit(const Case &c, int threads, const Impl &im, size_t bytes,
            double sec, double copySec) {
    double gbps = bytes / sec / 1e9;
    double frac = copySec / sec;
    std::fprintf(stderr,
                 "  %-11s T=%d %9.3f ms %7.2f GB/s  %5.2f of copy%s%s\n",
                 im.name.c_str(), threads, sec * 1e3, gbps, frac,
                 im.note.empty() ? "" : "  ", im.note.c_str());
    std::fprintf(
        json,
        "{\"src\":\"cpp\",\"impl\":\"%s\",\"op\":\"%s\",\"shape\":\"%s\","
        "\"layout\":\"%s\",\"dtype\":\"%s\",\"dir\":\"%s\",\"threads\":%d,"
        "\"bytes\":%zu,\"sec\":%.9g,\"copy_sec\":%.9g,\"gbps\":%.4f,"
        "\"frac\":%.4f,\"samples\":%zu,\"note\":\"%s\"}\n",
        im.name.c_str(), c.op.c_str(), c.shape.c_str(), c.layout.c_str(),
        c.dtype.c_str(), c.dir.c_str(), threads, bytes, sec, copySec, gbps,
        frac, im.samples.size(), im.note.c_str());
    std::fflush(json);
  }

  void emitUnavailable(const Case &c, int threads, const std::string &impl,
                       std::string why, size_t bytes) {
    for (char &ch : why)
      if (ch == '"' || ch == '\\' || ch == '\n')
        ch = ' ';
    std::fprintf(
        json,
        "{\"src\":\"cpp\",\"impl\":\"%s\",\"op\":\"%s\",\"shape\":\"%s\","
        "\"layout\":\"%s\",\"dtype\":\"%s\",\"dir\":\"%s\",\"threads\":%d,"
        "\"bytes\":%zu,\"sec\":null,\"copy_sec\":null,\"gbps\":null,"
        "\"frac\":null,\"samples\":0,\"note\":\"%s\"}\n",
        impl.c_str(), c.op.c_str(), c.shape.c_str(), c.layout.c_str(),
        c.dtype.c_str(), c.dir.c_str(), threads, bytes, why.c_str());
  }

  void emitCheck(const Case &c, const std::string &what, double maxAbs,
                 double maxRef) {
    std::fprintf(stderr,
                 "  check vs oneDNN: %s max|diff| %.3g (max|ref| %.3g)\n",
                 what.c_str(), maxAbs, maxRef);
    std::fprintf(
        json,
        "{\"src\":\"cpp\",\"check\":\"onednn\",\"op\":\"%s\",\"shape\":\"%s\","
        "\"layout\":\"%s\",\"dtype\":\"%s\",\"dir\":\"%s\",\"what\":\"%s\","
        "\"max_abs_diff\":%.6g,\"max_abs_ref\":%.6g}\n",
        c.op.c_str(), c.shape.c_str(), c.layout.c_str(), c.dtype.c_str(),
        c.dir.c_str(), what.c_str(), maxAbs, maxRef);
  }

  std::vector<Case> cases() {
    std::vector<Case> out;
    for (const auto &op : o.ops) {
      bool rows = op == "layer_norm" || op == "rms_norm";
      std::vector<std::string> shapes = rows ? o.rowShapes : o.channelShapes;
      std::vector<std::string> layouts =
          rows ? std::vector<std::string>{""} : o.layouts;
      for (const auto &shape : shapes)
        for (const auto &layout : layouts)
          for (const auto &dtype : o.dtypes)
            for (const auto &dir : o.dirs) {
              Case c{op, shape, layout, dtype, dir, parseShape(shape), {}};
              c.physical = c.logical;
              if (layout == "nhwc")
                c.physical = {c.logical[0], c.logical[2], c.logical[3],
                              c.logical[1]};
              out.push_back(c);
            }
    }
    return out;
  }

  void runCase(const Case &c) {
    std::fprintf(stderr, "== %s\n", caseName(c).c_str());
    std::string file = ensureBundle(o, c);
    if (file.empty())
      return;
    normc_bundle *bundle = nullptr;
    if (normc_bundle_open(file.c_str(), &bundle) != NORMC_OK) {
      std::fprintf(stderr, "  cannot open %s: %s\n", file.c_str(),
                   normc_last_error());
      return;
    }
    void *dl = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    Kernel fwd, bwd;
    if (!dl || !loadKernel(bundle, dl, "k", fwd) ||
        !loadKernel(bundle, dl, "k_backward", bwd)) {
      std::fprintf(stderr, "  cannot load kernels from %s\n", file.c_str());
      normc_bundle_close(bundle);
      return;
    }
    bool backward = c.dir == "bwd";
    Bound fb = bindShapes(fwd, c.physical);
    Bound bb = bindShapes(bwd, c.physical);

    // Forward buffers (also produce mean/rstd for the backward).
    std::map<std::string, Buffer> fbuf;
    for (size_t i = 0; i < fwd.args.size(); ++i)
      fbuf[fwd.args[i].name] =
          Buffer(fb.bytes[i], fwd.args[i].io == NORMC_IO_IN ? 0 : o.misalign);
    auto elems = [](const Bound &b, size_t i, const Kernel &k) {
      return b.bytes[i] / dtypeSize(k.args[i].dtype);
    };
    for (size_t i = 0; i < fwd.args.size(); ++i) {
      const auto &a = fwd.args[i];
      std::string n = a.name;
      void *p = fbuf[n].data;
      size_t ne = elems(fb, i, fwd);
      if (n == "x")
        fill(p, a.dtype, ne, -1.0f, 3.0f, 1);
      else if (n == "gamma")
        fill(p, a.dtype, ne, 0.5f, 1.5f, 2);
      else if (n == "beta")
        fill(p, a.dtype, ne, -0.5f, 0.5f, 3);
      else if (n == "running_var")
        fill(p, a.dtype, ne, 1.0f, 1.0f, 4);
    }
    std::vector<void *> fptr;
    for (const auto &a : fwd.args)
      fptr.push_back(fbuf[a.name].data);
    // Forward kernels with a prepass (long rows) have a workspace too.
    Buffer fworkspace = makeWorkspace(fwd, fb.dims);
    if (fwd.workspace)
      fptr.push_back(fworkspace.data);
    int64_t fwork = fwd.work(fb.dims.data());
    int64_t fprework = fwd.prepass ? fwd.prepassWork(fb.dims.data()) : 0;
    if (int32_t rc = runSerial(fwd, fptr, fb.dims)) {
      std::fprintf(stderr, "  forward kernel failed: %d\n", rc);
      normc_bundle_close(bundle);
      return;
    }

    std::map<std::string, Buffer> bbuf;
    std::vector<void *> bptr;
    Buffer workspace;
    int64_t bwork = 0, bprework = 0;
    if (backward) {
      for (size_t i = 0; i < bwd.args.size(); ++i) {
        const auto &a = bwd.args[i];
        if (a.io == NORMC_IO_IN && fbuf.count(a.name))
          continue; // shared with the forward (x, gamma, mean, rstd)
        bbuf[a.name] =
            Buffer(bb.bytes[i], a.io == NORMC_IO_IN ? 0 : o.misalign);
        if (a.name == std::string("dy"))
          fill(bbuf[a.name].data, a.dtype, elems(bb, i, bwd), -1.0f, 1.0f, 5);
      }
      for (const auto &a : bwd.args)
        bptr.push_back(bbuf.count(a.name) ? bbuf[a.name].data
                                          : fbuf[a.name].data);
      workspace = makeWorkspace(bwd, bb.dims);
      bptr.push_back(workspace.data);
      bwork = bwd.work(bb.dims.data());
      bprework = bwd.prepass ? bwd.prepassWork(bb.dims.data()) : 0;
    }
    const Kernel &K = backward ? bwd : fwd;
    const Bound &B = backward ? bb : fb;
    size_t ideal = 0;
    for (size_t b : B.bytes)
      ideal += b;
    std::fprintf(stderr, "  ideal bytes %.1f MiB, work items %lld",
                 ideal / 1048576.0,
                 static_cast<long long>(backward ? bwork : fwork));
    if (int64_t prework = backward ? bprework : fprework)
      std::fprintf(stderr, " (after %lld prepass items)",
                   static_cast<long long>(prework));
    std::fprintf(stderr, "\n");

    size_t half = ideal / 2;
    Buffer csrc(half), cdst(half, o.misalign);
    std::memset(csrc.data, 1, half);

    for (int T : o.threads) {
      // The runtime pins its workers to the CPUs the creating thread may use:
      // create its context before our pool pins this thread to one CPU.
      unpinSelf(cpus);
      normc_context *ctx = nullptr;
      if (contains(o.impls, "normc-rt")) {
        normc_context_options opts;
        normc_context_options_init(&opts);
        opts.num_threads = T;
        opts.pin_threads = 1;
        if (normc_context_create(&opts, &ctx) != NORMC_OK)
          std::fprintf(stderr, "  normc_context_create: %s\n",
                       normc_last_error());
      }
      Pool pool(T, cpus);
#ifdef NORMC_BENCH_HAVE_DNNL
      omp_set_num_threads(T);
#endif
      std::vector<Impl> impls;
      if (contains(o.impls, "copy")) {
        Impl im;
        im.name = "copy";
        im.call = [&pool, &csrc, &cdst, half] {
          pool.run([&](int tid, int n) {
            int64_t b, e;
            splitRange(static_cast<int64_t>(half / 64), tid, n, b, e);
            size_t bb0 = b * 64, ee = tid == n - 1 ? half : e * 64;
            std::memcpy(cdst.as<char>() + bb0, csrc.as<char>() + bb0, ee - bb0);
          });
        };
        impls.push_back(std::move(im));
      }
      if (contains(o.impls, "normc")) {
        Impl im;
        im.name = "normc";
        // The prepass items (if any) split across the threads, then, once
        // pool.run has returned (every thread done), the work items, then
        // finalize on the caller: one kernel call, timed as a whole.
        const Kernel *k = backward ? &bwd : &fwd;
        const int64_t *dims = backward ? bb.dims.data() : fb.dims.data();
        const std::vector<void *> *ptrs = backward ? &bptr : &fptr;
        int64_t prework = backward ? bprework : fprework;
        int64_t work = backward ? bwork : fwork;
        im.call = [&pool, k, dims, ptrs, prework, work] {
          if (prework > 0)
            pool.run([&](int tid, int n) {
              int64_t b, e;
              splitRange(prework, tid, n, b, e);
              if (b < e)
                k->prepass(ptrs->data(), dims, b, e);
            });
          pool.run([&](int tid, int n) {
            int64_t b, e;
            splitRange(work, tid, n, b, e);
            if (b < e)
              k->packed(ptrs->data(), dims, b, e);
          });
          if (k->finalize)
            k->finalize(ptrs->data(), dims);
        };
        impls.push_back(std::move(im));
      }
      // runtime path
      std::vector<normc_tensor> tensors;
      if (ctx) {
        {
          const std::vector<void *> &ptrs = backward ? bptr : fptr;
          for (size_t i = 0; i < K.args.size(); ++i) {
            normc_tensor t{};
            t.data = ptrs[i];
            t.dtype = K.args[i].dtype;
            t.rank = K.args[i].rank;
            t.shape = B.shapes[i].data();
            tensors.push_back(t);
          }
          Impl im;
          im.name = "normc-rt";
          const normc_kernel *h = K.handle;
          im.call = [ctx, h, &tensors] {
            if (normc_run(ctx, h, tensors.data(), tensors.size()) != NORMC_OK) {
              std::fprintf(stderr, "normc_run: %s\n", normc_last_error());
              std::exit(1);
            }
          };
          impls.push_back(std::move(im));
        }
      }
#ifdef NORMC_BENCH_HAVE_DNNL
      std::vector<std::unique_ptr<DnnlRun>> dnnl;
      for (const char *variant : {"onednn", "onednn-blk"}) {
        if (!contains(o.impls, variant))
          continue;
        std::string why;
        std::unique_ptr<DnnlRun> d = makeDnnl(c, variant, fbuf, bbuf, why);
        if (!d) {
          if (!why.empty())
            emitUnavailable(c, T, variant, why, ideal);
          continue;
        }
        Impl im;
        im.name = variant;
        im.note = d->info;
        DnnlRun *dp = d.get();
        im.call = [this, dp] {
          dp->prim.execute(strm, dp->args);
          strm.wait();
        };
        if (T == o.threads.front() && o.check && d->y)
          checkDnnl(c, *d, fwd, bwd, fbuf, bbuf, im);
        impls.push_back(std::move(im));
        dnnl.push_back(std::move(d));
      }
#endif
      measure(impls, o);
      double copySec = NAN;
      for (auto &im : impls)
        if (im.name == "copy")
          copySec = median(im.samples);
      for (auto &im : impls)
        emit(c, T, im, ideal, median(im.samples), copySec);
      normc_context_destroy(ctx);
    }
    normc_bundle_close(bundle);
    dlclose(dl);
  }

#ifdef NORMC_BENCH_HAVE_DNNL
  std::unique_ptr<DnnlRun> makeDnnl(const Case &c, const std::string &variant,
                                    std::map<std::string, Buffer> &fbuf,
                                    std::map<std::string, Buffer> &bbuf,
                                    std::string &why) {
    using namespace dnnl;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    bool ln = c.op == "layer_norm";
    bool bn = c.op == "batch_norm";
    if (!ln && !bn)
      return nullptr; // oneDNN 2.6 has no RMSNorm, GroupNorm, InstanceNorm
    if (variant == "onednn-blk" && !(bn && c.layout == "nchw"))
      return nullptr;
    bool backward = c.dir == "bwd";
    auto d = std::make_unique<DnnlRun>();
    d->impl = variant;
    d->dt = c.dtype == "bf16" ? dt::bf16 : dt::f32;
    size_t es = c.dtype == "bf16" ? 2 : 4;
    try {
      memory::dims dims(c.logical.begin(), c.logical.end());
      tag t = ln ? tag::ab
                 : (variant == "onednn-blk"
                        ? tag::nChw16c
                        : (c.layout == "nhwc" ? tag::nhwc : tag::nchw));
      memory::desc md(dims, d->dt, t);
      std::string blockTag;
      if (variant == "onednn-blk") {
        // nChw16c is oneDNN's AVX-512 block; its AVX2 jit kernels use
        // nChw8c (nChw16c falls back to the reference kernel there).
        blockTag = "nChw16c";
        batch_normalization_forward::desc probe(
            prop_kind::forward_training, md, 1e-5f,
            normalization_flags::use_scale | normalization_flags::use_shift);
        batch_normalization_forward::primitive_desc ppd(probe, eng);
        if (std::string(ppd.impl_info_str()).rfind("bnorm_ref", 0) == 0) {
          md = memory::desc(dims, d->dt, tag::nChw8c);
          blockTag = "nChw8c";
        }
      }
      int64_t C = ln ? c.logical[1] : c.logical[1];
      int64_t S = ln ? c.logical[0] : c.logical[1]; // stats length
      memory::desc pmd({C}, dt::f32, tag::a);
      memory::desc smd = ln ? memory::desc({S}, dt::f32, tag::a) : pmd;
      auto flags =
          normalization_flags::use_scale | normalization_flags::use_shift;
      const float eps = 1e-5f;
      size_t dataBytes = md.get_size();
      bool plain = variant == "onednn";
      auto own = [&](size_t bytes) {
        d->owned.emplace_back(bytes);
        return d->owned.back().data;
      };
      auto ownOut = [&](size_t bytes) {
        d->owned.emplace_back(bytes, o.misalign);
        return d->owned.back().data;
      };
      // Inputs: share normc's buffers on plain layouts (same bits).
      void *x = plain ? fbuf["x"].data : own(dataBytes);
      if (!plain)
        std::memcpy(x, fbuf["x"].data, dataBytes);
      void *scale = own(C * 4), *shift = own(C * 4);
      for (int64_t i = 0; i < C; ++i) {
        static_cast<float *>(scale)[i] =
            loadF(fbuf["gamma"].data,
                  c.dtype == "bf16" ? NORMC_DTYPE_BF16 : NORMC_DTYPE_F32, i);
        static_cast<float *>(shift)[i] =
            loadF(fbuf["beta"].data,
                  c.dtype == "bf16" ? NORMC_DTYPE_BF16 : NORMC_DTYPE_F32, i);
      }
      void *y = ownOut(dataBytes), *mean = own(S * 4), *var = own(S * 4);
      std::unordered_map<int, memory> fargs{
          {DNNL_ARG_SRC, memory(md, eng, x)},
          {DNNL_ARG_DST, memory(md, eng, y)},
          {DNNL_ARG_SCALE, memory(pmd, eng, scale)},
          {DNNL_ARG_SHIFT, memory(pmd, eng, shift)},
          {DNNL_ARG_MEAN, memory(smd, eng, mean)},
          {DNNL_ARG_VARIANCE, memory(smd, eng, var)}};
      primitive fprim;
      std::string info;

      if (ln) {
        layer_normalization_forward::desc fd(prop_kind::forward_training, md,
                                             smd, eps, flags);
        layer_normalization_forward::primitive_desc pd(fd, eng);
        info = pd.impl_info_str();
        fprim = layer_normalization_forward(pd);
        if (backward) {
          layer_normalization_backward::desc bd(prop_kind::backward, md, md,
                                                smd, eps, flags);
          layer_normalization_backward::primitive_desc bpd(bd, eng, pd);
          info = bpd.impl_info_str();
          d->prim = layer_normalization_backward(bpd);
        }
      } else {
        batch_normalization_forward::desc fd(prop_kind::forward_training, md,
                                             eps, flags);
        batch_normalization_forward::primitive_desc pd(fd, eng);
        info = pd.impl_info_str();
        fprim = batch_normalization_forward(pd);
        if (backward) {
          batch_normalization_backward::desc bd(prop_kind::backward, md, md,
                                                eps, flags);
          batch_normalization_backward::primitive_desc bpd(bd, eng, pd);
          info = bpd.impl_info_str();
          d->prim = batch_normalization_backward(bpd);
        }
      }
      // One forward run: statistics for the backward, y for the check.
      fprim.execute(strm, fargs);
      strm.wait();
      d->info = blockTag.empty() ? info : info + " " + blockTag;
      if (!backward) {
        d->prim = fprim;
        d->args = fargs;
        if (plain)
          d->y = y;
        return d;
      }
      void *dy = plain ? bbuf["dy"].data : own(dataBytes);
      if (!plain)
        std::memcpy(dy, bbuf["dy"].data, dataBytes);
      void *dx = ownOut(dataBytes), *dscale = own(C * 4), *dshift = own(C * 4);
      d->args = {{DNNL_ARG_SRC, memory(md, eng, x)},
                 {DNNL_ARG_DIFF_DST, memory(md, eng, dy)},
                 {DNNL_ARG_MEAN, memory(smd, eng, mean)},
                 {DNNL_ARG_VARIANCE, memory(smd, eng, var)},
                 {DNNL_ARG_SCALE, memory(pmd, eng, scale)},
                 {DNNL_ARG_SHIFT, memory(pmd, eng, shift)},
                 {DNNL_ARG_DIFF_SRC, memory(md, eng, dx)},
                 {DNNL_ARG_DIFF_SCALE, memory(pmd, eng, dscale)},
                 {DNNL_ARG_DIFF_SHIFT, memory(pmd, eng, dshift)}};
      if (plain) {
        d->y = dx;
        d->dgamma = dscale;
        d->dbeta = dshift;
      }
      (void)es;
      return d;
    } catch (const dnnl::error &e) {
      std::fprintf(stderr, "  %s: unavailable (%s)\n", variant.c_str(),
                   e.what());
      why = std::string("oneDNN: ") + e.what();
      return nullptr;
    }
  }

  // Runs both once and compares the outputs (y or dx, dgamma, dbeta).
  void checkDnnl(const Case &c, DnnlRun &d, const Kernel &fwd,
                 const Kernel &bwd, std::map<std::string, Buffer> &fbuf,
                 std::map<std::string, Buffer> &bbuf, Impl &im) {
    d.prim.execute(strm, d.args);
    strm.wait();
    bool backward = c.dir == "bwd";
    normc_dtype dtv = c.dtype == "bf16" ? NORMC_DTYPE_BF16 : NORMC_DTYPE_F32;
    size_t n = 1;
    for (auto v : c.logical)
      n *= v;
    // normc's outputs were produced by the warm-up-free direct forward call
    // (forward) or need one backward call now.
    if (backward) {
      std::vector<void *> ptrs;
      for (const auto &a : bwd.args)
        ptrs.push_back(bbuf.count(a.name) ? bbuf[a.name].data
                                          : fbuf[a.name].data);
      Bound bb = bindShapes(bwd, c.physical);
      Buffer ws = bwd.workspace ? makeWorkspace(bwd, bb.dims) : Buffer(8);
      ptrs.push_back(ws.data);
      (void)runSerial(bwd, ptrs, bb.dims);
    }
    auto cmp = [&](const std::string &what, const void *ours, normc_dtype odt,
                   const void *ref, normc_dtype rdt, size_t count) {
      double md = 0, mr = 0;
      for (size_t i = 0; i < count; ++i) {
        double a = loadF(ours, odt, i), b = loadF(ref, rdt, i);
        md = std::max(md, std::fabs(a - b));
        mr = std::max(mr, std::fabs(b));
        if (std::isnan(a) != std::isnan(b))
          md = INFINITY;
      }
      emitCheck(c, what, md, mr);
      char buf[64];
      std::snprintf(buf, sizeof buf, " %s diff %.2g", what.c_str(), md);
      im.note += buf;
    };
    (void)fwd;
    if (!backward) {
      cmp("y", fbuf["y"].data, dtv, d.y, dtv, n);
    } else {
      cmp("dx", bbuf["dx"].data, dtv, d.y, dtv, n);
      cmp("dgamma", bbuf["dgamma"].data, dtv, d.dgamma, NORMC_DTYPE_F32,
          c.logical[1]);
      cmp("dbeta", bbuf["dbeta"].data, dtv, d.dbeta, NORMC_DTYPE_F32,
          c.logical[1]);
    }
  }
#endif
};

void usage() {
  std::fprintf(
      stderr,
      "usage: normc_bench [options]\n"
      "  --normc=PATH         normc compiler (default build/bin/normc)\n"
      "  --kernel-dir=DIR     where bundles are cached (build-bench/kernels)\n"
      "  --json=FILE          JSON lines output (default stdout)\n"
      "  --ops=a,b            "
      "layer_norm,rms_norm,batch_norm,group_norm,instance_norm\n"
      "  --dtypes=f32,bf16  --dirs=fwd,bwd  --threads=1,2\n"
      "  --shapes=RxC,...     LayerNorm/RMSNorm shapes\n"
      "  --channel-shapes=NxCxHxW,...  BatchNorm/GroupNorm/InstanceNorm\n"
      "                       shapes, logical NCHW (default 32x64x56x56)\n"
      "  --layouts=nchw,nhwc  BatchNorm/GroupNorm/InstanceNorm layouts\n"
      "  --impls=copy,normc,normc-rt,onednn,onednn-blk\n"
      "  --rounds=3 --calls=7 --no-check --pause-ms=3\n"
      "  --misalign=BYTES     outputs (and the copy's destination) start "
      "BYTES\n"
      "                       past a page boundary (default 0: page-aligned)\n"
      "  --quick              LN/RMS only at 4096x4096 and 16384x4096\n");
}

} // namespace

int main(int argc, char **argv) {
  Bench b;
  Options &o = b.o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char *key) -> const char * {
      size_t n = std::strlen(key);
      if (a.compare(0, n, key) == 0 && a.size() > n && a[n] == '=')
        return argv[i] + n + 1;
      return nullptr;
    };
    const char *v;
    if ((v = val("--normc")))
      o.normc = v;
    else if ((v = val("--kernel-dir")))
      o.kernelDir = v;
    else if ((v = val("--json")))
      o.json = v;
    else if ((v = val("--ops")))
      o.ops = splitList(v);
    else if ((v = val("--dtypes")))
      o.dtypes = splitList(v);
    else if ((v = val("--dirs")))
      o.dirs = splitList(v);
    else if ((v = val("--shapes")))
      o.rowShapes = splitList(v);
    else if ((v = val("--channel-shapes")))
      o.channelShapes = splitList(v);
    else if ((v = val("--layouts")))
      o.layouts = splitList(v);
    else if ((v = val("--impls")))
      o.impls = splitList(v);
    else if ((v = val("--threads"))) {
      o.threads.clear();
      for (auto &t : splitList(v))
        o.threads.push_back(std::stoi(t));
    } else if ((v = val("--rounds")))
      o.rounds = std::max(1, std::atoi(v));
    else if ((v = val("--calls")))
      o.calls = std::max(1, std::atoi(v));
    else if ((v = val("--misalign")))
      o.misalign = static_cast<size_t>(std::atoll(v));
    else if ((v = val("--pause-ms")))
      o.pauseMs = std::max(0, std::atoi(v));
    else if (a == "--no-check")
      o.check = false;
    else if (a == "--quick")
      o.rowShapes = {"4096x4096", "16384x4096"};
    else {
      usage();
      return a == "--help" ? 0 : 2;
    }
  }
  for (const auto &[shapes, rank, option, form] :
       {std::make_tuple(&o.rowShapes, size_t(2), "--shapes", "RxC"),
        std::make_tuple(&o.channelShapes, size_t(4), "--channel-shapes",
                        "NxCxHxW")})
    for (const std::string &shape : *shapes)
      if (!isShape(shape, rank)) {
        std::fprintf(stderr,
                     "normc_bench: %s: '%s' is not %s (positive sizes)\n",
                     option, shape.c_str(), form);
        return 2;
      }
  if (!o.json.empty()) {
    b.json = std::fopen(o.json.c_str(), "a");
    if (!b.json) {
      std::perror(o.json.c_str());
      return 1;
    }
  }
#ifdef NORMC_BENCH_HAVE_DNNL
  if (!std::getenv("OMP_PROC_BIND"))
    std::fprintf(stderr, "note: OMP_PROC_BIND is not set: oneDNN's OpenMP "
                         "threads are not pinned (bench/run_all.sh sets it)\n");
#endif
  std::fprintf(stderr, "cpus:");
  for (int c : b.cpus)
    std::fprintf(stderr, " %d", c);
  std::fprintf(stderr, "\n");
  for (const Case &c : b.cases())
    b.runCase(c);
  if (b.json != stdout)
    std::fclose(b.json);
  return 0;
}
