// The gradient gates of batch_norm, reference loops in double:
//   batch_norm_grad_x(x, dy, running_mean, running_var, weight?)   dL/dx
//   batch_norm_grad_weight(x, dy, running_mean, running_var)      sum(dy * xhat) per channel
//   batch_norm_grad_bias(x, dy)                                    sum(dy) per channel
// Each normalises with the statistics of the run's mode, as the forward did.
#include <memory>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/batch_norm_internal.h"
#include "engine/ir/gate.h"

namespace backflow::batch_norm {
namespace {

enum class Part { kX, kWeight, kBias };

// Per channel: sum(dy) and sum(dy * xhat).
struct ChannelSums {
  std::vector<double> dy;
  std::vector<double> dy_xhat;
};

template <typename T>
ChannelSums SumsOf(const Dims& d, const T* x, const T* dy, const Stats& st) {
  ChannelSums s{std::vector<double>(static_cast<size_t>(d.c)),
                std::vector<double>(static_cast<size_t>(d.c))};
  for (int64_t i = 0; i < d.n; ++i) {
    for (int64_t ch = 0; ch < d.c; ++ch) {
      const auto c = static_cast<size_t>(ch);
      for (int64_t j = 0; j < d.s; ++j) {
        const int64_t k = d.at(i, ch, j);
        const double g = static_cast<double>(dy[k]);
        s.dy[c] += g;
        s.dy_xhat[c] += g * (static_cast<double>(x[k]) - st.mean[c]) * st.inv_std[c];
      }
    }
  }
  return s;
}

template <typename T>
class GradKernel : public Kernel {
 public:
  GradKernel(Part part, Dims dims, double eps, bool affine)
      : part_(part), d_(dims), eps_(eps), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    const T* dy = ctx.inputs[1]->data<T>();
    T* out = ctx.output->data<T>();
    Stats st;
    if (part_ == Part::kBias) {  // sum(dy) needs no statistics
      st.mean.assign(static_cast<size_t>(d_.c), 0.0);
      st.inv_std.assign(static_cast<size_t>(d_.c), 0.0);
    } else {
      st = StatsFor(d_, x, ctx.inputs[2]->data<T>(), ctx.inputs[3]->data<T>(), ctx.info.training,
                    eps_);
    }
    const ChannelSums sums = SumsOf(d_, x, dy, st);
    if (part_ != Part::kX) {
      const std::vector<double>& v = part_ == Part::kBias ? sums.dy : sums.dy_xhat;
      for (int64_t ch = 0; ch < d_.c; ++ch) out[ch] = static_cast<T>(v[static_cast<size_t>(ch)]);
      return Status::Ok();
    }
    const T* w = affine_ ? ctx.inputs[4]->data<T>() : nullptr;
    const double n = static_cast<double>(d_.count());
    for (int64_t i = 0; i < d_.n; ++i) {
      for (int64_t ch = 0; ch < d_.c; ++ch) {
        const auto c = static_cast<size_t>(ch);
        const double scale = st.inv_std[c] * (w ? static_cast<double>(w[ch]) : 1.0);
        const double mean_dy = ctx.info.training ? sums.dy[c] / n : 0.0;
        const double mean_dy_xhat = ctx.info.training ? sums.dy_xhat[c] / n : 0.0;
        for (int64_t j = 0; j < d_.s; ++j) {
          const int64_t k = d_.at(i, ch, j);
          const double xhat = (static_cast<double>(x[k]) - st.mean[c]) * st.inv_std[c];
          out[k] =
              static_cast<T>(scale * (static_cast<double>(dy[k]) - mean_dy - xhat * mean_dy_xhat));
        }
      }
    }
    return Status::Ok();
  }

 private:
  Part part_;
  Dims d_;
  double eps_;
  bool affine_;
};

class GradGate : public Gate {
 public:
  explicit GradGate(Part part) : part_(part) {}
  Arity arity() const override {
    switch (part_) {
      case Part::kX:
        return {4, 5};
      case Part::kWeight:
        return {4, 4};
      case Part::kBias:
        return {2, 2};
    }
    return {2, 2};
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }  // no second derivatives yet
  std::vector<AttrSpec> attr_specs() const override {
    if (part_ == Part::kBias) return {};
    return {{.name = "epsilon", .type = AttrType::kFloat, .required = true}};
  }
  int64_t Flops(const FlopsContext& ctx) const override {
    return SaturatingMul(8, FlopsContext::Elements(ctx.inputs[0]));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    if (ctx.inputs[1] != ctx.inputs[0]) {
      return ctx.Error("batch_norm gradient dy " + ctx.inputs[1].ToString() + " does not match x " +
                       ctx.inputs[0].ToString());
    }
    BF_RETURN_IF_ERROR(CheckShapes(ctx, 2));
    if (part_ == Part::kX) return ctx.inputs[0];
    return Shape({ctx.inputs[0].dim(1)});
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const double eps = ctx.attrs.GetFloat("epsilon", kDefaultEpsilon);
    const bool affine = ctx.inputs.size() == 5;
    if (part_ == Part::kX && ctx.dtype == DType::kFloat32) {
      return CompileDnnlGradX(ctx, eps, affine);
    }
    return MakeTypedKernel<GradKernel>(ctx.dtype, part_, Dims::Of(ctx.inputs[0]), eps, affine);
  }

 private:
  Part part_;
};

}  // namespace

void RegisterGradGates(GateRegistry& registry) {
  (void)registry.Register("batch_norm_grad_x", std::make_unique<GradGate>(Part::kX));
  (void)registry.Register("batch_norm_grad_weight", std::make_unique<GradGate>(Part::kWeight));
  (void)registry.Register("batch_norm_grad_bias", std::make_unique<GradGate>(Part::kBias));
}

}  // namespace backflow::batch_norm
