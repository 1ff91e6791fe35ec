//===- GpuRunTest.cpp - Running bundles with GPU code on a fake driver ----===//
//
// The GPU launcher end to end against bundles/FakeCudaDriver.cpp, which
// records every module, memory, launch and synchronization call with the
// context current at the time (bundles/FakeCuda.h). Tensor data pointers are
// made-up device addresses: nothing dereferences them. Every test ends by
// destroying its context and closing its bundles and then checks that the
// fake saw no misuse and that nothing leaked (allocations, modules, primary
// context references, pushed contexts).
//
//===----------------------------------------------------------------------===//

#include "normc/runtime.hpp"

#include "TestUtil.h"
#include "bundles/FakeCuda.h"
#include "bundles/GpuBundle.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <thread>

using namespace normc_test;
using fake_cuda::Call;
using fake_cuda::Event;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

namespace {

const char *const kFakeEnv[] = {"NORMC_CUDA_DRIVER",
                                "FAKE_CUDA_DEVICE_COUNT",
                                "FAKE_CUDA_COMPUTE_CAPABILITY",
                                "FAKE_CUDA_MEMORY_POOLS",
                                "FAKE_CUDA_FAIL",
                                "FAKE_CUDA_JIT_LOG"};

constexpr normc_device kCuda0 = {NORMC_DEVICE_CUDA, 0};

/// Made-up device addresses of scale's tensors (never dereferenced).
const uint64_t kX = 0x7f0000100000, kGamma = 0x7f0000200000,
               kY = 0x7f0000300000;
void *address(uint64_t value) { return reinterpret_cast<void *>(value); }

/// A stream handle the caller would have created (never dereferenced).
void *const kStream = address(0x5eed0);

/// The test hooks of a library the runtime has loaded: dlopen of the same
/// path returns the same instance.
class Library {
public:
  explicit Library(const std::string &name)
      : handle(dlopen(bundlePath(name).c_str(), RTLD_NOW | RTLD_LOCAL)) {
    EXPECT_NE(handle, nullptr) << dlerror();
  }
  ~Library() {
    if (handle)
      dlclose(handle);
  }
  template <typename Fn> Fn get(const char *symbol) const {
    void *address = handle ? dlsym(handle, symbol) : nullptr;
    EXPECT_NE(address, nullptr) << symbol;
    return reinterpret_cast<Fn>(address);
  }

private:
  void *handle;
};

class FakeDriver : public Library {
public:
  explicit FakeDriver(const std::string &name) : Library(name) {}
  void reset() const { get<fake_cuda::ResetFn>("fake_cuda_reset")(); }
  std::vector<Event> events() const {
    std::vector<Event> result;
    get<fake_cuda::EventsFn>("fake_cuda_events")(&result);
    return result;
  }
  fake_cuda::Health health() const {
    fake_cuda::Health result;
    get<fake_cuda::HealthFn>("fake_cuda_health")(&result);
    return result;
  }
};

std::vector<Call> calls(const std::vector<Event> &events) {
  std::vector<Call> result;
  for (const Event &event : events)
    result.push_back(event.call);
  return result;
}

std::vector<Event> only(const std::vector<Event> &events, Call call) {
  std::vector<Event> result;
  for (const Event &event : events)
    if (event.call == call)
      result.push_back(event);
  return result;
}

/// The parameter values of a GPU function of scale (docs/gpu.md).
std::vector<int64_t> scaleParams(int64_t rows, int64_t cols,
                                 uint64_t workspace) {
  int64_t n = rows * cols;
  auto p = [](uint64_t pointer) { return static_cast<int64_t>(pointer); };
  return {p(kX),        p(kX),        0, n,    1, // x
          p(kGamma),    p(kGamma),    0, cols, 1, // gamma
          p(kY),        p(kY),        0, n,    1, // y
          p(workspace), p(workspace), 0, rows, 1, // (rows * 8 + 4) / 8
          rows,         cols};
}

class Gpu : public ::testing::Test {
protected:
  void SetUp() override {
    for (const char *name : kFakeEnv)
      unsetenv(name);
    setenv("FAKE_CUDA_DEVICE_COUNT", "1", 1);
    useDriver("fake_cuda");
    bundle = openBundle("gpu_bundle");
    ASSERT_TRUE(bundle);
    hooks.reset(new Library("gpu_bundle"));
    hooks->get<normc_test_gpu::ResetFn>("normc_test_gpu_reset")();
    context = makeContext(2);
    ASSERT_TRUE(context);
  }

  void TearDown() override {
    context.reset();
    extraBundle.reset();
    bundle.reset();
    fake_cuda::Health health = driver->health();
    EXPECT_THAT(health.violations, IsEmpty());
    EXPECT_EQ(health.liveAllocations, 0);
    EXPECT_EQ(health.liveModules, 0);
    EXPECT_EQ(health.contextRefs, 0);
    EXPECT_EQ(health.contextDepth, 0);
    for (const char *name : kFakeEnv)
      unsetenv(name);
  }

  void useDriver(const std::string &name) {
    setenv("NORMC_CUDA_DRIVER", bundlePath(name).c_str(), 1);
    driver.reset(new FakeDriver(name));
    driver->reset();
  }

  const normc_kernel *kernel(const char *name, normc_bundle *from = nullptr) {
    return findKernel(from ? from : bundle.get(), name);
  }

  /// scale's args on `device` at the made-up addresses.
  static Args scaleArgs(int64_t rows, int64_t cols,
                        normc_device device = kCuda0) {
    Args args;
    bool empty = rows * cols == 0;
    args.add(empty ? nullptr : address(kX), NORMC_DTYPE_F32, {rows, cols},
             device);
    args.add(address(kGamma), NORMC_DTYPE_F32, {cols}, device);
    args.add(empty ? nullptr : address(kY), NORMC_DTYPE_F32, {rows, cols},
             device);
    return args;
  }

  normc_status runScale(int64_t rows, int64_t cols) {
    Args args = scaleArgs(rows, cols);
    return normc_run(context.get(), kernel("scale"), args.data(), args.size());
  }

  /// Runs badplan (x: f32 [n] on cuda:0).
  normc_status runBadPlan(int64_t n) {
    Args args;
    args.add(address(kX), NORMC_DTYPE_F32, {n}, kCuda0);
    return normc_run(context.get(), kernel("badplan"), args.data(),
                     args.size());
  }

  normc_test_gpu::PlanCalls planCalls() const {
    normc_test_gpu::PlanCalls result;
    hooks->get<normc_test_gpu::PlanCallsFn>("normc_test_gpu_plan_calls")(
        &result);
    return result;
  }

  std::string ptx(const char *arch) const {
    return hooks->get<const char *>(
        (std::string("normc_gpu_ptx_") + arch).c_str());
  }

  std::unique_ptr<FakeDriver> driver;
  std::unique_ptr<Library> hooks;
  BundlePtr bundle;
  BundlePtr extraBundle;
  ContextPtr context;
};

TEST_F(Gpu, QueriesReportGpuCode) {
  ASSERT_EQ(normc_bundle_num_gpu_archs(bundle.get()), 2u);
  EXPECT_STREQ(normc_bundle_gpu_arch(bundle.get(), 0), "sm_80");
  EXPECT_STREQ(normc_bundle_gpu_arch(bundle.get(), 1), "sm_90");
  EXPECT_EQ(normc_bundle_gpu_arch(bundle.get(), 2), nullptr);
  EXPECT_EQ(normc_bundle_num_gpu_archs(nullptr), 0u);
  EXPECT_EQ(normc_bundle_gpu_arch(nullptr, 0), nullptr);

  EXPECT_EQ(normc_kernel_has_device_code(kernel("scale"), NORMC_DEVICE_CUDA),
            1);
  EXPECT_EQ(normc_kernel_has_device_code(kernel("scale"), NORMC_DEVICE_CPU), 1);
  EXPECT_EQ(normc_kernel_has_device_code(kernel("cpuonly"), NORMC_DEVICE_CUDA),
            0);
  EXPECT_EQ(normc_kernel_has_device_code(kernel("cpuonly"), NORMC_DEVICE_CPU),
            1);
  EXPECT_EQ(normc_kernel_has_device_code(nullptr, NORMC_DEVICE_CPU), 0);
  EXPECT_EQ(normc_kernel_has_device_code(kernel("scale"),
                                         static_cast<normc_device_type>(7)),
            0);

  // A bundle without GPU code.
  BundlePtr good = openBundle("good_bundle");
  ASSERT_TRUE(good);
  EXPECT_EQ(normc_bundle_num_gpu_archs(good.get()), 0u);
  EXPECT_EQ(normc_kernel_has_device_code(findKernel(good.get(), "ln"),
                                         NORMC_DEVICE_CUDA),
            0);

  // Opening touches no driver.
  EXPECT_THAT(driver->events(), IsEmpty());
}

TEST_F(Gpu, RunIssuesThePlanOnTheDefaultStreamAndWaits) {
  setenv("FAKE_CUDA_COMPUTE_CAPABILITY", "8.6", 1);
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();

  std::vector<Event> events = driver->events();
  ASSERT_THAT(calls(events),
              ElementsAre(Call::Retain, Call::Retain, Call::Load,
                          Call::GetFunction, Call::GetFunction,
                          Call::GetFunction, Call::AllocAsync, Call::Launch,
                          Call::Launch, Call::Launch, Call::FreeAsync,
                          Call::Sync));
  // Everything happens in device 0's primary context, on the default
  // stream, and succeeds.
  const void *primary = events[2].context;
  ASSERT_NE(primary, nullptr);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].result, 0) << i;
    EXPECT_EQ(events[i].stream, nullptr) << i;
    if (events[i].call == Call::Retain)
      EXPECT_EQ(events[i].device, 0);
    else
      EXPECT_EQ(events[i].context, primary) << i;
  }
  // A compute capability 8.6 GPU gets the sm_80 PTX, exactly as exported.
  EXPECT_EQ(events[2].text, ptx("sm_80"));
  EXPECT_EQ(events[3].text, "scale_gpu_rows");
  EXPECT_EQ(events[4].text, "scale_gpu_partials");
  EXPECT_EQ(events[5].text, "scale_gpu_apply");

  // The plan got the dims; its workspace is allocated, passed to every
  // launch and freed after them.
  normc_test_gpu::PlanCalls plan = planCalls();
  EXPECT_EQ(plan.calls, 1);
  EXPECT_EQ(plan.dims[0], 5);
  EXPECT_EQ(plan.dims[1], 300);
  const Event &alloc = events[6];
  EXPECT_EQ(alloc.bytes, 5u * 8 + 4);
  EXPECT_NE(alloc.pointer, 0u);
  EXPECT_EQ(events[10].pointer, alloc.pointer);

  // The launches, in plan order, with the plan's geometry and the
  // 5 (n + 1) + k parameters.
  NormcTestGpuPlan expected = normc_test_gpu::scalePlan(5, 300);
  const char *functions[] = {"scale_gpu_rows", "scale_gpu_partials",
                             "scale_gpu_apply"};
  for (int i = 0; i < 3; ++i) {
    const Event &launch = events[7 + i];
    const NormcTestGpuLaunch &planned = expected.launches[i];
    EXPECT_EQ(launch.text, functions[planned.function]) << i;
    EXPECT_THAT(launch.grid, ElementsAreArray(planned.grid)) << i;
    EXPECT_THAT(launch.block, ElementsAreArray(planned.block)) << i;
    EXPECT_EQ(launch.sharedBytes, planned.sharedBytes) << i;
    EXPECT_EQ(launch.params, scaleParams(5, 300, alloc.pointer)) << i;
  }
  EXPECT_EQ(events[7].text, "scale_gpu_partials");
  EXPECT_EQ(events[8].text, "scale_gpu_rows");

  // The second run reuses the context, module and functions.
  driver->reset();
  ASSERT_EQ(runScale(2, 3), NORMC_OK) << normc_last_error();
  events = driver->events();
  ASSERT_THAT(calls(events),
              ElementsAre(Call::AllocAsync, Call::Launch, Call::Launch,
                          Call::Launch, Call::FreeAsync, Call::Sync));
  EXPECT_EQ(events[1].params, scaleParams(2, 3, events[0].pointer));
  EXPECT_EQ(planCalls().calls, 2);

  // Destroying the context releases its reference; closing the bundle
  // unloads the module (in its context) and releases the module's.
  driver->reset();
  context.reset();
  EXPECT_THAT(calls(driver->events()), ElementsAre(Call::Release));
  EXPECT_EQ(driver->health().contextRefs, 1);
  driver->reset();
  bundle.reset();
  events = driver->events();
  ASSERT_THAT(calls(events), ElementsAre(Call::Unload, Call::Release));
  EXPECT_EQ(events[0].context, primary);
  EXPECT_EQ(events[0].result, 0);
}

TEST_F(Gpu, RunAsyncEnqueuesOnTheCallersStreamWithoutWaiting) {
  Args args = scaleArgs(5, 300);
  ASSERT_EQ(normc_run_async(context.get(), kernel("scale"), args.data(),
                            args.size(), kStream),
            NORMC_OK)
      << normc_last_error();
  std::vector<Event> events = driver->events();
  ASSERT_THAT(calls(events),
              ElementsAre(Call::Retain, Call::Retain, Call::Load,
                          Call::GetFunction, Call::GetFunction,
                          Call::GetFunction, Call::AllocAsync, Call::Launch,
                          Call::Launch, Call::Launch, Call::FreeAsync));
  for (size_t i = 6; i < events.size(); ++i)
    EXPECT_EQ(events[i].stream, kStream) << i;
  // The default compute capability (9.0) gets the sm_90 PTX.
  EXPECT_EQ(events[2].text, ptx("sm_90"));

  // The C++ wrapper forwards the stream.
  driver->reset();
  normc::Context wrapped = std::move(*normc::Context::create({1}));
  std::vector<normc::Tensor> tensors = {
      normc::Tensor(address(kX), NORMC_DTYPE_F32, {5, 300}, kCuda0),
      normc::Tensor(address(kGamma), NORMC_DTYPE_F32, {300}, kCuda0),
      normc::Tensor(address(kY), NORMC_DTYPE_F32, {5, 300}, kCuda0)};
  normc::Status status =
      wrapped.runAsync(normc::Kernel(kernel("scale")), tensors, kStream);
  ASSERT_TRUE(status.ok()) << status.toString();
  std::vector<Event> launches = only(driver->events(), Call::Launch);
  ASSERT_EQ(launches.size(), 3u);
  EXPECT_EQ(launches[0].stream, kStream);
  EXPECT_THAT(only(driver->events(), Call::Sync), IsEmpty());
}

TEST_F(Gpu, WithoutMemoryPoolsTheWorkspaceIsFreedOnceTheStreamIsDone) {
  setenv("FAKE_CUDA_MEMORY_POOLS", "0", 1);
  Args args = scaleArgs(5, 300);
  ASSERT_EQ(normc_run_async(context.get(), kernel("scale"), args.data(),
                            args.size(), kStream),
            NORMC_OK)
      << normc_last_error();
  std::vector<Event> events = driver->events();
  ASSERT_THAT(calls(events),
              ElementsAre(Call::Retain, Call::Retain, Call::Load,
                          Call::GetFunction, Call::GetFunction,
                          Call::GetFunction, Call::Alloc, Call::Launch,
                          Call::Launch, Call::Launch, Call::Sync, Call::Free));
  EXPECT_EQ(events[6].bytes, 44u);
  EXPECT_EQ(events[7].params, scaleParams(5, 300, events[6].pointer));
  EXPECT_EQ(events[10].stream, kStream);
  EXPECT_EQ(events[11].pointer, events[6].pointer);

  // normc_run does not wait a second time.
  driver->reset();
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  EXPECT_THAT(calls(driver->events()),
              ElementsAre(Call::Alloc, Call::Launch, Call::Launch, Call::Launch,
                          Call::Sync, Call::Free));
}

TEST_F(Gpu, LegacyDriverWithoutOptionalEntryPoints) {
  bundle.reset();
  context.reset();
  useDriver("fake_cuda_legacy");
  bundle = openBundle("gpu_bundle");
  context = makeContext(1);
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  std::vector<Event> events = driver->events();
  EXPECT_THAT(calls(events),
              ElementsAre(Call::Retain, Call::Retain, Call::Load,
                          Call::GetFunction, Call::GetFunction,
                          Call::GetFunction, Call::Alloc, Call::Launch,
                          Call::Launch, Call::Launch, Call::Sync, Call::Free));

  // Without cuModuleLoadDataEx there is no JIT log to report.
  bundle.reset();
  bundle = openBundle("gpu_bundle");
  setenv("FAKE_CUDA_FAIL", "cuModuleLoadData=218", 1);
  setenv("FAKE_CUDA_JIT_LOG", "never shown", 1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_LOAD_FAILED);
  EXPECT_EQ(normc_last_error(),
            "cannot load the sm_90 PTX of bundle '" + bundlePath("gpu_bundle") +
                "' on cuda:0 (cuModuleLoadData: CUDA_ERROR_INVALID_PTX (fake "
                "driver error))");
}

TEST_F(Gpu, DriverWithoutLaunchSupport) {
  context.reset();
  useDriver("fake_cuda_no_launch");
  context = makeContext(1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(normc_last_error(),
            "the CUDA driver " + bundlePath("fake_cuda_no_launch") +
                " lacks cuLaunchKernel, which running kernels needs (update "
                "the driver)");
  EXPECT_THAT(driver->events(), IsEmpty());
}

TEST_F(Gpu, HighestArchNotAboveTheDevice) {
  const struct {
    const char *capability;
    const char *arch;
  } cases[] = {{"8.0", "sm_80"},
               {"8.9", "sm_80"},
               {"9.0", "sm_90"},
               {"10.0", "sm_90"},
               {"12.1", "sm_90"}};
  for (const auto &c : cases) {
    SCOPED_TRACE(c.capability);
    setenv("FAKE_CUDA_COMPUTE_CAPABILITY", c.capability, 1);
    // The capability is read when a context first uses the device, and the
    // module is loaded once per bundle.
    context = makeContext(1);
    bundle = openBundle("gpu_bundle");
    driver->reset();
    Args args;
    std::vector<float> a(4), b(4);
    args.add(address(kX), NORMC_DTYPE_F32, {4}, kCuda0);
    args.add(address(kY), NORMC_DTYPE_F32, {4}, kCuda0);
    ASSERT_EQ(normc_run(context.get(), kernel("tiny"), args.data(), 2),
              NORMC_OK)
        << normc_last_error();
    std::vector<Event> loads = only(driver->events(), Call::Load);
    ASSERT_EQ(loads.size(), 1u);
    EXPECT_EQ(loads[0].text, ptx(c.arch));
  }
}

TEST_F(Gpu, DeviceOlderThanEveryArch) {
  setenv("FAKE_CUDA_COMPUTE_CAPABILITY", "7.5", 1);
  for (int attempt = 0; attempt < 2; ++attempt) {
    EXPECT_EQ(runScale(5, 300), NORMC_ERROR_UNSUPPORTED);
    EXPECT_EQ(normc_last_error(),
              "kernel 'scale' cannot run on cuda:0: bundle '" +
                  bundlePath("gpu_bundle") +
                  "' has PTX for sm_80, sm_90; cuda:0 is sm_75 (compile with "
                  "normc --gpu-arch=sm_75)");
  }
  EXPECT_THAT(only(driver->events(), Call::Load), IsEmpty());
  EXPECT_EQ(planCalls().calls, 0);
}

TEST_F(Gpu, NoWorkspaceAndNoDims) {
  Args args;
  args.add(address(kX), NORMC_DTYPE_F32, {4}, kCuda0);
  args.add(address(kY), NORMC_DTYPE_F32, {4}, kCuda0);
  ASSERT_EQ(normc_run(context.get(), kernel("tiny"), args.data(), 2), NORMC_OK)
      << normc_last_error();
  std::vector<Event> events = driver->events();
  EXPECT_THAT(only(events, Call::AllocAsync), IsEmpty());
  EXPECT_THAT(only(events, Call::FreeAsync), IsEmpty());
  std::vector<Event> launches = only(events, Call::Launch);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].text, "tiny_gpu");
  int64_t x = static_cast<int64_t>(kX), y = static_cast<int64_t>(kY);
  // A null workspace of size 0, and no dims after it.
  EXPECT_EQ(launches[0].params, (std::vector<int64_t>{x, x, 0, 4, 1, y, y, 0, 4,
                                                      1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(planCalls().calls, 1);
}

/// tiny has a prepass and a workspace on the CPU (bundle ABI 3): a GPU run
/// follows its plan alone (one launch, no workspace, as above), and a CPU
/// run runs the prepass and no plan.
TEST_F(Gpu, CpuPrepassOnlyRunsOnTheCpu) {
  Args args;
  args.add(address(kX), NORMC_DTYPE_F32, {4}, kCuda0);
  args.add(address(kY), NORMC_DTYPE_F32, {4}, kCuda0);
  ASSERT_EQ(normc_run(context.get(), kernel("tiny"), args.data(), 2), NORMC_OK)
      << normc_last_error();
  std::vector<Event> events = driver->events();
  EXPECT_THAT(only(events, Call::AllocAsync), IsEmpty());
  EXPECT_EQ(only(events, Call::Launch).size(), 1u);
  EXPECT_EQ(planCalls().calls, 1);
  EXPECT_EQ(planCalls().tinyPrepassCalls, 0);

  driver->reset();
  std::vector<float> a = {1, -2, 3, 0.5f}, b(4, 9);
  Args host;
  host.add(a.data(), NORMC_DTYPE_F32, {4});
  host.add(b.data(), NORMC_DTYPE_F32, {4});
  ASSERT_EQ(normc_run(context.get(), kernel("tiny"), host.data(), 2), NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(b, a);
  EXPECT_EQ(planCalls().tinyPrepassCalls, 1);
  EXPECT_EQ(planCalls().calls, 1);
  EXPECT_THAT(driver->events(), IsEmpty());
}

TEST_F(Gpu, EmptyBatchEnqueuesNothing) {
  ASSERT_EQ(runScale(0, 8), NORMC_OK) << normc_last_error();
  std::vector<Event> events = driver->events();
  // The module is still loaded, so unsupported GPUs fail the same way
  // whatever the sizes.
  EXPECT_THAT(calls(events), ElementsAre(Call::Retain, Call::Retain, Call::Load,
                                         Call::GetFunction, Call::GetFunction,
                                         Call::GetFunction));
  normc_test_gpu::PlanCalls plan = planCalls();
  EXPECT_EQ(plan.calls, 1);
  EXPECT_EQ(plan.dims[0], 0);
  EXPECT_EQ(plan.dims[1], 8);
}

TEST_F(Gpu, PlanErrorCodesAreReportedLikeKernelErrors) {
  EXPECT_EQ(runScale(3, 0), NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'scale': GPU plan failed with code 2 "
               "(NORMC_ERR_BAD_SHAPE: a negative size, an empty reduction or "
               "channels not divisible by the groups)");
  EXPECT_EQ(runBadPlan(normc_test_gpu::kBadShape), NORMC_ERROR_KERNEL_FAILED);
  EXPECT_THAT(normc_last_error(), HasSubstr("code 2 (NORMC_ERR_BAD_SHAPE"));
  EXPECT_EQ(runBadPlan(normc_test_gpu::kUnknownCode),
            NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'badplan': GPU plan failed with code 7 (unknown code)");
  EXPECT_THAT(only(driver->events(), Call::Launch), IsEmpty());
  EXPECT_THAT(only(driver->events(), Call::AllocAsync), IsEmpty());
}

TEST_F(Gpu, MalformedPlansAreRejectedBeforeLaunching) {
  using namespace normc_test_gpu;
  const struct {
    int64_t n;
    const char *message;
  } cases[] = {
      {kFunctionTooLarge, "kernel 'badplan': GPU plan launch 0 uses function 1 "
                          "but the kernel has 1 GPU function"},
      {kFunctionNegative, "kernel 'badplan': GPU plan launch 0 uses function "
                          "-1 but the kernel has 1 GPU function"},
      {kEmptyGrid, "kernel 'badplan': GPU plan launch 0 has an empty grid "
                   "(2x0x1)"},
      {kEmptyBlock, "kernel 'badplan': GPU plan launch 0 has an empty block "
                    "(32x1x0)"},
      {kTooManyLaunches,
       "kernel 'badplan': the GPU plan has 5 launches (expected 0 to 4)"},
      {kNegativeLaunches,
       "kernel 'badplan': the GPU plan has -1 launches (expected 0 to 4)"},
      {kNegativeWorkspace, "kernel 'badplan': the GPU plan asks for a "
                           "negative workspace size (-8)"},
  };
  for (const auto &c : cases) {
    EXPECT_EQ(runBadPlan(c.n), NORMC_ERROR_INTERNAL) << c.n;
    EXPECT_STREQ(normc_last_error(), c.message);
  }
  EXPECT_THAT(only(driver->events(), Call::Launch), IsEmpty());
  EXPECT_THAT(only(driver->events(), Call::AllocAsync), IsEmpty());

  // A good plan of the same kernel: one dim after the workspace.
  ASSERT_EQ(runBadPlan(10), NORMC_OK) << normc_last_error();
  std::vector<Event> launches = only(driver->events(), Call::Launch);
  ASSERT_EQ(launches.size(), 1u);
  int64_t x = static_cast<int64_t>(kX);
  EXPECT_EQ(launches[0].params,
            (std::vector<int64_t>{x, x, 0, 10, 1, 0, 0, 0, 0, 1, 10}));
}

TEST_F(Gpu, KernelWithoutGpuCode) {
  Args args;
  args.add(address(kX), NORMC_DTYPE_F32, {4}, kCuda0);
  args.add(address(kY), NORMC_DTYPE_F32, {4}, kCuda0);
  EXPECT_EQ(normc_run(context.get(), kernel("cpuonly"), args.data(), 2),
            NORMC_ERROR_UNSUPPORTED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'cpuonly' has no GPU code (compile with normc "
               "--gpu-arch=... to run it on cuda:0)");
  EXPECT_EQ(normc_run_async(context.get(), kernel("cpuonly"), args.data(), 2,
                            kStream),
            NORMC_ERROR_UNSUPPORTED);
  // Nothing touched the device.
  EXPECT_THAT(driver->events(), IsEmpty());

  // The same kernel on the CPU.
  std::vector<float> x = {1, -2, 3, 0}, y(4, 9);
  Args host;
  host.add(x.data(), NORMC_DTYPE_F32, {4});
  host.add(y.data(), NORMC_DTYPE_F32, {4});
  ASSERT_EQ(normc_run(context.get(), kernel("cpuonly"), host.data(), 2),
            NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(y, (std::vector<float>{-1, 2, -3, 0}));
}

TEST_F(Gpu, RunAsyncOnTheCpuIsSynchronousAndIgnoresTheStream) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6}, gamma = {2, -1, 0.5f}, y(6, -7.0f);
  Args args;
  args.add(x.data(), NORMC_DTYPE_F32, {2, 3});
  args.add(gamma.data(), NORMC_DTYPE_F32, {3});
  args.add(y.data(), NORMC_DTYPE_F32, {2, 3});
  ASSERT_EQ(
      normc_run_async(context.get(), kernel("scale"), args.data(), 3, kStream),
      NORMC_OK)
      << normc_last_error();
  EXPECT_EQ(y, (std::vector<float>{2, -2, 1.5f, 8, -5, 3}));
  EXPECT_EQ(planCalls().calls, 0);
  EXPECT_THAT(driver->events(), IsEmpty());
}

TEST_F(Gpu, MissingGpuFunction) {
  Args args;
  args.add(address(kX), NORMC_DTYPE_F32, {4}, kCuda0);
  EXPECT_EQ(normc_run(context.get(), kernel("ghost"), args.data(), 1),
            NORMC_ERROR_MISSING_SYMBOL);
  EXPECT_EQ(normc_last_error(),
            "kernel 'ghost': GPU function 'ghost_gpu_gone' is not in the "
            "sm_90 PTX of bundle '" +
                bundlePath("gpu_bundle") +
                "' (cuModuleGetFunction: CUDA_ERROR_NOT_FOUND (fake driver "
                "error))");
  EXPECT_THAT(only(driver->events(), Call::Launch), IsEmpty());
  // The module stays usable for the other kernels.
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  EXPECT_EQ(only(driver->events(), Call::Load).size(), 1u);
}

TEST_F(Gpu, FailedLaunchStopsThePlanAndStillFreesTheWorkspace) {
  setenv("FAKE_CUDA_FAIL", "cuLaunchKernel=701@2", 1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'scale': launch 2 of 3 ('scale_gpu_rows', grid 2x1x1, "
               "block 32x4x1, 0 bytes of dynamic shared memory) failed on "
               "cuda:0 (cuLaunchKernel: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES "
               "(fake driver error))");
  std::vector<Event> events = driver->events();
  ASSERT_THAT(calls(events),
              ElementsAre(Call::Retain, Call::Retain, Call::Load,
                          Call::GetFunction, Call::GetFunction,
                          Call::GetFunction, Call::AllocAsync, Call::Launch,
                          Call::Launch, Call::FreeAsync));
  EXPECT_EQ(events[8].result, 701);
  EXPECT_EQ(events[9].pointer, events[6].pointer);
}

TEST_F(Gpu, SynchronizationErrorsNameTheDriverError) {
  setenv("FAKE_CUDA_FAIL", "cuStreamSynchronize=700", 1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_KERNEL_FAILED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'scale' failed on cuda:0 (cuStreamSynchronize: "
               "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was "
               "encountered))");
  // An asynchronous run does not synchronize, so it cannot see the error.
  Args args = scaleArgs(5, 300);
  EXPECT_EQ(
      normc_run_async(context.get(), kernel("scale"), args.data(), 3, kStream),
      NORMC_OK);
}

TEST_F(Gpu, WorkspaceAllocationFailure) {
  setenv("FAKE_CUDA_FAIL", "cuMemAllocAsync=2", 1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_RESOURCE_EXHAUSTED);
  EXPECT_STREQ(normc_last_error(),
               "kernel 'scale': cannot allocate a 44-byte workspace on cuda:0 "
               "(cuMemAllocAsync: CUDA_ERROR_OUT_OF_MEMORY (fake driver "
               "error))");
  EXPECT_THAT(only(driver->events(), Call::Launch), IsEmpty());
}

TEST_F(Gpu, PtxLoadFailureCarriesTheJitLogAndIsRetried) {
  setenv("FAKE_CUDA_FAIL", "cuModuleLoadDataEx=218@1", 1);
  setenv("FAKE_CUDA_JIT_LOG",
         "ptxas application ptx input, line 12; error   : Unknown symbol "
         "'x'\n",
         1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_LOAD_FAILED);
  EXPECT_EQ(normc_last_error(),
            "cannot load the sm_90 PTX of bundle '" + bundlePath("gpu_bundle") +
                "' on cuda:0 (cuModuleLoadDataEx: CUDA_ERROR_INVALID_PTX "
                "(fake driver error); JIT log: ptxas application ptx input, "
                "line 12; error   : Unknown symbol 'x')");
  // The failed load kept no context reference (only the device's).
  EXPECT_EQ(driver->health().contextRefs, 1);
  // The next run loads the module again (the fake only fails the first).
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  EXPECT_EQ(only(driver->events(), Call::Load).size(), 2u);
}

TEST_F(Gpu, DriverTooOldForThePtx) {
  setenv("FAKE_CUDA_FAIL", "cuModuleLoadDataEx=222", 1);
  EXPECT_EQ(runScale(5, 300), NORMC_ERROR_UNSUPPORTED);
  EXPECT_THAT(normc_last_error(),
              HasSubstr("cannot load the sm_90 PTX of bundle '" +
                        bundlePath("gpu_bundle") +
                        "' on cuda:0: the CUDA driver is too old for its PTX "
                        "version; update the driver (cuModuleLoadDataEx: "
                        "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"));
}

TEST_F(Gpu, ModulesBelongToTheBundleNotTheContext) {
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  EXPECT_EQ(driver->health().contextRefs, 2); // the device's and the module's
  context.reset();
  fake_cuda::Health health = driver->health();
  EXPECT_EQ(health.contextRefs, 1);
  EXPECT_EQ(health.liveModules, 1);
  EXPECT_THAT(health.violations, IsEmpty());

  // A new context reuses the bundle's module.
  driver->reset();
  context = makeContext(1);
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
  EXPECT_THAT(only(driver->events(), Call::Load), IsEmpty());

  // Another handle of the same file has its own module, unloaded when that
  // handle closes.
  extraBundle = openBundle("gpu_bundle");
  ASSERT_TRUE(extraBundle);
  Args args = scaleArgs(5, 300);
  ASSERT_EQ(normc_run(context.get(), kernel("scale", extraBundle.get()),
                      args.data(), 3),
            NORMC_OK)
      << normc_last_error();
  std::vector<Event> loads = only(driver->events(), Call::Load);
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(driver->health().liveModules, 2);
  driver->reset();
  extraBundle.reset();
  std::vector<Event> events = driver->events();
  ASSERT_THAT(calls(events), ElementsAre(Call::Unload, Call::Release));
  EXPECT_EQ(events[0].pointer, loads[0].pointer);
  EXPECT_EQ(driver->health().liveModules, 1);
  // The first handle is unaffected.
  ASSERT_EQ(runScale(5, 300), NORMC_OK) << normc_last_error();
}

TEST_F(Gpu, ConcurrentRunsShareOneModule) {
  constexpr int kThreads = 8, kRuns = 4;
  std::vector<normc_status> results(kThreads * kRuns, NORMC_ERROR_INTERNAL);
  std::vector<std::thread> threads;
  const normc_kernel *scale = kernel("scale");
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        Args args = scaleArgs(t + 1, 16);
        results[t * kRuns + r] =
            r % 2 ? normc_run(context.get(), scale, args.data(), 3)
                  : normc_run_async(context.get(), scale, args.data(), 3,
                                    kStream);
      }
    });
  for (std::thread &thread : threads)
    thread.join();
  for (normc_status status : results)
    EXPECT_EQ(status, NORMC_OK);
  std::vector<Event> events = driver->events();
  EXPECT_EQ(only(events, Call::Retain).size(), 2u);
  EXPECT_EQ(only(events, Call::Load).size(), 1u);
  EXPECT_EQ(only(events, Call::GetFunction).size(), 3u);
  std::vector<Event> launches = only(events, Call::Launch);
  ASSERT_EQ(launches.size(), 3u * kThreads * kRuns);
  // Each launch got the parameters of its own run.
  for (const Event &launch : launches) {
    ASSERT_EQ(launch.params.size(), 22u);
    int64_t rows = launch.params[20];
    EXPECT_EQ(launch.params,
              scaleParams(rows, 16, static_cast<uint64_t>(launch.params[15])));
  }
}

//===----------------------------------------------------------------------===//
// Opening GPU bundles
//===----------------------------------------------------------------------===//

std::string openFailure(const std::string &name, normc_status status) {
  normc_bundle *bundle = nullptr;
  EXPECT_EQ(normc_bundle_open(bundlePath(name).c_str(), &bundle), status);
  EXPECT_EQ(bundle, nullptr);
  normc_bundle_close(bundle);
  return normc_last_error();
}

TEST(GpuBundleOpen, MissingPlan) {
  EXPECT_EQ(openFailure("gpu_no_plan", NORMC_ERROR_MISSING_SYMBOL),
            "bundle '" + bundlePath("gpu_no_plan") +
                "': missing kernel symbol '__normc_scale_gpu_plan' (GPU plan "
                "of kernel 'scale')");
}

TEST(GpuBundleOpen, MissingPtx) {
  EXPECT_EQ(openFailure("gpu_no_ptx", NORMC_ERROR_MISSING_SYMBOL),
            "bundle '" + bundlePath("gpu_no_ptx") +
                "': missing kernel symbol 'normc_gpu_ptx_sm_90' (PTX for "
                "sm_90)");
}

TEST(GpuBundleOpen, UnterminatedPtx) {
  EXPECT_EQ(openFailure("gpu_unterminated_ptx", NORMC_ERROR_LOAD_FAILED),
            "bundle '" + bundlePath("gpu_unterminated_ptx") +
                "': normc_gpu_ptx_sm_90 is not NUL-terminated within its 4 "
                "bytes");
}

TEST(GpuBundleOpen, WrapperQueries) {
  normc::Expected<normc::Bundle> bundle =
      normc::Bundle::open(bundlePath("gpu_bundle"));
  ASSERT_TRUE(bundle.ok()) << bundle.status().toString();
  EXPECT_EQ(bundle->gpuArchs(), (std::vector<std::string>{"sm_80", "sm_90"}));
  EXPECT_TRUE(bundle->find("scale")->hasDeviceCode(NORMC_DEVICE_CUDA));
  EXPECT_FALSE(bundle->find("cpuonly")->hasDeviceCode(NORMC_DEVICE_CUDA));
  EXPECT_TRUE(bundle->find("cpuonly")->hasDeviceCode(NORMC_DEVICE_CPU));
}

} // namespace
