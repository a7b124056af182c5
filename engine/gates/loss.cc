#include "engine/gates/loss.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gates/loss_internal.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace loss_internal {

LossParams ParseParams(const Attributes& attrs) {
  return {attrs.GetString("reduction", "sum") == "mean", attrs.GetFloat("margin", 1.0)};
}

std::string Format(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status CheckParams(const ShapeContext& ctx) {
  const std::string reduction = ctx.attrs.GetString("reduction", "sum");
  if (reduction != "sum" && reduction != "mean") {
    return ctx.Error("reduction must be \"sum\" or \"mean\", got \"" + reduction + "\"");
  }
  const double margin = ctx.attrs.GetFloat("margin", 1.0);
  if (!std::isfinite(margin)) return ctx.Error("margin must be finite, got " + Format(margin));
  return Status::Ok();
}

bool ShapesMatch(const Shape& a, const Shape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) != b.dim(i) && a.dim(i) != kBatchDim && b.dim(i) != kBatchDim) return false;
  }
  return true;
}

}  // namespace loss_internal

namespace {

using loss_internal::Divisor;
using loss_internal::Format;
using loss_internal::LossParams;
using loss_internal::OpText;
using loss_internal::ShapesMatch;

// Two operands of one shape: squared_error, sigmoid_cross_entropy.
StatusOr<Shape> SameShapeRule(const ShapeContext& ctx, const InputDoc (&inputs)[2]) {
  if (!ShapesMatch(ctx.inputs[0], ctx.inputs[1])) {
    return ctx.Error(std::string(inputs[0].name) + " and " + std::string(inputs[1].name) +
                     " must have one shape, got " + ctx.inputs[0].ToString() + " and " +
                     ctx.inputs[1].ToString());
  }
  return Shape{};
}

template <typename T>
Status CheckTargets(const Tensor& targets) {
  const T* t = targets.data<T>();
  for (int64_t i = 0; i < targets.num_elements(); ++i) {
    if (!(t[i] >= T(0) && t[i] <= T(1))) {
      return InvalidArgumentError("target " + Format(t[i]) + " at index " + std::to_string(i) +
                                  " is not in [0, 1]");
    }
  }
  return Status::Ok();
}

struct SquaredErrorOp {
  static constexpr const char* kName = "squared_error";
  static constexpr OpText kDoc = {
      "Half the squared distance between y and t, summed, or averaged over the batch.",
      "L = 1/2 sum (y - t)^2 / D\n"
      "D = 1 for reduction \"sum\"; for \"mean\", the batch size N, dimension 0 of y\n"
      "    (1 for a scalar): the mean over examples of 1/2 ||y_i - t_i||^2",
      "dL/dy = (y - t) / D\ndL/dt = -(y - t) / D"};
  static constexpr InputDoc kInputs[2] = {{"y", "any shape; N may be open"},
                                          {"t", "the target, y's shape"}};
  static constexpr bool kGrad[2] = {true, true};
  static constexpr bool kDifferentiable = true;
  static constexpr bool kClassIds = false;
  static std::vector<AttrSpec> Specs() {
    return {{.name = "reduction",
             .type = AttrType::kString,
             .default_value = "sum",
             .description = "\"sum\", or \"mean\" to divide by the batch size"}};
  }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return SameShapeRule(ctx, kInputs); }

  template <typename T>
  static T BatchDivisor(const Tensor& y, const LossParams& p) {
    return p.mean && y.shape().rank() > 0 ? Divisor<T>(y.shape().dim(0)) : T(1);
  }
  template <typename T>
  static Status Forward(const Tensor& y, const Tensor& t, const LossParams& p, T* loss) {
    const T* py = y.data<T>();
    const T* pt = t.data<T>();
    Accumulator sum = 0;  // Note [Float32 sums accumulate in double]
    for (int64_t i = 0; i < y.num_elements(); ++i) {
      const Accumulator d = static_cast<Accumulator>(py[i]) - pt[i];
      sum += d * d;
    }
    *loss = static_cast<T>(sum / (2 * BatchDivisor<Accumulator>(y, p)));
    return Status::Ok();
  }
  template <typename T>
  static Status Grad(const Tensor& y, const Tensor& t, T dy, int wrt, const LossParams& p, T* out) {
    const T* py = y.data<T>();
    const T* pt = t.data<T>();
    const T scale = (wrt == 0 ? dy : -dy) / BatchDivisor<T>(y, p);
    for (int64_t i = 0; i < y.num_elements(); ++i) out[i] = scale * (py[i] - pt[i]);
    return Status::Ok();
  }
};

struct SigmoidCrossEntropyOp {
  static constexpr const char* kName = "sigmoid_cross_entropy";
  static constexpr OpText kDoc = {
      "Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1].",
      "L = 1/K sum max(x, 0) - x t + log(1 + e^-|x|),   K = the element count\n"
      "  = 1/K sum -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))",
      "dL/dx = (sigmoid(x) - t) / K\ndL/dt = -x / K"};
  static constexpr InputDoc kInputs[2] = {{"logits", "x, any shape; N may be open"},
                                          {"targets", "t, x's shape, each in [0, 1]"}};
  static constexpr bool kGrad[2] = {true, true};
  static constexpr bool kDifferentiable = true;
  static constexpr bool kClassIds = false;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return SameShapeRule(ctx, kInputs); }

  // The log-sigmoid form: exp() only sees -|x|, so neither large positive nor large negative
  // logits overflow, and log1p keeps precision where e^-|x| is tiny.
  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& t, const LossParams&, T* loss) {
    BF_RETURN_IF_ERROR(CheckTargets<T>(t));
    const T* px = x.data<T>();
    const T* pt = t.data<T>();
    Accumulator total = 0;  // Note [Float32 sums accumulate in double]
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      total += std::max(px[i], T(0)) - px[i] * pt[i] + std::log1p(std::exp(-std::abs(px[i])));
    }
    *loss = static_cast<T>(total / Divisor<Accumulator>(x.num_elements()));
    return Status::Ok();
  }
  template <typename T>
  static Status Grad(const Tensor& x, const Tensor& t, T dy, int wrt, const LossParams&, T* out) {
    const T* px = x.data<T>();
    const T* pt = t.data<T>();
    const T scale = dy / Divisor<T>(x.num_elements());
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      if (wrt == 1) {
        out[i] = -scale * px[i];
        continue;
      }
      const T e = std::exp(-std::abs(px[i]));  // sigmoid without overflow, as in unary.cc
      const T sigmoid = px[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      out[i] = scale * (sigmoid - pt[i]);
    }
    return Status::Ok();
  }
};

}  // namespace

void RegisterLossGates(GateRegistry& registry) {
  loss_internal::RegisterLoss<SquaredErrorOp>(registry);
  loss_internal::RegisterLoss<SigmoidCrossEntropyOp>(registry);
  loss_internal::RegisterClassLosses(registry);
}

}  // namespace backflow
