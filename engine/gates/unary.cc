#include "engine/gates/unary.h"

#include <cmath>
#include <string>
#include <string_view>

#include "engine/gates/eltwise_dnnl.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// How an op's backward is built: by its "<op>_grad" kernel, by handing dy straight through
// (the derivative is 1), or by applying the op itself to dy (linear ops, whose derivative is the
// op: neg and mul_scalar), which needs no gradient kernel at all.
enum class GradRule { kKernel, kPassThrough, kSelf };

// An op's entry in the op reference (docs/ops.md): the table in unary.h, one op at a time.
struct OpText {
  std::string_view summary;
  std::string_view forward;
  std::string_view gradient;
};

// Each op: its name, its entry in the op reference, its one float attribute p (kAttr, nullptr if
// none; its default, and that default and a description as the op reference shows them), the
// forward function Fwd(x, p), and for kKernel ops the local derivative D(x, y, p), y = Fwd(x, p).
struct NoAttr {
  static constexpr const char* kAttr = nullptr;
  static constexpr double kDefault = 0.0;
  static constexpr std::string_view kDefaultText = {};
  static constexpr std::string_view kAttrDoc = {};
};

// clang-format off
struct NegOp : NoAttr {
  static constexpr const char* kName = "neg";
  static constexpr OpText kDoc = {"Elementwise negation.", "y = -x", "dL/dx = -dy"};
  static constexpr GradRule kGrad = GradRule::kSelf;
  template <typename T> static T Fwd(T x, T) { return -x; }
};
struct ExpOp : NoAttr {
  static constexpr const char* kName = "exp";
  static constexpr OpText kDoc = {"Elementwise natural exponential.", "y = e^x", "dL/dx = dy * y"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return std::exp(x); }
  template <typename T> static T D(T, T y, T) { return y; }
  static EltwiseSpec Eltwise(float) {
    return {dnnl::algorithm::eltwise_exp, dnnl::algorithm::eltwise_exp_use_dst_for_bwd, true};
  }
};
struct LogOp : NoAttr {
  static constexpr const char* kName = "log";
  static constexpr OpText kDoc = {"Elementwise natural logarithm, for x > 0.", "y = ln(x)",
                                  "dL/dx = dy / x"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return std::log(x); }
  template <typename T> static T D(T x, T, T) { return T(1) / x; }
};
struct ReciprocalOp : NoAttr {
  static constexpr const char* kName = "reciprocal";
  static constexpr OpText kDoc = {"Elementwise reciprocal.", "y = 1 / x", "dL/dx = -dy * y^2"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return T(1) / x; }
  template <typename T> static T D(T, T y, T) { return -y * y; }
};
struct AddScalarOp {
  static constexpr const char* kName = "add_scalar";
  static constexpr OpText kDoc = {"Adds the constant c to every element.", "y = c + x",
                                  "dL/dx = dy"};
  static constexpr const char* kAttr = "c";
  static constexpr double kDefault = 0.0;
  static constexpr std::string_view kDefaultText = "0";
  static constexpr std::string_view kAttrDoc = "the constant added";
  static constexpr GradRule kGrad = GradRule::kPassThrough;
  template <typename T> static T Fwd(T x, T c) { return c + x; }
};
struct MulScalarOp {
  static constexpr const char* kName = "mul_scalar";
  static constexpr OpText kDoc = {"Multiplies every element by the constant a.", "y = a * x",
                                  "dL/dx = a * dy"};
  static constexpr const char* kAttr = "a";
  static constexpr double kDefault = 1.0;
  static constexpr std::string_view kDefaultText = "1";
  static constexpr std::string_view kAttrDoc = "the factor";
  static constexpr GradRule kGrad = GradRule::kSelf;
  template <typename T> static T Fwd(T x, T a) { return a * x; }
};
struct SquareOp : NoAttr {
  static constexpr const char* kName = "square";
  static constexpr OpText kDoc = {"Elementwise square.", "y = x^2", "dL/dx = dy * 2x"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return x * x; }
  template <typename T> static T D(T x, T, T) { return T(2) * x; }
};
struct SqrtOp : NoAttr {
  static constexpr const char* kName = "sqrt";
  static constexpr OpText kDoc = {"Elementwise square root, for x >= 0.", "y = sqrt(x)",
                                  "dL/dx = dy * 0.5 / y"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return std::sqrt(x); }
  template <typename T> static T D(T, T y, T) { return T(0.5) / y; }
};
struct SigmoidOp : NoAttr {
  static constexpr const char* kName = "sigmoid";
  static constexpr OpText kDoc = {"Elementwise logistic sigmoid.", "y = 1 / (1 + e^-x)",
                                  "dL/dx = dy * y * (1 - y)"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  // exp() only ever sees a non-positive argument, so it cannot overflow for large |x|.
  template <typename T> static T Fwd(T x, T) {
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
  template <typename T> static T D(T, T y, T) { return y * (T(1) - y); }
  static EltwiseSpec Eltwise(float) {
    return {dnnl::algorithm::eltwise_logistic, dnnl::algorithm::eltwise_logistic_use_dst_for_bwd,
            true};
  }
};
struct TanhOp : NoAttr {
  static constexpr const char* kName = "tanh";
  static constexpr OpText kDoc = {"Elementwise hyperbolic tangent.", "y = tanh(x)",
                                  "dL/dx = dy * (1 - y^2)"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return std::tanh(x); }
  template <typename T> static T D(T, T y, T) { return T(1) - y * y; }
  static constexpr bool kZeroAtZero = true;
  static EltwiseSpec Eltwise(float) {
    return {dnnl::algorithm::eltwise_tanh, dnnl::algorithm::eltwise_tanh_use_dst_for_bwd, true};
  }
};
struct ErfOp : NoAttr {
  static constexpr const char* kName = "erf";
  static constexpr OpText kDoc = {"Elementwise Gauss error function.",
                                  "y = erf(x) = 2/sqrt(pi) * integral from 0 to x of e^(-t^2) dt",
                                  "dL/dx = dy * 2/sqrt(pi) * e^(-x^2)"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return std::erf(x); }
  template <typename T> static T D(T x, T, T) {
    return T(1.1283791670955126) * std::exp(-x * x);  // 2 / sqrt(pi)
  }
};
struct ReluOp : NoAttr {
  static constexpr const char* kName = "relu";
  static constexpr OpText kDoc = {"Rectified linear unit.", "y = max(x, 0)",
                                  "dL/dx = dy * 1(x > 0)"};
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T) { return x > T(0) ? x : T(0); }
  template <typename T> static T D(T x, T, T) { return x > T(0) ? T(1) : T(0); }
  static constexpr bool kZeroAtZero = true;
  static EltwiseSpec Eltwise(float) {
    return {dnnl::algorithm::eltwise_relu, dnnl::algorithm::eltwise_relu, false};
  }
};
struct LeakyReluOp {
  static constexpr const char* kName = "leaky_relu";
  static constexpr OpText kDoc = {"Leaky rectified linear unit: slope alpha below zero.",
                                  "y = x if x > 0, else alpha * x",
                                  "dL/dx = dy * (1 if x > 0, else alpha)"};
  static constexpr const char* kAttr = "alpha";
  static constexpr double kDefault = 0.01;
  static constexpr std::string_view kDefaultText = "0.01";
  static constexpr std::string_view kAttrDoc = "the slope for x <= 0";
  static constexpr GradRule kGrad = GradRule::kKernel;
  template <typename T> static T Fwd(T x, T alpha) { return x > T(0) ? x : alpha * x; }
  template <typename T> static T D(T x, T, T alpha) { return x > T(0) ? T(1) : alpha; }
  static constexpr bool kZeroAtZero = true;
  static EltwiseSpec Eltwise(float alpha) {
    return {dnnl::algorithm::eltwise_relu, dnnl::algorithm::eltwise_relu, false, alpha};
  }
};
// clang-format on

// Ops with a oneDNN eltwise algorithm run on it in float32 (engine/gates/eltwise_dnnl.h); those
// with f(0) = 0 also take blocked inputs.
template <typename Op>
constexpr bool kHasEltwise = requires { Op::Eltwise(0.f); };
template <typename Op>
constexpr bool kTakesLayouts = requires { Op::kZeroAtZero; };

template <typename Op>
std::vector<AttrSpec> UnaryAttrSpecs() {
  if constexpr (Op::kAttr != nullptr) {
    return {{.name = Op::kAttr,
             .type = AttrType::kFloat,
             .default_value = Op::kDefaultText,
             .description = Op::kAttrDoc}};
  }
  return {};
}

template <typename Op>
double UnaryParam(const Attributes& attrs) {
  if constexpr (Op::kAttr != nullptr) return attrs.GetFloat(Op::kAttr, Op::kDefault);
  return Op::kDefault;
}

template <typename Op>
struct ForwardKernel {
  template <typename T>
  class K : public Kernel {
   public:
    bool overwrites_output() const override { return true; }
    explicit K(double p) : p_(static_cast<T>(p)) {}
    Status Run(KernelContext& ctx) const override {
      const T* x = ctx.inputs[0]->data<T>();
      T* y = ctx.output->data<T>();
      const int64_t n = ctx.output->num_elements();
      for (int64_t i = 0; i < n; ++i) y[i] = Op::Fwd(x[i], p_);
      return Status::Ok();
    }

   private:
    T p_;
  };
};

// dx = dy * D(x, y, p). Inputs: x, y, dy.
template <typename Op>
struct GradKernel {
  template <typename T>
  class K : public Kernel {
   public:
    bool overwrites_output() const override { return true; }
    explicit K(double p) : p_(static_cast<T>(p)) {}
    Status Run(KernelContext& ctx) const override {
      const T* x = ctx.inputs[0]->data<T>();
      const T* y = ctx.inputs[1]->data<T>();
      const T* dy = ctx.inputs[2]->data<T>();
      T* dx = ctx.output->data<T>();
      const int64_t n = ctx.output->num_elements();
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * Op::D(x[i], y[i], p_);
      return Status::Ok();
    }

   private:
    T p_;
  };
};

// Internal: "<op>_grad", inputs x, y, dy (one shape), attributes those of the forward node.
template <typename Op>
class UnaryGradGate : public Gate {
 public:
  Arity arity() const override { return {3, 3}; }
  std::vector<AttrSpec> attr_specs() const override { return UnaryAttrSpecs<Op>(); }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(ctx.SameShapes("x, y and dy"));
    return ctx.inputs[0];
  }
  bool accepts_layout(int input) const override { return kTakesLayouts<Op>; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    if constexpr (kHasEltwise<Op>) {
      if (UseDnnlEltwise(ctx)) {
        return CompileDnnlEltwiseGrad(ctx, Op::Eltwise(static_cast<float>(UnaryParam<Op>(ctx.attrs))));
      }
    }
    return MakeTypedKernel<GradKernel<Op>::template K>(ctx.dtype, UnaryParam<Op>(ctx.attrs));
  }
};

template <typename Op>
class UnaryGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override { return UnaryAttrSpecs<Op>(); }
  OpDoc doc() const override {
    return {.summary = Op::kDoc.summary,
            .inputs = {{"x", "any shape"}},
            .output = "x's shape",
            .forward = Op::kDoc.forward,
            .gradient = Op::kDoc.gradient};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  bool accepts_layout(int input) const override { return kTakesLayouts<Op>; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    if constexpr (kHasEltwise<Op>) {
      if (UseDnnlEltwise(ctx)) {
        return CompileDnnlEltwise(ctx, Op::Eltwise(static_cast<float>(UnaryParam<Op>(ctx.attrs))));
      }
    }
    return MakeTypedKernel<ForwardKernel<Op>::template K>(ctx.dtype, UnaryParam<Op>(ctx.attrs));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    ValueId grad = ctx.output_grad();
    if constexpr (Op::kGrad == GradRule::kSelf) {
      BF_ASSIGN_OR_RETURN(grad, ctx.Emit(Op::kName, {grad}, ctx.node().attrs));
    } else if constexpr (Op::kGrad == GradRule::kKernel) {
      BF_ASSIGN_OR_RETURN(grad, ctx.Emit(std::string(Op::kName) + "_grad",
                                         {ctx.input(0), ctx.output(), grad}, ctx.node().attrs));
    }
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }
};

template <typename Op>
void RegisterUnary(GateRegistry& registry) {
  (void)registry.Register(Op::kName, std::make_unique<UnaryGate<Op>>());
  if constexpr (Op::kGrad == GradRule::kKernel) {
    (void)registry.Register(std::string(Op::kName) + "_grad",
                            std::make_unique<UnaryGradGate<Op>>());
  }
}

}  // namespace

void RegisterUnaryGates(GateRegistry& registry) {
  RegisterUnary<NegOp>(registry);
  RegisterUnary<ExpOp>(registry);
  RegisterUnary<LogOp>(registry);
  RegisterUnary<ReciprocalOp>(registry);
  RegisterUnary<AddScalarOp>(registry);
  RegisterUnary<MulScalarOp>(registry);
  RegisterUnary<SquareOp>(registry);
  RegisterUnary<SqrtOp>(registry);
  RegisterUnary<SigmoidOp>(registry);
  RegisterUnary<TanhOp>(registry);
  RegisterUnary<ErfOp>(registry);
  RegisterUnary<ReluOp>(registry);
  RegisterUnary<LeakyReluOp>(registry);
}

}  // namespace backflow
