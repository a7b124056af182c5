#include "engine/gates/batch_norm.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/batch_norm_internal.h"
#include "engine/ir/gate.h"

namespace backflow {
namespace batch_norm {

Status CheckShapes(const ShapeContext& ctx, size_t first_c) {
  const Shape& x = ctx.inputs[0];
  if (x.rank() != 2 && x.rank() != 4) {
    return ctx.Error("batch_norm needs x of rank 2 [N, C] or 4 [N, C, H, W], got " + x.ToString());
  }
  for (size_t i = first_c; i < ctx.inputs.size(); ++i) {
    const Shape& v = ctx.inputs[i];
    if (v.rank() != 1 || v.dim(0) != x.dim(1)) {
      return ctx.Error("batch_norm input " + std::to_string(i) + " has shape " + v.ToString() +
                       ", expected [" + std::to_string(x.dim(1)) + "] (the channels of x " +
                       x.ToString() + ")");
    }
  }
  return Status::Ok();
}

}  // namespace batch_norm

namespace {

using batch_norm::Dims;
using batch_norm::kDefaultEpsilon;
using batch_norm::kDefaultMomentum;

constexpr std::string_view kMomentumDoc =
    "weight of the batch statistic in a training step's running-statistic update";
constexpr std::string_view kEpsilonDoc = "added to the variance before the square root";

// y = (x - mean) * inv_std * w + b per channel; the statistics of the run's mode.
template <typename T>
class BatchNormKernel : public Kernel {
 public:
  BatchNormKernel(Dims dims, double eps, bool affine) : d_(dims), eps_(eps), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    const batch_norm::Stats st = batch_norm::StatsFor(
        d_, x, ctx.inputs[1]->data<T>(), ctx.inputs[2]->data<T>(), ctx.info.training, eps_);
    const T* w = affine_ ? ctx.inputs[3]->data<T>() : nullptr;
    const T* b = affine_ ? ctx.inputs[4]->data<T>() : nullptr;
    T* y = ctx.output->data<T>();
    for (int64_t i = 0; i < d_.n; ++i) {
      for (int64_t ch = 0; ch < d_.c; ++ch) {
        const auto c = static_cast<size_t>(ch);
        const double scale = st.inv_std[c] * (w ? static_cast<double>(w[ch]) : 1.0);
        const double shift = b ? static_cast<double>(b[ch]) : 0.0;
        for (int64_t j = 0; j < d_.s; ++j) {
          const int64_t k = d_.at(i, ch, j);
          y[k] = static_cast<T>((static_cast<double>(x[k]) - st.mean[c]) * scale + shift);
        }
      }
    }
    return Status::Ok();
  }

 private:
  Dims d_;
  double eps_;
  bool affine_;
};

// batch_norm_running(x, running): (1 - momentum) * running + momentum * the batch's statistic,
// the mean or the unbiased variance (as torch.nn.BatchNorm updates running_var).
template <typename T>
class RunningKernel : public Kernel {
 public:
  RunningKernel(Dims dims, double momentum, bool var) : d_(dims), momentum_(momentum), var_(var) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    std::vector<double> mean, var;
    batch_norm::BatchStats(d_, ctx.inputs[0]->data<T>(), mean, var);
    const T* running = ctx.inputs[1]->data<T>();
    T* out = ctx.output->data<T>();
    const double count = static_cast<double>(d_.count());
    const double unbias = count > 1 ? count / (count - 1) : 1.0;
    for (int64_t ch = 0; ch < d_.c; ++ch) {
      const auto c = static_cast<size_t>(ch);
      const double stat = var_ ? var[c] * unbias : mean[c];
      out[ch] =
          static_cast<T>((1.0 - momentum_) * static_cast<double>(running[ch]) + momentum_ * stat);
    }
    return Status::Ok();
  }

 private:
  Dims d_;
  double momentum_;
  bool var_;
};

class BatchNormGate : public Gate {
 public:
  Arity arity() const override { return {3, 5}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "momentum",
             .type = AttrType::kFloat,
             .default_value = "0.1",
             .description = kMomentumDoc},
            {.name = "epsilon",
             .type = AttrType::kFloat,
             .default_value = "1e-05",
             .description = kEpsilonDoc}};
  }
  OpDoc doc() const override {
    return {.summary = "Batch normalisation over channel axis 1, as torch.nn.BatchNorm1d/2d.",
            .inputs = {{"x", "[N, C] or [N, C, H, W]"},
                       {"running_mean", "[C], running state"},
                       {"running_var", "[C], running state"},
                       {"weight", "[C], optional (with bias): the affine scale"},
                       {"bias", "[C], optional (with weight): the affine shift"}},
            .output = "x's shape",
            .forward =
                "y = (x - m) / sqrt(v + epsilon) * weight + bias, per channel\n"
                "training:  m, v = mean and biased variance of x over N (and H, W); the step\n"
                "           then sets running_mean = (1 - momentum) * running_mean + momentum * m\n"
                "           and running_var = (1 - momentum) * running_var\n"
                "                             + momentum * v * n / (n - 1), n = N*H*W\n"
                "inference: m, v = running_mean, running_var",
            .gradient =
                "xhat = (x - m) / sqrt(v + epsilon), sums over all axes but C:\n"
                "dL/dbias = sum(dy), dL/dweight = sum(dy * xhat)\n"
                "dL/dx = weight / sqrt(v + epsilon) * (dy - sum(dy)/n - xhat * sum(dy * xhat)/n)\n"
                "        in training, dy * weight / sqrt(v + epsilon) in inference;\n"
                "none to the running statistics (state)"};
  }
  int64_t Flops(const FlopsContext& ctx) const override {
    // Two passes of statistics, one of y.
    return SaturatingMul(8, FlopsContext::Elements(ctx.inputs[0]));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    if (ctx.inputs.size() == 4) {
      return ctx.Error("batch_norm takes weight and bias together, or neither: got weight only");
    }
    BF_RETURN_IF_ERROR(batch_norm::CheckShapes(ctx, 1));
    return ctx.inputs[0];
  }
  // Inference normalises with the running statistics (state, the same for every row).
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const double eps = ctx.attrs.GetFloat("epsilon", kDefaultEpsilon);
    const bool affine = ctx.inputs.size() == 5;
    if (ctx.dtype == DType::kFloat32) return batch_norm::CompileDnnlForward(ctx, eps, affine);
    return MakeTypedKernel<BatchNormKernel>(ctx.dtype, Dims::Of(ctx.inputs[0]), eps, affine);
  }
  Status Backward(BackwardContext& ctx) const override;
  Status AppendStateUpdates(StateUpdateContext& ctx) const override {
    Attributes attrs;
    attrs.Set("momentum", ctx.node().attrs.GetFloat("momentum", kDefaultMomentum));
    for (int i : {1, 2}) {
      if (!ctx.is_state(i)) continue;
      Attributes a = attrs;
      a.Set("stat", std::string(i == 1 ? "mean" : "var"));
      BF_ASSIGN_OR_RETURN(ValueId next,
                          ctx.Emit("batch_norm_running", {ctx.input(0), ctx.input(i)}, a));
      BF_RETURN_IF_ERROR(ctx.SetUpdate(i, next));
    }
    return Status::Ok();
  }
};

Status BatchNormGate::Backward(BackwardContext& ctx) const {
  // Values, not a reference to ctx.node(): each Emit may move the graph's node vector.
  const std::string name = ctx.node().name;
  const bool affine = ctx.node().inputs.size() == 5;
  if (ctx.needs_grad(1) || ctx.needs_grad(2)) {
    return InvalidArgumentError("node '" + name +
                                "' (batch_norm): the running mean and variance are state, "
                                "with no gradient");
  }
  Attributes attrs;
  attrs.Set("epsilon", ctx.node().attrs.GetFloat("epsilon", kDefaultEpsilon));
  const ValueId dy = ctx.output_grad();
  const std::vector<ValueId> stats = {ctx.input(0), dy, ctx.input(1), ctx.input(2)};
  if (ctx.needs_grad(0)) {
    std::vector<ValueId> in = stats;
    if (affine) in.push_back(ctx.input(3));
    BF_ASSIGN_OR_RETURN(ValueId dx, ctx.Emit("batch_norm_grad_x", in, attrs));
    ctx.SetGrad(0, dx);
  }
  if (affine && ctx.needs_grad(3)) {
    BF_ASSIGN_OR_RETURN(ValueId dw, ctx.Emit("batch_norm_grad_weight", stats, attrs));
    ctx.SetGrad(3, dw);
  }
  if (affine && ctx.needs_grad(4)) {
    BF_ASSIGN_OR_RETURN(ValueId db, ctx.Emit("batch_norm_grad_bias", {ctx.input(0), dy}));
    ctx.SetGrad(4, db);
  }
  return Status::Ok();
}

// batch_norm_running(x, running): the next running mean or variance (attribute stat).
class RunningGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "momentum", .type = AttrType::kFloat, .required = true},
            {.name = "stat", .type = AttrType::kString, .required = true}};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const std::string stat = ctx.attrs.GetString("stat", "");
    if (stat != "mean" && stat != "var") {
      return ctx.Error("batch_norm_running stat must be \"mean\" or \"var\", got \"" + stat + "\"");
    }
    BF_RETURN_IF_ERROR(batch_norm::CheckShapes(ctx, 1));
    return ctx.inputs[1];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<RunningKernel>(ctx.dtype, Dims::Of(ctx.inputs[0]),
                                          ctx.attrs.GetFloat("momentum", kDefaultMomentum),
                                          ctx.attrs.GetString("stat", "") == "var");
  }
};

}  // namespace

void RegisterBatchNormGates(GateRegistry& registry) {
  (void)registry.Register("batch_norm", std::make_unique<BatchNormGate>());
  (void)registry.Register("batch_norm_running", std::make_unique<RunningGate>());
  batch_norm::RegisterGradGates(registry);
}

}  // namespace backflow
