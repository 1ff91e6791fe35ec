//===- RuntimeConfigs.cpp - kernels of the runtime integration tests ------===//

#include "RuntimeConfigs.h"

using namespace normc;
using namespace normc::ref;
using namespace normc::test;

std::string RuntimeConfig::name() const {
  std::string n = opTag(op);
  if (isChannelOp())
    n += channelsLast ? "_nhwc" : "_nchw";
  n += std::string("_") + dtypeName(dtype);
  if (!affine)
    n += "_plain";
  if (grads == Grads::DxOnly)
    n += "_dx";
  if (grads == Grads::ParamsOnly)
    n += "_params";
  return n;
}

std::vector<int64_t>
RuntimeConfig::channelShape(const std::vector<int64_t> &nhw) const {
  return channelsLast ? std::vector<int64_t>{nhw[0], nhw[1], nhw[2], kChannels}
                      : std::vector<int64_t>{nhw[0], kChannels, nhw[1], nhw[2]};
}

void test::PrintTo(const RuntimeConfig &c, std::ostream *os) {
  *os << c.name();
}

std::vector<RuntimeConfig> test::affineRuntimeConfigs() {
  std::vector<RuntimeConfig> configs;
  for (Op op : {Op::LayerNorm, Op::RMSNorm, Op::BatchNormTrain,
                Op::BatchNormInfer, Op::InstanceNorm, Op::GroupNorm})
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
      for (bool channelsLast : {false, true}) {
        RuntimeConfig c{op, dtype, channelsLast, /*affine=*/true};
        if (c.isChannelOp() || !channelsLast)
          configs.push_back(c);
      }
  return configs;
}

/// A tensor type with `dims` ("?" for dynamic) of `element`.
static std::string tensorType(const std::vector<std::string> &dims,
                              const char *element) {
  std::string t = "tensor<";
  for (const std::string &d : dims)
    t += d + "x";
  return t + element + ">";
}

std::string test::specFor(const RuntimeConfig &c, bool backward) {
  const char *e = dtypeName(c.dtype);
  const char *s = "f32";
  std::string C = std::to_string(kChannels);
  NormCallTypes types;
  switch (c.op) {
  case Op::LayerNorm:
  case Op::RMSNorm:
    types.x = tensorType({"?", "?"}, e);
    types.vec = tensorType({"?"}, e);
    types.stat = tensorType({"?"}, s);
    break;
  default:
    types.x =
        tensorType(c.channelsLast ? std::vector<std::string>{"?", "?", "?", C}
                                  : std::vector<std::string>{"?", C, "?", "?"},
                   e);
    types.vec = tensorType({C}, e);
    if (c.op == Op::InstanceNorm)
      types.stat = tensorType({"?", C}, s);
    else if (c.op == Op::GroupNorm)
      types.stat = tensorType({"?", std::to_string(kGroups)}, s);
    else
      types.stat = tensorType({C}, s);
  }

  std::string funcAttrs;
  if (backward) {
    funcAttrs = "norm.backward";
    if (c.grads == Grads::DxOnly)
      funcAttrs += " = [\"dx\"]";
    if (c.grads == Grads::ParamsOnly)
      funcAttrs +=
          c.hasBeta() ? " = [\"dgamma\", \"dbeta\"]" : " = [\"dgamma\"]";
  }
  std::vector<std::string> attrs = normOpAttrs(
      c.op, /*epsOutside=*/false, c.isChannelOp() && c.channelsLast ? 3 : -1);
  return normFunctionText(c.name(), c.op, c.affine, types, attrs, funcAttrs);
}

std::string test::specFor(const std::vector<RuntimeConfig> &configs,
                          bool backward) {
  std::string spec;
  for (const RuntimeConfig &c : configs)
    spec += specFor(c, backward);
  return spec;
}

NormDesc test::descFor(const RuntimeConfig &c,
                       const std::vector<int64_t> &shape) {
  switch (c.op) {
  case Op::LayerNorm:
    return layerNormDesc(shape, 1, c.affine, kEps);
  case Op::RMSNorm:
    return rmsNormDesc(shape, 1, c.affine, kEps);
  case Op::BatchNormTrain:
    return batchNormDesc(shape, c.channelDim(), /*training=*/true, c.affine,
                         kEps, /*updateRunning=*/true, kMomentum);
  case Op::BatchNormInfer:
    return batchNormDesc(shape, c.channelDim(), /*training=*/false, c.affine,
                         kEps);
  case Op::InstanceNorm:
    return instanceNormDesc(shape, c.channelDim(), c.affine, kEps);
  case Op::GroupNorm:
    return groupNormDesc(shape, c.channelDim(), kGroups, c.affine, kEps);
  }
  return NormDesc();
}

void test::argShapes(const RuntimeConfig &c, const std::vector<int64_t> &shape,
                     std::vector<int64_t> &affine,
                     std::vector<int64_t> &stats) {
  switch (c.op) {
  case Op::LayerNorm:
  case Op::RMSNorm:
    affine = {shape[1]};
    stats = {shape[0]};
    return;
  case Op::BatchNormTrain:
  case Op::BatchNormInfer:
    affine = stats = {kChannels};
    return;
  case Op::InstanceNorm:
    affine = {kChannels};
    stats = {shape[0], kChannels};
    return;
  case Op::GroupNorm:
    affine = {kChannels};
    stats = {shape[0], kGroups};
    return;
  }
}

normc_dtype test::runtimeDType(DType d) {
  switch (d) {
  case DType::F32:
    return NORMC_DTYPE_F32;
  case DType::F16:
    return NORMC_DTYPE_F16;
  case DType::BF16:
    return NORMC_DTYPE_BF16;
  case DType::F64:
    return NORMC_DTYPE_F64;
  }
  return NORMC_DTYPE_F32;
}

static constexpr size_t kGuard = 16;
static constexpr uint8_t kFill = 0xA5;

Call::Call(const std::vector<Arg> &args, bool nullEmpty) {
  for (const Arg &arg : args) {
    std::vector<uint8_t> buffer(bytes(arg) + kGuard, kFill);
    if (!arg.output)
      storeAs(arg.dtype, arg.values, buffer.data());
    buffers.push_back(std::move(buffer));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    normc_tensor t{};
    t.data =
        nullEmpty && numel(args[i].shape) == 0 ? nullptr : buffers[i].data();
    t.dtype = runtimeDType(args[i].dtype);
    t.rank = args[i].shape.size();
    t.shape = args[i].shape.data();
    tensors.push_back(t);
  }
}

size_t Call::bytes(const Arg &arg) {
  return numel(arg.shape) * dtypeSize(arg.dtype);
}

std::vector<uint8_t> Call::outputBytes(const std::vector<Arg> &args,
                                       size_t i) const {
  return std::vector<uint8_t>(buffers[i].begin(),
                              buffers[i].begin() + bytes(args[i]));
}

bool Call::guardsIntact(const std::vector<Arg> &args) const {
  for (size_t i = 0; i < args.size(); ++i)
    for (size_t b = bytes(args[i]); b < buffers[i].size(); ++b)
      if (buffers[i][b] != kFill)
        return false;
  return true;
}

bool Call::outputsUntouched(const std::vector<Arg> &args) const {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].output)
      for (uint8_t byte : buffers[i])
        if (byte != kFill)
          return false;
  return true;
}
