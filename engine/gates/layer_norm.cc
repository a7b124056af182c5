#include "engine/gates/layer_norm.h"

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/layer_norm_internal.h"
#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

using layer_norm::Groups;

constexpr double kDefaultEpsilon = 1e-5;

enum class Part { kForward, kX, kWeight, kBias };

// The number of normalised axes: weight's rank when given (inputs beyond x and, for the
// gradient gates, dy), else normalized_ndim.
int64_t NormalizedNdim(const ShapeContext& ctx, size_t weight_at) {
  if (ctx.inputs.size() > weight_at) return ctx.inputs[weight_at].rank();
  return ctx.attrs.GetInt("normalized_ndim", 1);
}

// Checks that x has k >= 1 trailing axes and that inputs from `first` on have their shape.
Status CheckShapes(const ShapeContext& ctx, int64_t k, size_t first) {
  const Shape& x = ctx.inputs[0];
  if (k < 1 || k > x.rank()) {
    return ctx.Error("layer_norm normalises over " + std::to_string(k) +
                     " trailing axes, which x of shape " + x.ToString() + " does not have");
  }
  const Shape trailing(std::span<const int64_t>(x.dims()).subspan(x.rank() - k));
  for (size_t i = first; i < ctx.inputs.size(); ++i) {
    if (ctx.inputs[i] != trailing) {
      return ctx.Error("layer_norm input " + std::to_string(i) + " has shape " +
                       ctx.inputs[i].ToString() + ", expected " + trailing.ToString() +
                       " (the trailing axes of x " + x.ToString() + ")");
    }
  }
  return Status::Ok();
}

// Mean and 1/sigma of one group of n elements.
template <typename T>
void GroupStats(const T* x, int64_t n, double eps, double& mean, double& inv_std) {
  double var = 0;
  layer_norm::GroupMoments(x, n, mean, var);
  inv_std = 1.0 / std::sqrt(var + eps);
}

// One kernel for the forward and the three gradients. Inputs: forward (x, weight?, bias?);
// kX (x, dy, weight?); kWeight and kBias (x, dy).
template <typename T>
class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(Part part, Groups groups, double eps, bool affine)
      : part_(part), g_(groups), eps_(eps), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    T* out = ctx.output->data<T>();
    if (part_ == Part::kWeight || part_ == Part::kBias) {
      SumOverGroups(x, ctx.inputs[1]->data<T>(), out);
      return Status::Ok();
    }
    const T* dy = part_ == Part::kX ? ctx.inputs[1]->data<T>() : nullptr;
    const size_t w_at = part_ == Part::kX ? 2 : 1;
    const T* w = affine_ ? ctx.inputs[w_at]->data<T>() : nullptr;
    const T* b = affine_ && part_ == Part::kForward ? ctx.inputs[2]->data<T>() : nullptr;
    for (int64_t o = 0; o < g_.outer; ++o) {
      const int64_t base = o * g_.n;
      double mean = 0, inv_std = 0;
      GroupStats(x + base, g_.n, eps_, mean, inv_std);
      if (dy == nullptr) {
        for (int64_t j = 0; j < g_.n; ++j) {
          const double xhat = (static_cast<double>(x[base + j]) - mean) * inv_std;
          out[base + j] = static_cast<T>(xhat * (w ? static_cast<double>(w[j]) : 1.0) +
                                         (b ? static_cast<double>(b[j]) : 0.0));
        }
        continue;
      }
      GradXGroup(x + base, dy + base, w, mean, inv_std, out + base);
    }
    return Status::Ok();
  }

 private:
  double Gain(const T* w, int64_t j) const { return w ? static_cast<double>(w[j]) : 1.0; }

  // dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma, g = dy * weight.
  void GradXGroup(const T* x, const T* dy, const T* w, double mean, double inv_std, T* dx) const {
    double sum_g = 0, sum_g_xhat = 0;
    for (int64_t j = 0; j < g_.n; ++j) {
      const double g = static_cast<double>(dy[j]) * Gain(w, j);
      sum_g += g;
      sum_g_xhat += g * (static_cast<double>(x[j]) - mean) * inv_std;
    }
    const double n = static_cast<double>(g_.n);
    for (int64_t j = 0; j < g_.n; ++j) {
      const double g = static_cast<double>(dy[j]) * Gain(w, j);
      const double xhat = (static_cast<double>(x[j]) - mean) * inv_std;
      dx[j] = static_cast<T>(inv_std * (g - sum_g / n - xhat * sum_g_xhat / n));
    }
  }

  // out[j] = sum over groups of dy * xhat (kWeight) or of dy (kBias).
  void SumOverGroups(const T* x, const T* dy, T* out) const {
    std::vector<double> acc(static_cast<size_t>(g_.n), 0.0);
    for (int64_t o = 0; o < g_.outer; ++o) {
      const int64_t base = o * g_.n;
      double mean = 0, inv_std = 0;
      if (part_ == Part::kWeight) GroupStats(x + base, g_.n, eps_, mean, inv_std);
      for (int64_t j = 0; j < g_.n; ++j) {
        const double d = static_cast<double>(dy[base + j]);
        acc[static_cast<size_t>(j)] +=
            part_ == Part::kBias ? d : d * (static_cast<double>(x[base + j]) - mean) * inv_std;
      }
    }
    for (int64_t j = 0; j < g_.n; ++j) out[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
  }

  Part part_;
  Groups g_;
  double eps_;
  bool affine_;
};

// float32 runs on oneDNN (layer_norm_internal.h): x's trailing axes flatten into the one axis
// oneDNN normalises over, and weight and bias into vectors, so every shape the gate accepts fits.
bool UseDnnl(const CompileContext& ctx) {
  return ctx.dtype == DType::kFloat32 && ctx.inputs[0].num_elements() > 0;
}

std::vector<AttrSpec> LayerNormAttrSpecs() {
  return {{.name = "normalized_ndim",
           .type = AttrType::kInt,
           .default_value = "1",
           .description = "how many trailing axes to normalise over when weight is absent "
                          "(with weight: its rank)"},
          {.name = "epsilon",
           .type = AttrType::kFloat,
           .default_value = "1e-05",
           .description = "added to the variance before the square root"}};
}

OpDoc LayerNormDoc() {
  return {.summary =
              "Layer normalisation over the trailing axes, as "
              "torch.nn.functional.layer_norm.",
          .inputs = {{"x", "rank >= k, k = weight's rank or normalized_ndim"},
                     {"weight", "x's last k axes, optional (with bias): the affine scale"},
                     {"bias", "x's last k axes, optional (with weight): the affine shift"}},
          .output = "x's shape",
          .forward =
              "per group of x's last k axes, m and v its mean and biased variance:\n"
              "y = (x - m) / sqrt(v + epsilon) * weight + bias",
          .gradient =
              "xhat = (x - m) / sigma, sigma = sqrt(v + epsilon), g = dy * weight,\n"
              "means over the group, sums over the leading axes:\n"
              "dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma\n"
              "dL/dweight = sum(dy * xhat), dL/dbias = sum(dy)"};
}

class LayerNormGate : public Gate {
 public:
  Arity arity() const override { return {1, 3}; }
  std::vector<AttrSpec> attr_specs() const override { return LayerNormAttrSpecs(); }
  OpDoc doc() const override { return LayerNormDoc(); }
  int64_t Flops(const FlopsContext& ctx) const override {
    // Two passes of statistics, one of y.
    return SaturatingMul(8, FlopsContext::Elements(ctx.inputs[0]));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    if (ctx.inputs.size() == 2) {
      return ctx.Error("layer_norm takes weight and bias together, or neither: got weight only");
    }
    BF_RETURN_IF_ERROR(CheckShapes(ctx, NormalizedNdim(ctx, 1), 1));
    return ctx.inputs[0];
  }
  // Each group is one row's unless the normalised (trailing) axes take in axis 0.
  Rows BatchRows(const RowsContext& ctx) const override {
    const int64_t k = ctx.inputs.size() == 3 ? ctx.input_shapes[1].rank()
                                             : ctx.attrs.GetInt("normalized_ndim", 1);
    return k < ctx.input_shapes[0].rank() ? ctx.FirstInputRows() : Gate::BatchRows(ctx);
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const bool affine = ctx.inputs.size() == 3;
    const int64_t k = affine ? ctx.inputs[1].rank() : ctx.attrs.GetInt("normalized_ndim", 1);
    const Groups groups = Groups::Of(ctx.inputs[0], static_cast<int>(k));
    const double eps = ctx.attrs.GetFloat("epsilon", kDefaultEpsilon);
    if (UseDnnl(ctx)) return layer_norm::CompileDnnlForward(ctx, groups, eps, affine);
    return MakeTypedKernel<LayerNormKernel>(ctx.dtype, Part::kForward, groups, eps, affine);
  }
  Status Backward(BackwardContext& ctx) const override;
};

Status LayerNormGate::Backward(BackwardContext& ctx) const {
  const Node& node = ctx.node();
  const bool affine = node.inputs.size() == 3;
  Attributes attrs;
  attrs.Set("epsilon", node.attrs.GetFloat("epsilon", kDefaultEpsilon));
  attrs.Set("normalized_ndim", node.attrs.GetInt("normalized_ndim", 1));
  const ValueId dy = ctx.output_grad();
  if (ctx.needs_grad(0)) {
    std::vector<ValueId> in = {ctx.input(0), dy};
    if (affine) in.push_back(ctx.input(1));
    BF_ASSIGN_OR_RETURN(ValueId dx, ctx.Emit("layer_norm_grad_x", in, attrs));
    ctx.SetGrad(0, dx);
  }
  if (!affine) return Status::Ok();
  // Without weight among their inputs, the affine gradient gates learn k from normalized_ndim.
  attrs.Set("normalized_ndim", int64_t{ctx.input_shape(1).rank()});
  for (int i : {1, 2}) {
    if (!ctx.needs_grad(i)) continue;
    BF_ASSIGN_OR_RETURN(ValueId d,
                        ctx.Emit(i == 1 ? "layer_norm_grad_weight" : "layer_norm_grad_bias",
                                 {ctx.input(0), dy}, attrs));
    ctx.SetGrad(i, d);
  }
  return Status::Ok();
}

// Internal: layer_norm_grad_x (x, dy, weight?), layer_norm_grad_weight and
// layer_norm_grad_bias (x, dy); attributes as the forward's.
class GradGate : public Gate {
 public:
  explicit GradGate(Part part) : part_(part) {}
  Arity arity() const override { return part_ == Part::kX ? Arity{2, 3} : Arity{2, 2}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }  // no second derivatives yet
  std::vector<AttrSpec> attr_specs() const override { return LayerNormAttrSpecs(); }
  int64_t Flops(const FlopsContext& ctx) const override {
    return SaturatingMul(8, FlopsContext::Elements(ctx.inputs[0]));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    if (ctx.inputs[1] != x) {
      return ctx.Error("layer_norm gradient dy " + ctx.inputs[1].ToString() + " does not match x " +
                       x.ToString());
    }
    const int64_t k = NormalizedNdim(ctx, 2);
    BF_RETURN_IF_ERROR(CheckShapes(ctx, k, 2));
    if (part_ == Part::kX) return x;
    return Shape(std::span<const int64_t>(x.dims()).subspan(x.rank() - k));
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const bool affine = ctx.inputs.size() == 3;
    const int64_t k = affine ? ctx.inputs[2].rank() : ctx.attrs.GetInt("normalized_ndim", 1);
    const Groups groups = Groups::Of(ctx.inputs[0], static_cast<int>(k));
    const double eps = ctx.attrs.GetFloat("epsilon", kDefaultEpsilon);
    // dweight and dbias stay on the reference loops: oneDNN computes them only together with
    // dx (prop_kind::backward), which would compute dx a second time.
    if (part_ == Part::kX && UseDnnl(ctx)) {
      return layer_norm::CompileDnnlGradX(ctx, groups, eps, affine);
    }
    return MakeTypedKernel<LayerNormKernel>(ctx.dtype, part_, groups, eps, affine);
  }

 private:
  Part part_;
};

}  // namespace

void RegisterLayerNormGates(GateRegistry& registry) {
  (void)registry.Register("layer_norm", std::make_unique<LayerNormGate>());
  (void)registry.Register("layer_norm_grad_x", std::make_unique<GradGate>(Part::kX));
  (void)registry.Register("layer_norm_grad_weight", std::make_unique<GradGate>(Part::kWeight));
  (void)registry.Register("layer_norm_grad_bias", std::make_unique<GradGate>(Part::kBias));
}

}  // namespace backflow
