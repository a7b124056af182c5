#include "engine/gates/loss.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

struct LossParams {
  bool mean = false;    // squared_error: divide by the batch size
  double margin = 1.0;  // svm_hinge
};

LossParams ParseParams(const Attributes& attrs) {
  return {attrs.GetString("reduction", "sum") == "mean", attrs.GetFloat("margin", 1.0)};
}

// Shortest readable form for messages: "3.5", not std::to_string's "3.500000".
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

// Equal up to open dimensions, which match any size (the rule runs again on concrete shapes
// when a plan is compiled, and catches a mismatched batch there).
bool ShapesMatch(const Shape& a, const Shape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) != b.dim(i) && a.dim(i) != kBatchDim && b.dim(i) != kBatchDim) return false;
  }
  return true;
}

// Two operands of one shape: squared_error, sigmoid_cross_entropy.
StatusOr<Shape> SameShapeRule(const ShapeContext& ctx, const char* const names[2]) {
  if (!ShapesMatch(ctx.inputs[0], ctx.inputs[1])) {
    return ctx.Error(std::string(names[0]) + " and " + names[1] + " must have one shape, got " +
                     ctx.inputs[0].ToString() + " and " + ctx.inputs[1].ToString());
  }
  return Shape{};
}

// Scores [N, C] and labels [N]: softmax_cross_entropy, svm_hinge, accuracy.
StatusOr<Shape> ClassRule(const ShapeContext& ctx, const char* const names[2]) {
  const Shape& scores = ctx.inputs[0];
  const Shape& labels = ctx.inputs[1];
  if (scores.rank() != 2) {
    return ctx.Error(std::string(names[0]) + " must be [N, C], got " + scores.ToString());
  }
  if (scores.dim(1) < 1) {
    return ctx.Error("the class dimension of " + std::string(names[0]) +
                     " must be known and at least 1, got " + scores.ToString());
  }
  if (labels.rank() != 1 || !ShapesMatch(labels, Shape{scores.dim(0)})) {
    return ctx.Error(std::string(names[1]) + " must be " + Shape{scores.dim(0)}.ToString() +
                     " to match " + names[0] + " " + scores.ToString() + ", got " +
                     labels.ToString());
  }
  return Shape{};
}

// What a mean divides by: at least 1, so an empty batch gives 0 rather than 0/0.
template <typename T>
T Divisor(int64_t count) {
  return static_cast<T>(std::max<int64_t>(count, 1));
}

// Every label must be an integer class id in [0, classes); NaN fails every comparison.
template <typename T>
Status CheckLabels(const Tensor& labels, int64_t classes) {
  const T* l = labels.data<T>();
  for (int64_t i = 0; i < labels.num_elements(); ++i) {
    if (!(l[i] >= T(0) && l[i] < static_cast<T>(classes) && l[i] == std::floor(l[i]))) {
      return InvalidArgumentError("label " + Format(l[i]) + " at index " + std::to_string(i) +
                                  " is not a class id in [0, " + std::to_string(classes) + ")");
    }
  }
  return Status::Ok();
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

// log sum_j e^(x_j - m) over one row, m = max_j x_j (returned in *m): every exponent is <= 0,
// so nothing overflows, and the largest term is 1, so the sum cannot underflow to 0.
template <typename T>
T ShiftedLogSumExp(const T* x, int64_t c, T* m) {
  *m = *std::max_element(x, x + c);
  T sum = 0;
  for (int64_t j = 0; j < c; ++j) sum += std::exp(x[j] - *m);
  return std::log(sum);
}

// Each op: name, input names, attributes, shape rule, which inputs have a gradient, and
// Forward(a, b, params, &loss) / Grad(a, b, dy, wrt, params, out) on tensors of dtype T.
struct SquaredErrorOp {
  static constexpr const char* kName = "squared_error";
  static constexpr const char* kInputs[2] = {"y", "t"};
  static constexpr bool kGrad[2] = {true, true};
  static constexpr bool kDifferentiable = true;
  static std::vector<AttrSpec> Specs() { return {{"reduction", AttrType::kString}}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return SameShapeRule(ctx, kInputs); }

  template <typename T>
  static T BatchDivisor(const Tensor& y, const LossParams& p) {
    return p.mean && y.shape().rank() > 0 ? Divisor<T>(y.shape().dim(0)) : T(1);
  }
  template <typename T>
  static Status Forward(const Tensor& y, const Tensor& t, const LossParams& p, T* loss) {
    const T* py = y.data<T>();
    const T* pt = t.data<T>();
    T sum = 0;
    for (int64_t i = 0; i < y.num_elements(); ++i) sum += (py[i] - pt[i]) * (py[i] - pt[i]);
    *loss = sum / (T(2) * BatchDivisor<T>(y, p));
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

struct SoftmaxCrossEntropyOp {
  static constexpr const char* kName = "softmax_cross_entropy";
  static constexpr const char* kInputs[2] = {"logits", "labels"};
  static constexpr bool kGrad[2] = {true, false};
  static constexpr bool kDifferentiable = true;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& labels, const LossParams&, T* loss) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_RETURN_IF_ERROR(CheckLabels<T>(labels, c));
    const T* l = labels.data<T>();
    T total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      T m;
      const T lse = ShiftedLogSumExp(row, c, &m);
      total += lse - (row[static_cast<int64_t>(l[i])] - m);
    }
    *loss = total / Divisor<T>(n);
    return Status::Ok();
  }
  // The softmax is recomputed here rather than saved by the forward: it costs one exp per
  // logit, and keeps both kernels free of per-run state.
  template <typename T>
  static Status Grad(const Tensor& x, const Tensor& labels, T dy, int, const LossParams&, T* out) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_RETURN_IF_ERROR(CheckLabels<T>(labels, c));
    const T* l = labels.data<T>();
    const T scale = dy / Divisor<T>(n);
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      T m;
      const T lse = ShiftedLogSumExp(row, c, &m);
      const int64_t label = static_cast<int64_t>(l[i]);
      for (int64_t j = 0; j < c; ++j) {
        const T p = std::exp(row[j] - m - lse);
        out[i * c + j] = scale * (j == label ? p - T(1) : p);
      }
    }
    return Status::Ok();
  }
};

struct SvmHingeOp {
  static constexpr const char* kName = "svm_hinge";
  static constexpr const char* kInputs[2] = {"scores", "labels"};
  static constexpr bool kGrad[2] = {true, false};
  static constexpr bool kDifferentiable = true;
  static std::vector<AttrSpec> Specs() { return {{"margin", AttrType::kFloat}}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& s, const Tensor& labels, const LossParams& p, T* loss) {
    const int64_t n = s.shape().dim(0), c = s.shape().dim(1);
    BF_RETURN_IF_ERROR(CheckLabels<T>(labels, c));
    const T* l = labels.data<T>();
    const T margin = static_cast<T>(p.margin);
    T total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = s.data<T>() + i * c;
      const int64_t label = static_cast<int64_t>(l[i]);
      for (int64_t j = 0; j < c; ++j) {
        if (j != label) total += std::max(T(0), row[j] - row[label] + margin);
      }
    }
    *loss = total / Divisor<T>(n);
    return Status::Ok();
  }
  // At a kink (s_j - s_y + margin exactly 0) the subgradient 0 is taken, as max(0, .) is flat
  // from the left.
  template <typename T>
  static Status Grad(const Tensor& s, const Tensor& labels, T dy, int, const LossParams& p,
                     T* out) {
    const int64_t n = s.shape().dim(0), c = s.shape().dim(1);
    BF_RETURN_IF_ERROR(CheckLabels<T>(labels, c));
    const T* l = labels.data<T>();
    const T margin = static_cast<T>(p.margin);
    const T scale = dy / Divisor<T>(n);
    for (int64_t i = 0; i < n; ++i) {
      const T* row = s.data<T>() + i * c;
      const int64_t label = static_cast<int64_t>(l[i]);
      int64_t active = 0;
      for (int64_t j = 0; j < c; ++j) {
        const bool on = j != label && row[j] - row[label] + margin > T(0);
        out[i * c + j] = on ? scale : T(0);
        active += on ? 1 : 0;
      }
      out[i * c + label] = -static_cast<T>(active) * scale;
    }
    return Status::Ok();
  }
};

struct SigmoidCrossEntropyOp {
  static constexpr const char* kName = "sigmoid_cross_entropy";
  static constexpr const char* kInputs[2] = {"logits", "targets"};
  static constexpr bool kGrad[2] = {true, true};
  static constexpr bool kDifferentiable = true;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return SameShapeRule(ctx, kInputs); }

  // The log-sigmoid form: exp() only sees -|x|, so neither large positive nor large negative
  // logits overflow, and log1p keeps precision where e^-|x| is tiny.
  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& t, const LossParams&, T* loss) {
    BF_RETURN_IF_ERROR(CheckTargets<T>(t));
    const T* px = x.data<T>();
    const T* pt = t.data<T>();
    T total = 0;
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      total += std::max(px[i], T(0)) - px[i] * pt[i] + std::log1p(std::exp(-std::abs(px[i])));
    }
    *loss = total / Divisor<T>(x.num_elements());
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

struct AccuracyOp {
  static constexpr const char* kName = "accuracy";
  static constexpr const char* kInputs[2] = {"logits", "labels"};
  static constexpr bool kGrad[2] = {false, false};
  static constexpr bool kDifferentiable = false;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& labels, const LossParams&, T* loss) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_RETURN_IF_ERROR(CheckLabels<T>(labels, c));
    const T* l = labels.data<T>();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      // max_element returns the first of equal maxima: ties go to the lowest class id.
      const int64_t argmax = std::max_element(row, row + c) - row;
      correct += argmax == static_cast<int64_t>(l[i]) ? 1 : 0;
    }
    *loss = static_cast<T>(correct) / Divisor<T>(n);
    return Status::Ok();
  }
};

template <typename Op>
struct LossKernels {
  template <typename T>
  class Forward : public Kernel {
   public:
    explicit Forward(LossParams p) : p_(p) {}
    Status Run(KernelContext& ctx) const override {
      return Op::template Forward<T>(*ctx.inputs[0], *ctx.inputs[1], p_, ctx.output->data<T>());
    }

   private:
    LossParams p_;
  };

  // Inputs: the forward node's two inputs and dy (a scalar).
  template <typename T>
  class Grad : public Kernel {
   public:
    Grad(LossParams p, int wrt) : p_(p), wrt_(wrt) {}
    Status Run(KernelContext& ctx) const override {
      const T dy = ctx.inputs[2]->data<T>()[0];
      return Op::template Grad<T>(*ctx.inputs[0], *ctx.inputs[1], dy, wrt_, p_,
                                  ctx.output->data<T>());
    }

   private:
    LossParams p_;
    int wrt_;
  };
};

template <typename Op>
class LossGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override { return Op::Specs(); }
  bool differentiable() const override { return Op::kDifferentiable; }
  int64_t Flops(const FlopsContext& ctx) const override {
    return SaturatingMul(kLossFlopsPerElement, FlopsContext::Elements(ctx.inputs[0]));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(CheckParams(ctx));
    return Op::Rule(ctx);
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<LossKernels<Op>::template Forward>(ctx.dtype, ParseParams(ctx.attrs));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!Op::kDifferentiable) return Gate::Backward(ctx);
    for (int i = 0; i < 2; ++i) {
      if (!ctx.needs_grad(i)) continue;
      if (!Op::kGrad[i]) {
        return InvalidArgumentError("node '" + ctx.node().name + "' (" + Op::kName +
                                    "): " + Op::kInputs[i] +
                                    " have no gradient, but a gradient must flow to them");
      }
      Attributes attrs = ctx.node().attrs;
      attrs.Set("wrt", int64_t{i});
      BF_ASSIGN_OR_RETURN(ValueId grad,
                          ctx.Emit(std::string(Op::kName) + "_grad",
                                   {ctx.input(0), ctx.input(1), ctx.output_grad()}, attrs));
      ctx.SetGrad(i, grad);
    }
    return Status::Ok();
  }
};

// Internal: "<op>_grad", inputs (a, b, dy), attributes the forward node's plus wrt.
template <typename Op>
class LossGradGate : public Gate {
 public:
  Arity arity() const override { return {3, 3}; }
  std::vector<AttrSpec> attr_specs() const override {
    std::vector<AttrSpec> specs = Op::Specs();
    specs.push_back({"wrt", AttrType::kInt, true});
    return specs;
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const int64_t wrt = ctx.attrs.GetInt("wrt", 0);
    if (wrt < 0 || wrt > 1 || !Op::kGrad[wrt]) {
      return ctx.Error("wrt " + std::to_string(wrt) + " is not an input with a gradient");
    }
    if (ctx.inputs[2].rank() != 0) {
      return ctx.Error("dy must be a scalar, got " + ctx.inputs[2].ToString());
    }
    BF_RETURN_IF_ERROR(CheckParams(ctx));
    BF_RETURN_IF_ERROR(Op::Rule(ShapeContext{ctx.node, ctx.inputs.first(2), ctx.attrs}).status());
    return ctx.inputs[static_cast<size_t>(wrt)];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<LossKernels<Op>::template Grad>(
        ctx.dtype, ParseParams(ctx.attrs), static_cast<int>(ctx.attrs.GetInt("wrt", 0)));
  }
};

template <typename Op>
void RegisterLoss(GateRegistry& registry) {
  (void)registry.Register(Op::kName, std::make_unique<LossGate<Op>>());
  if constexpr (Op::kDifferentiable) {
    (void)registry.Register(std::string(Op::kName) + "_grad", std::make_unique<LossGradGate<Op>>());
  }
}

}  // namespace

void RegisterLossGates(GateRegistry& registry) {
  RegisterLoss<SquaredErrorOp>(registry);
  RegisterLoss<SoftmaxCrossEntropyOp>(registry);
  RegisterLoss<SvmHingeOp>(registry);
  RegisterLoss<SigmoidCrossEntropyOp>(registry);
  RegisterLoss<AccuracyOp>(registry);
}

}  // namespace backflow
