//===- normc/runtime.hpp - C++ wrapper of the normc runtime -----*- C++ -*-===//
//
// Header-only RAII wrapper over runtime.h. It never throws (the project is
// built with -fno-exceptions): fallible calls return Status or Expected<T>,
// which capture the status code and normc_last_error() at the failure site.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_HPP
#define NORMC_RUNTIME_HPP

#include "normc/runtime.h"

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace normc {

/// Result of a fallible call: a status code plus its message.
class [[nodiscard]] Status {
public:
  Status() = default;
  Status(normc_status code, std::string message)
      : code_(code), message_(std::move(message)) {}

  /// Wraps `code`; captures normc_last_error() if it is a failure.
  static Status fromCode(normc_status code) {
    if (code == NORMC_OK)
      return Status();
    return Status(code, normc_last_error());
  }

  bool ok() const { return code_ == NORMC_OK; }
  normc_status code() const { return code_; }
  const std::string &message() const { return message_; }
  /// "NORMC_ERROR_X: message", or "NORMC_OK".
  std::string toString() const {
    std::string result = normc_status_name(code_);
    if (!message_.empty())
      result += ": " + message_;
    return result;
  }

private:
  normc_status code_ = NORMC_OK;
  std::string message_;
};

/// Either a T or a failed Status (like llvm::Expected, minus the
/// must-check-on-destruction machinery).
template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : value_(std::move(value)) {}
  Expected(Status status) : status_(std::move(status)) {
    if (status_.ok())
      status_ = Status(NORMC_ERROR_INTERNAL,
                       "Expected constructed from an OK Status without value");
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  /// NORMC_OK when a value is present.
  const Status &status() const { return status_; }

  T &operator*() & {
    assert(ok() && "dereferencing a failed Expected");
    return *value_;
  }
  const T &operator*() const & {
    assert(ok() && "dereferencing a failed Expected");
    return *value_;
  }
  T &&operator*() && {
    assert(ok() && "dereferencing a failed Expected");
    return std::move(*value_);
  }
  T *operator->() { return &**this; }
  const T *operator->() const { return &**this; }

private:
  std::optional<T> value_;
  Status status_;
};

/// Owning tensor description (keeps its shape/strides alive); convert with
/// descriptor() for the C API. Does not own the data.
class Tensor {
public:
  Tensor() = default;
  Tensor(void *data, normc_dtype dtype, std::vector<int64_t> shape,
         normc_device device = normc_device{NORMC_DEVICE_CPU, 0})
      : data_(data), dtype_(dtype), shape_(std::move(shape)), device_(device) {}

  static Tensor f32(float *data, std::vector<int64_t> shape) {
    return Tensor(data, NORMC_DTYPE_F32, std::move(shape));
  }
  static Tensor f64(double *data, std::vector<int64_t> shape) {
    return Tensor(data, NORMC_DTYPE_F64, std::move(shape));
  }

  /// Strides in elements; only contiguous-equivalent strides are accepted.
  Tensor &setStrides(std::vector<int64_t> strides) {
    strides_ = std::move(strides);
    hasStrides_ = true;
    return *this;
  }
  Tensor &setDevice(normc_device device) {
    device_ = device;
    return *this;
  }

  void *data() const { return data_; }
  normc_dtype dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  normc_device device() const { return device_; }

  /// C descriptor pointing into this object; valid while it is unchanged.
  normc_tensor descriptor() const {
    normc_tensor tensor;
    tensor.data = data_;
    tensor.dtype = dtype_;
    tensor.rank = shape_.size();
    tensor.shape = shape_.data();
    tensor.strides = hasStrides_ ? strides_.data() : nullptr;
    tensor.device = device_;
    return tensor;
  }

private:
  void *data_ = nullptr;
  normc_dtype dtype_ = NORMC_DTYPE_F32;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  bool hasStrides_ = false;
  normc_device device_ = {NORMC_DEVICE_CPU, 0};
};

/// One manifest argument.
struct ArgInfo {
  std::string name;
  normc_io io = NORMC_IO_IN;
  normc_dtype dtype = NORMC_DTYPE_F32;
  /// Per dim: static size (symbol == -1) or dims()[symbol].
  std::vector<normc_dim> shape;
  /// Input this output may alias exactly; empty if none.
  std::string inplace;
};

/// Non-owning kernel handle; valid while its Bundle is open.
class Kernel {
public:
  Kernel() = default;
  explicit Kernel(const normc_kernel *kernel) : kernel_(kernel) {}

  const normc_kernel *get() const { return kernel_; }
  bool valid() const { return kernel_ != nullptr; }

  std::string name() const { return normc_kernel_name(kernel_); }
  normc_kernel_kind kind() const { return normc_kernel_get_kind(kernel_); }
  normc_op op() const { return normc_kernel_op(kernel_); }
  std::string opName() const {
    const char *name = normc_op_name(op());
    return name ? name : "";
  }
  std::string attrsJson() const { return normc_kernel_attrs_json(kernel_); }
  /// Whether the kernel has code for devices of `type` (CUDA: compiled
  /// with normc --gpu-arch).
  bool hasDeviceCode(normc_device_type type) const {
    return normc_kernel_has_device_code(kernel_, type) != 0;
  }

  std::vector<std::string> dims() const {
    std::vector<std::string> result;
    for (size_t i = 0, e = normc_kernel_num_dims(kernel_); i < e; ++i)
      result.push_back(normc_kernel_dim_name(kernel_, i));
    return result;
  }

  size_t numArgs() const { return normc_kernel_num_args(kernel_); }
  std::vector<ArgInfo> args() const {
    std::vector<ArgInfo> result;
    for (size_t i = 0, e = numArgs(); i < e; ++i) {
      normc_arg_info info;
      if (normc_kernel_arg(kernel_, i, &info) != NORMC_OK)
        break;
      ArgInfo arg;
      arg.name = info.name;
      arg.io = info.io;
      arg.dtype = info.dtype;
      arg.shape.assign(info.shape, info.shape + info.rank);
      arg.inplace = info.inplace ? info.inplace : "";
      result.push_back(std::move(arg));
    }
    return result;
  }

private:
  const normc_kernel *kernel_ = nullptr;
};

/// Owning bundle handle (closed on destruction); move-only.
class Bundle {
public:
  Bundle() = default;
  Bundle(Bundle &&other) noexcept : bundle_(other.release()) {}
  Bundle &operator=(Bundle &&other) noexcept {
    if (this != &other) {
      normc_bundle_close(bundle_);
      bundle_ = other.release();
    }
    return *this;
  }
  Bundle(const Bundle &) = delete;
  Bundle &operator=(const Bundle &) = delete;
  ~Bundle() { normc_bundle_close(bundle_); }

  static Expected<Bundle> open(const std::string &path) {
    normc_bundle *bundle = nullptr;
    if (normc_status code = normc_bundle_open(path.c_str(), &bundle))
      return Status::fromCode(code);
    return Bundle(bundle);
  }

  normc_bundle *get() const { return bundle_; }
  normc_bundle *release() {
    normc_bundle *bundle = bundle_;
    bundle_ = nullptr;
    return bundle;
  }

  std::string generator() const { return normc_bundle_generator(bundle_); }
  std::string manifestJson() const {
    return normc_bundle_manifest_json(bundle_);
  }
  size_t numKernels() const { return normc_bundle_num_kernels(bundle_); }
  /// The archs the bundle carries PTX for ("sm_80", ...), manifest order.
  std::vector<std::string> gpuArchs() const {
    std::vector<std::string> result;
    for (size_t i = 0, e = normc_bundle_num_gpu_archs(bundle_); i < e; ++i)
      result.push_back(normc_bundle_gpu_arch(bundle_, i));
    return result;
  }
  Kernel kernel(size_t index) const {
    return Kernel(normc_bundle_kernel(bundle_, index));
  }
  std::vector<Kernel> kernels() const {
    std::vector<Kernel> result;
    for (size_t i = 0, e = numKernels(); i < e; ++i)
      result.push_back(kernel(i));
    return result;
  }
  Expected<Kernel> find(const std::string &name) const {
    const normc_kernel *kernel = nullptr;
    if (normc_status code =
            normc_bundle_find_kernel(bundle_, name.c_str(), &kernel))
      return Status::fromCode(code);
    return Kernel(kernel);
  }

private:
  explicit Bundle(normc_bundle *bundle) : bundle_(bundle) {}
  normc_bundle *bundle_ = nullptr;
};

struct ContextOptions {
  /// Threads per run including the caller; 0 = number of online cores.
  uint32_t numThreads = 0;
  bool pinThreads = true;
};

/// Owning context handle (joins its workers on destruction); move-only.
class Context {
public:
  Context() = default;
  Context(Context &&other) noexcept : context_(other.context_) {
    other.context_ = nullptr;
  }
  Context &operator=(Context &&other) noexcept {
    if (this != &other) {
      normc_context_destroy(context_);
      context_ = other.context_;
      other.context_ = nullptr;
    }
    return *this;
  }
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;
  ~Context() { normc_context_destroy(context_); }

  static Expected<Context> create(const ContextOptions &options = {}) {
    normc_context_options raw;
    normc_context_options_init(&raw);
    raw.num_threads = options.numThreads;
    raw.pin_threads = options.pinThreads ? 1 : 0;
    normc_context *context = nullptr;
    if (normc_status code = normc_context_create(&raw, &context))
      return Status::fromCode(code);
    return Context(context);
  }

  normc_context *get() const { return context_; }
  uint32_t numThreads() const { return normc_context_num_threads(context_); }

  Status run(const Kernel &kernel, const normc_tensor *args,
             size_t nargs) const {
    return Status::fromCode(normc_run(context_, kernel.get(), args, nargs));
  }
  Status run(const Kernel &kernel, const std::vector<Tensor> &args) const {
    std::vector<normc_tensor> raw = descriptors(args);
    return run(kernel, raw.data(), raw.size());
  }

  /// normc_run_async: for CUDA tensors, enqueues on `stream` (a CUstream;
  /// nullptr = the default stream) without waiting; synchronous on the CPU.
  Status runAsync(const Kernel &kernel, const normc_tensor *args, size_t nargs,
                  void *stream) const {
    return Status::fromCode(
        normc_run_async(context_, kernel.get(), args, nargs, stream));
  }
  Status runAsync(const Kernel &kernel, const std::vector<Tensor> &args,
                  void *stream) const {
    std::vector<normc_tensor> raw = descriptors(args);
    return runAsync(kernel, raw.data(), raw.size(), stream);
  }

  /// Validation only (no context needed).
  static Status validate(const Kernel &kernel,
                         const std::vector<Tensor> &args) {
    std::vector<normc_tensor> raw = descriptors(args);
    return Status::fromCode(
        normc_validate(kernel.get(), raw.data(), raw.size()));
  }

private:
  explicit Context(normc_context *context) : context_(context) {}

  static std::vector<normc_tensor>
  descriptors(const std::vector<Tensor> &args) {
    std::vector<normc_tensor> raw;
    raw.reserve(args.size());
    for (const Tensor &tensor : args)
      raw.push_back(tensor.descriptor());
    return raw;
  }

  normc_context *context_ = nullptr;
};

} // namespace normc

#endif // NORMC_RUNTIME_HPP
