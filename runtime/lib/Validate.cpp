//===- Validate.cpp - Tensor descriptor validation ------------------------===//

#include "Validate.h"

#include "Error.h"

namespace normc {

std::string deviceName(normc_device device) {
  switch (device.type) {
  case NORMC_DEVICE_CPU:
    return device.ordinal == 0 ? "cpu" : format("cpu:%d", device.ordinal);
  case NORMC_DEVICE_CUDA:
    return format("cuda:%d", device.ordinal);
  }
  return format("device-type-%d:%d", static_cast<int>(device.type),
                device.ordinal);
}

namespace {

struct ByteRange {
  uintptr_t begin = 0;
  uintptr_t size = 0;
};

class Validator {
public:
  Validator(const normc_kernel &kernel, const normc_tensor *args, size_t nargs,
            LaunchArgs &out)
      : spec(*kernel.spec), name(spec.name.c_str()), args(args), nargs(nargs),
        out(out) {}

  normc_status run() {
    if (nargs != spec.args.size())
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' expects %zu args but got %zu", name,
                  spec.args.size(), nargs);
    if (nargs && !args)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s': args is NULL but nargs is %zu", name, nargs);
    out.pointers.assign(nargs, nullptr);
    out.numElements.assign(nargs, 0);
    out.dims.assign(spec.dims.size(), -1);
    out.device = nargs ? args[0].device : normc_device{NORMC_DEVICE_CPU, 0};
    boundBy.assign(spec.dims.size(), -1);
    ranges.assign(nargs, ByteRange());
    for (size_t i = 0; i < nargs; ++i)
      if (normc_status status = checkArg(i))
        return status;
    return checkAliasing();
  }

private:
  const KernelSpec &spec;
  const char *name;
  const normc_tensor *args;
  size_t nargs;
  LaunchArgs &out;
  /// Index of the arg that first bound each dim symbol, or -1.
  std::vector<int64_t> boundBy;
  std::vector<ByteRange> ranges;

  const char *argName(size_t i) const { return spec.args[i].name.c_str(); }

  normc_status checkDevice(size_t i) {
    normc_device device = args[i].device;
    if (device.type != NORMC_DEVICE_CPU && device.type != NORMC_DEVICE_CUDA)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s' has invalid device type %d", name,
                  argName(i), static_cast<int>(device.type));
    if (device.type == NORMC_DEVICE_CPU && device.ordinal != 0)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s' has invalid CPU device ordinal %d "
                  "(must be 0)",
                  name, argName(i), device.ordinal);
    if (device.ordinal < 0)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s' has negative device ordinal %d", name,
                  argName(i), device.ordinal);
    normc_device first = args[0].device;
    if (device.type != first.type || device.ordinal != first.ordinal)
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' is on %s but arg '%s' is on %s; all "
                  "args must be on the same device",
                  name, argName(i), deviceName(device).c_str(), argName(0),
                  deviceName(first).c_str());
    return NORMC_OK;
  }

  normc_status checkArg(size_t i) {
    const normc_tensor &tensor = args[i];
    const ArgSpec &arg = spec.args[i];
    if (normc_status status = checkDevice(i))
      return status;

    size_t elementSize = normc_dtype_size(tensor.dtype);
    if (elementSize == 0)
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' has invalid dtype value %d", name,
                  argName(i), static_cast<int>(tensor.dtype));
    if (tensor.dtype != arg.dtype)
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' has dtype %s but the manifest "
                  "requires %s",
                  name, argName(i), normc_dtype_name(tensor.dtype),
                  normc_dtype_name(arg.dtype));
    if (tensor.rank != arg.shape.size())
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' has rank %zu but the manifest "
                  "requires rank %zu",
                  name, argName(i), tensor.rank, arg.shape.size());
    if (tensor.rank && !tensor.shape)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s': shape is NULL but rank is %zu", name,
                  argName(i), tensor.rank);

    int64_t numElements = 1;
    bool overflow = false;
    for (size_t d = 0; d < tensor.rank; ++d) {
      if (normc_status status = checkDim(i, d))
        return status;
      overflow |=
          __builtin_mul_overflow(numElements, tensor.shape[d], &numElements);
    }
    int64_t numBytes = 0;
    overflow |= __builtin_mul_overflow(
        numElements, static_cast<int64_t>(elementSize), &numBytes);
    uintptr_t lastByte = 0;
    overflow |=
        __builtin_add_overflow(reinterpret_cast<uintptr_t>(tensor.data),
                               static_cast<uintptr_t>(numBytes), &lastByte);
    if (overflow)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s' is too large: its byte size or "
                  "address range overflows",
                  name, argName(i));

    if (tensor.strides && numElements != 0)
      if (normc_status status = checkStrides(i))
        return status;
    if (!tensor.data && numElements != 0)
      return fail(NORMC_ERROR_INVALID_ARGUMENT,
                  "kernel '%s' arg '%s' has a NULL data pointer but %lld "
                  "elements",
                  name, argName(i), static_cast<long long>(numElements));
    out.pointers[i] = tensor.data;
    out.numElements[i] = numElements;
    ranges[i] = {reinterpret_cast<uintptr_t>(tensor.data),
                 static_cast<uintptr_t>(numBytes)};
    return NORMC_OK;
  }

  normc_status checkDim(size_t i, size_t d) {
    int64_t size = args[i].shape[d];
    const normc_dim &expected = spec.args[i].shape[d];
    if (size < 0)
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' dim %zu is negative (%lld)", name,
                  argName(i), d, static_cast<long long>(size));
    if (expected.symbol < 0) {
      if (size != expected.size)
        return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                    "kernel '%s' arg '%s' dim %zu is %lld but the manifest "
                    "requires %lld",
                    name, argName(i), d, static_cast<long long>(size),
                    static_cast<long long>(expected.size));
      return NORMC_OK;
    }
    size_t symbol = static_cast<size_t>(expected.symbol);
    if (boundBy[symbol] < 0) {
      boundBy[symbol] = static_cast<int64_t>(i);
      out.dims[symbol] = size;
      return NORMC_OK;
    }
    if (out.dims[symbol] != size)
      return fail(NORMC_ERROR_SIGNATURE_MISMATCH,
                  "kernel '%s' arg '%s' dim %zu is %lld but %s = %lld from "
                  "arg '%s'",
                  name, argName(i), d, static_cast<long long>(size),
                  spec.dims[symbol].c_str(),
                  static_cast<long long>(out.dims[symbol]),
                  argName(static_cast<size_t>(boundBy[symbol])));
    return NORMC_OK;
  }

  // Kernels index with row-major contiguous offsets. Strides of size-1 dims
  // never affect an address, so any value is accepted there (frameworks
  // produce arbitrary strides for such dims).
  normc_status checkStrides(size_t i) {
    const normc_tensor &tensor = args[i];
    int64_t expected = 1;
    for (size_t d = tensor.rank; d-- > 0;) {
      if (tensor.shape[d] != 1 && tensor.strides[d] != expected)
        return fail(NORMC_ERROR_UNSUPPORTED,
                    "kernel '%s' arg '%s' is not contiguous: dim %zu has "
                    "stride %lld but row-major contiguous layout requires "
                    "%lld; only contiguous tensors are supported",
                    name, argName(i), d,
                    static_cast<long long>(tensor.strides[d]),
                    static_cast<long long>(expected));
      expected *= tensor.shape[d];
    }
    return NORMC_OK;
  }

  static bool overlaps(ByteRange a, ByteRange b) {
    return a.size && b.size && a.begin < b.begin + b.size &&
           b.begin < a.begin + a.size;
  }

  // Outputs may not overlap anything except that an output declared
  // "inplace" may be exactly the input it names. Input/input overlap is
  // harmless (both are only read).
  normc_status checkAliasing() {
    for (size_t i = 0; i < nargs; ++i) {
      const ArgSpec &output = spec.args[i];
      if (output.io == NORMC_IO_IN)
        continue;
      for (size_t j = 0; j < nargs; ++j) {
        bool otherIsOutput = spec.args[j].io != NORMC_IO_IN;
        if (j == i || (otherIsOutput && j < i) ||
            !overlaps(ranges[i], ranges[j]))
          continue;
        bool exact = ranges[i].begin == ranges[j].begin &&
                     ranges[i].size == ranges[j].size;
        if (output.inplace == static_cast<int32_t>(j)) {
          if (exact)
            continue;
          return fail(NORMC_ERROR_ALIASING,
                      "kernel '%s': output '%s' partially overlaps its "
                      "in-place input '%s'; in-place use requires the same "
                      "data pointer",
                      name, argName(i), argName(j));
        }
        return fail(NORMC_ERROR_ALIASING,
                    "kernel '%s': %s '%s' %s %s '%s', which the manifest "
                    "does not allow",
                    name, output.io == NORMC_IO_OUT ? "output" : "inout arg",
                    argName(i), exact ? "aliases" : "overlaps",
                    otherIsOutput ? "output" : "input", argName(j));
      }
    }
    return NORMC_OK;
  }
};

} // namespace

normc_status validateArgs(const normc_kernel &kernel, const normc_tensor *args,
                          size_t nargs, LaunchArgs &out) {
  return Validator(kernel, args, nargs, out).run();
}

} // namespace normc
