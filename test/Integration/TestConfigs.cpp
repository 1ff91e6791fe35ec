//===- TestConfigs.cpp - the norm configurations of the integration tests -===//

#include "TestConfigs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace normc;
using namespace normc::ref;
using namespace normc::test;

int64_t Config::channels() const {
  return isChannelOp() && staticInner ? staticInner : kChannels;
}

const char *test::opTag(Op op) {
  static const char *tags[] = {"layer_norm", "rms_norm",      "bn_train",
                               "bn_infer",   "instance_norm", "group_norm"};
  return tags[(int)op];
}

std::string Config::name() const {
  std::string n = opTag(op);
  if (isChannelOp())
    n += channelsLast ? "_nsc" : "_ncs";
  n += std::string("_") + dtypeName(dtype);
  n += affine ? "_affine" : "_plain";
  n += epsOutside ? "_epsout" : "_epsin";
  if (staticInner)
    n += "_static" + std::to_string(staticInner);
  return n;
}

/// A tensor type of `rank` dynamic dims, the last one `last` if nonzero.
static std::string tensorType(int rank, const char *element, int64_t last = 0) {
  std::string t = "tensor<";
  for (int i = 0; i < rank; ++i)
    t += i == rank - 1 && last ? std::to_string(last) + "x" : "?x";
  return t + element + ">";
}

/// The spec text of one kernel, written independently of normc's quick form.
std::string test::specFor(const Config &c, bool backward) {
  const char *e = dtypeName(c.dtype);
  const char *s = c.dtype == DType::F64 ? "f64" : "f32";
  int rank = c.isChannelOp() ? 3 : 2;
  std::string x = tensorType(rank, e, c.staticInner);
  std::string vec = tensorType(1, e, c.staticInner);
  std::string stat;
  if (c.op == Op::LayerNorm || c.op == Op::RMSNorm)
    stat = tensorType(1, s);
  else if (c.op == Op::BatchNormTrain || c.op == Op::BatchNormInfer)
    stat = tensorType(1, s, c.staticInner);
  else if (c.op == Op::InstanceNorm)
    stat = tensorType(2, s, c.staticInner);
  else
    stat = std::string("tensor<?x") + std::to_string(kGroups) + "x" + s + ">";

  std::vector<std::string> attrs = normOpAttrs(
      c.op, c.epsOutside, c.isChannelOp() && c.channelsLast ? 2 : -1);
  return normFunctionText(c.name(), c.op, c.affine, {x, vec, stat}, attrs,
                          backward ? "norm.backward" : "");
}

std::vector<std::string> test::normOpAttrs(Op op, bool epsOutside,
                                           int64_t channelDim) {
  std::vector<std::string> attrs = {"eps = 1.0e-05 : f64"};
  if (epsOutside)
    attrs.push_back("eps_outside");
  if (channelDim >= 0)
    attrs.push_back("channel_dim = " + std::to_string(channelDim) + " : i64");
  if (op == Op::GroupNorm)
    attrs.push_back("num_groups = " + std::to_string(kGroups) + " : i64");
  if (op == Op::BatchNormTrain)
    attrs.push_back("training");
  return attrs;
}

static std::string joinWithCommas(const std::vector<std::string> &items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? ", " : "") + items[i];
  return out;
}

std::string test::normFunctionText(const std::string &name, Op op, bool affine,
                                   const NormCallTypes &types,
                                   const std::vector<std::string> &opAttrs,
                                   const std::string &funcAttrs) {
  std::vector<std::pair<std::string, std::string>> args = {{"x", types.x}};
  std::string operands = "%x";
  if (affine) {
    args.push_back({"w", types.vec});
    operands += " weight(%w)";
    if (op != Op::RMSNorm) {
      args.push_back({"b", types.vec});
      operands += " bias(%b)";
    }
  }
  if (op == Op::BatchNormTrain || op == Op::BatchNormInfer) {
    args.push_back({"rm", types.stat});
    args.push_back({"rv", types.stat});
    operands += " running(%rm, %rv)";
  }
  // y, then mean (not RMSNorm's) and rstd, then the updated running
  // statistics of BatchNorm training; BatchNorm inference returns y alone.
  std::vector<std::string> results = {types.x};
  if (op != Op::BatchNormInfer) {
    if (op != Op::RMSNorm)
      results.push_back(types.stat);
    results.push_back(types.stat);
  }
  if (op == Op::BatchNormTrain) {
    results.push_back(types.stat);
    results.push_back(types.stat);
  }

  std::vector<std::string> argDecls, argTypes, resultNames;
  for (auto &[argName, type] : args) {
    argDecls.push_back("%" + argName + ": " + type);
    argTypes.push_back(type);
  }
  for (size_t i = 0; i < results.size(); ++i)
    resultNames.push_back("%r" + std::to_string(i));
  static const char *named[] = {"layer_norm", "rms_norm",      "batch_norm",
                                "batch_norm", "instance_norm", "group_norm"};
  std::string text =
      "func.func @" + name + "(" + joinWithCommas(argDecls) + ") -> (" +
      joinWithCommas(results) + ")" +
      (funcAttrs.empty() ? "" : " attributes {" + funcAttrs + "}") + " {\n";
  text += "  " + joinWithCommas(resultNames) + " = norm." + named[(int)op] +
          " " + operands + " {" + joinWithCommas(opAttrs) + "} : (" +
          joinWithCommas(argTypes) + ") -> (" + joinWithCommas(results) + ")\n";
  text += "  return " + joinWithCommas(resultNames) + " : " +
          joinWithCommas(results) + "\n}\n";
  return text;
}

NormDesc test::descFor(const Config &c, const std::vector<int64_t> &shape) {
  int64_t channel = c.channelsLast ? 2 : 1;
  NormDesc d;
  switch (c.op) {
  case Op::LayerNorm:
    d = layerNormDesc(shape, 1, c.affine, kEps);
    break;
  case Op::RMSNorm:
    d = rmsNormDesc(shape, 1, c.affine, kEps);
    break;
  case Op::BatchNormTrain:
    d = batchNormDesc(shape, channel, /*training=*/true, c.affine, kEps,
                      /*updateRunning=*/true, kMomentum);
    break;
  case Op::BatchNormInfer:
    d = batchNormDesc(shape, channel, /*training=*/false, c.affine, kEps);
    break;
  case Op::InstanceNorm:
    d = instanceNormDesc(shape, channel, c.affine, kEps);
    break;
  case Op::GroupNorm:
    d = groupNormDesc(shape, channel, kGroups, c.affine, kEps);
    break;
  }
  d.epsOutside = c.epsOutside;
  return d;
}

std::vector<Config> test::allConfigs() {
  std::vector<Config> configs;
  for (Op op : {Op::LayerNorm, Op::RMSNorm, Op::BatchNormTrain,
                Op::BatchNormInfer, Op::InstanceNorm, Op::GroupNorm})
    for (DType dtype : {DType::F32, DType::F16, DType::BF16})
      for (bool affine : {true, false})
        for (bool epsOutside : {false, true})
          for (bool channelsLast : {false, true}) {
            bool channelOp = op != Op::LayerNorm && op != Op::RMSNorm;
            if (!channelOp && channelsLast)
              continue;
            configs.push_back({op, dtype, affine, epsOutside, channelsLast});
          }
  // f64 storage: statistics and output in f64.
  configs.push_back({Op::LayerNorm, DType::F64, true, false, false});
  configs.push_back({Op::GroupNorm, DType::F64, true, true, true});
  configs.push_back({Op::BatchNormTrain, DType::F64, true, false, true});
  // Static innermost dims select segmented lane mode (a short reduced dim
  // after a kept one, codegen/NormalizeToLoops.cpp) and unmasked lane
  // chunks: GroupNorm NHWC with 2, 3 and 16 channels per group (chunks
  // with masked tails, odd segments, full chunks), rows of 3 and 17
  // without weights, and channels-last ops whose channels fill the vectors.
  for (DType dtype : {DType::F32, DType::F16, DType::BF16})
    for (bool affine : {true, false})
      for (int64_t channels : {8, 12, 64})
        configs.push_back(
            {Op::GroupNorm, dtype, affine, false, true, channels});
  configs.push_back({Op::GroupNorm, DType::F32, true, true, true, 8});
  configs.push_back({Op::GroupNorm, DType::F64, true, false, true, 12});
  configs.push_back({Op::LayerNorm, DType::F32, false, false, false, 3});
  configs.push_back({Op::RMSNorm, DType::BF16, false, true, false, 17});
  configs.push_back({Op::BatchNormTrain, DType::F32, true, false, true, 64});
  // Channels-last BatchNorm over 40 channels: 3 f64 vectors of 16 (the last
  // one masked) per position, which the backward's split batch visits in
  // tiles of positions (docs/cpu.md), with and without dgamma/dbeta.
  configs.push_back({Op::BatchNormTrain, DType::BF16, true, true, true, 40});
  configs.push_back({Op::BatchNormTrain, DType::F16, false, false, true, 40});
  configs.push_back({Op::InstanceNorm, DType::BF16, true, false, true, 64});
  // 16-bit rows of a static length up to 4096 are decoded once into a stack
  // buffer, and static 16-bit gamma/beta once per call (docs/cpu.md): an
  // odd length (masked tails) and whole vectors, with weights.
  configs.push_back({Op::LayerNorm, DType::BF16, true, false, false, 1151});
  configs.push_back({Op::LayerNorm, DType::F16, true, true, false, 4096});
  configs.push_back({Op::RMSNorm, DType::BF16, true, false, false, 4096});
  return configs;
}

std::vector<std::vector<int64_t>> test::shapesFor(const Config &c) {
  static const int64_t extents[] = {1, 3, 17, 1151, 4096, 65537};
  static const int64_t batches[] = {1, 7, 64};
  std::vector<std::vector<int64_t>> shapes;
  if (!c.isChannelOp() && c.staticInner) {
    // Under 4M elements, as the channel ops below.
    for (int64_t rows : {1, 7, 64, 1151, 4096})
      if (rows * c.staticInner <= (int64_t(1) << 22))
        shapes.push_back({rows, c.staticInner});
    return shapes;
  }
  for (int64_t batch : batches)
    for (int64_t extent : extents) {
      if (!c.isChannelOp()) {
        shapes.push_back({batch, extent});
        continue;
      }
      // Keep the channel-op cases under 4M elements.
      if (batch * c.channels() * extent > (int64_t(1) << 22))
        continue;
      // Running statistics need two values per channel (as PyTorch).
      if (c.op == Op::BatchNormTrain && batch * extent < 2)
        continue;
      shapes.push_back(c.channelsLast
                           ? std::vector<int64_t>{batch, extent, c.channels()}
                           : std::vector<int64_t>{batch, c.channels(), extent});
    }
  // Rows of 2^18 elements or more are split however many there are (the
  // backward always, the forward when centered), and rows longer than
  // 128 x 8192 in longer chunks (the backward): an odd length so that the
  // last chunk is short.
  if (!c.isChannelOp())
    for (auto shape : {std::vector<int64_t>{8, 262147}, {1, 1048593}})
      shapes.push_back(shape);
  // Fewer channels than kRowSplitMaxRows over a batch of 64K elements or
  // more: NCHW BatchNorm splits its batch too (NHWC does with C = 8).
  if (c.op == Op::BatchNormTrain && !c.channelsLast && !c.staticInner)
    for (auto shape : {std::vector<int64_t>{7, 3, 65537}, {64, 3, 1151}})
      shapes.push_back(shape);
  // Channels-last with static channels that fill several vectors: the
  // batch of 64K positions or more is split too, its chunks tiled over
  // every vector of a position (the backward; the last chunk short).
  if (c.op == Op::BatchNormTrain && c.channelsLast && c.staticInner > 16)
    for (auto shape : {std::vector<int64_t>{1, 65537, c.staticInner},
                       {7, 9363, c.staticInner}})
      shapes.push_back(shape);
  return shapes;
}

std::vector<int64_t> test::withStaticInner(const Config &c,
                                           std::vector<int64_t> shape) {
  if (c.staticInner)
    shape.back() = c.staticInner;
  return shape;
}

std::vector<int64_t> test::dynamicDims(const Config &c,
                                       const std::vector<int64_t> &shape) {
  std::vector<int64_t> dims = shape;
  if (c.staticInner)
    dims.pop_back();
  return dims;
}

std::string test::shapeText(const std::vector<int64_t> &shape) {
  std::string t;
  for (size_t i = 0; i < shape.size(); ++i)
    t += (i ? "x" : "") + std::to_string(shape[i]);
  return t;
}

void WorstErrors::add(const std::string &what, DType dtype,
                      const CompareReport &report) {
  auto &[abs, used] = byKind[what];
  abs = std::max(abs, report.maxAbsError);
  if (report.worstIndex < 0)
    return;
  Tolerance tol = defaultTolerance(dtype);
  double error = std::fabs(report.worstActual - report.worstExpected);
  if (std::isfinite(error))
    used = std::max(
        used, error / (tol.atol + tol.rtol * std::fabs(report.worstExpected)));
}

void WorstErrors::print(const char *title) const {
  std::printf("%s\n", title);
  for (auto &[what, err] : byKind)
    std::printf("  %-16s max abs error %.3g, %.2f of the tolerance\n",
                what.c_str(), err.first, err.second);
}
