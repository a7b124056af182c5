#include "engine/gates/activation.h"

#include <cmath>
#include <string>

#include "engine/gates/eltwise_dnnl.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

constexpr double kSqrtHalf = 0.70710678118654752440;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluTanhCubic = 0.044715;

// The "approximate" attribute: false for the exact erf form, true for the tanh form.
StatusOr<bool> GeluUsesTanh(const Attributes& attrs) {
  const std::string form = attrs.GetString("approximate", "none");
  if (form == "none") return false;
  if (form == "tanh") return true;
  return InvalidArgumentError("approximate must be \"none\" or \"tanh\", got \"" + form + "\"");
}

std::vector<AttrSpec> GeluAttrSpecs() {
  return {{.name = "approximate",
           .type = AttrType::kString,
           .default_value = "none",
           .description = "\"none\": the exact erf form; \"tanh\": the tanh approximation"}};
}

EltwiseSpec GeluEltwise(bool tanh_form) {
  const dnnl::algorithm a =
      tanh_form ? dnnl::algorithm::eltwise_gelu_tanh : dnnl::algorithm::eltwise_gelu_erf;
  return {a, a, false};
}

template <typename T>
T GeluForward(T x, bool tanh_form) {
  if (tanh_form) {
    const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(u));
  }
  return T(0.5) * x * (T(1) + std::erf(x * T(kSqrtHalf)));
}

template <typename T>
T GeluDerivative(T x, bool tanh_form) {
  if (tanh_form) {
    const T t = std::tanh(T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x));
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * x * x);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
  }
  return T(0.5) * (T(1) + std::erf(x * T(kSqrtHalf))) + x * T(kInvSqrt2Pi) * std::exp(-x * x / 2);
}

template <typename T>
class GeluKernel : public Kernel {
 public:
  explicit GeluKernel(bool tanh_form) : tanh_form_(tanh_form) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    T* y = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    for (int64_t i = 0; i < n; ++i) y[i] = GeluForward(x[i], tanh_form_);
    return Status::Ok();
  }

 private:
  bool tanh_form_;
};

// dx = dy * gelu'(x). Inputs: x, y (unused), dy.
template <typename T>
class GeluGradKernel : public Kernel {
 public:
  explicit GeluGradKernel(bool tanh_form) : tanh_form_(tanh_form) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    const T* dy = ctx.inputs[2]->data<T>();
    T* dx = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * GeluDerivative(x[i], tanh_form_);
    return Status::Ok();
  }

 private:
  bool tanh_form_;
};

class GeluGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override { return GeluAttrSpecs(); }
  OpDoc doc() const override {
    return {.summary = "Gaussian error linear unit, as torch.nn.functional.gelu.",
            .inputs = {{"x", "any shape"}},
            .output = "x's shape",
            .forward = "approximate = \"none\": y = 0.5 x (1 + erf(x / sqrt(2)))\n"
                       "approximate = \"tanh\": y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
            .gradient = "\"none\": dL/dx = dy * (0.5 (1 + erf(x / sqrt(2))) + x e^(-x^2/2) / "
                        "sqrt(2 pi))\n"
                        "\"tanh\": with u = sqrt(2/pi) (x + 0.044715 x^3),\n"
                        "  dL/dx = dy * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) "
                        "(1 + 0.134145 x^2))"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    StatusOr<bool> tanh_form = GeluUsesTanh(ctx.attrs);
    if (!tanh_form.ok()) return ctx.Error(tanh_form.status().message());
    return ctx.inputs[0];
  }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  bool accepts_layout(int) const override { return true; }  // gelu(0) = 0
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const bool tanh_form, GeluUsesTanh(ctx.attrs));
    if (UseDnnlEltwise(ctx)) return CompileDnnlEltwise(ctx, GeluEltwise(tanh_form));
    return MakeTypedKernel<GeluKernel>(ctx.dtype, tanh_form);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(const ValueId grad,
                        ctx.Emit("gelu_grad", {ctx.input(0), ctx.output(), ctx.output_grad()},
                                 ctx.node().attrs));
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }
};

// Internal: "gelu_grad", inputs x, y, dy (one shape), attributes those of the forward node.
class GeluGradGate : public Gate {
 public:
  Arity arity() const override { return {3, 3}; }
  std::vector<AttrSpec> attr_specs() const override { return GeluAttrSpecs(); }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(ctx.SameShapes("x, y and dy"));
    StatusOr<bool> tanh_form = GeluUsesTanh(ctx.attrs);
    if (!tanh_form.ok()) return ctx.Error(tanh_form.status().message());
    return ctx.inputs[0];
  }
  bool accepts_layout(int) const override { return true; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const bool tanh_form, GeluUsesTanh(ctx.attrs));
    if (UseDnnlEltwise(ctx)) return CompileDnnlEltwiseGrad(ctx, GeluEltwise(tanh_form));
    return MakeTypedKernel<GeluGradKernel>(ctx.dtype, tanh_form);
  }
};

}  // namespace

void RegisterActivationGates(GateRegistry& registry) {
  (void)registry.Register("gelu", std::make_unique<GeluGate>());
  (void)registry.Register("gelu_grad", std::make_unique<GeluGradGate>());
}

}  // namespace backflow
