// Shared between loss.cc (squared_error, sigmoid_cross_entropy) and loss_class.cc (the losses
// over class scores: softmax_cross_entropy, svm_hinge, accuracy): the parameters, the kernels and
// the gate templates every loss is an instance of. Not a public header: other gates use
// engine/gates/loss.h.
//
// A loss is a struct Op with
//   kName, kDoc (its op reference entry), kInputs (its two inputs, named and described),
//   kGrad[2] (which inputs have a gradient), kDifferentiable, Specs() (its attributes),
//   Rule(ctx) (its shape rule), Forward<T>(a, b, params, &loss), and, if differentiable,
//   Grad<T>(a, b, dy, wrt, params, out).
#ifndef BACKFLOW_ENGINE_GATES_LOSS_INTERNAL_H_
#define BACKFLOW_ENGINE_GATES_LOSS_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/core/status.h"
#include "engine/gates/accumulate.h"
#include "engine/gates/loss.h"
#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"

namespace backflow::loss_internal {

struct LossParams {
  bool mean = false;    // squared_error: divide by the batch size
  double margin = 1.0;  // svm_hinge
};

LossParams ParseParams(const Attributes& attrs);

// Fails, naming the node, on a reduction other than "sum" or "mean" or a margin that is not
// finite.
Status CheckParams(const ShapeContext& ctx);

// Shortest readable form for messages: "3.5", not std::to_string's "3.500000".
std::string Format(double v);

// Equal up to open dimensions, which match any size (the rule runs again on concrete shapes
// when a plan is compiled, and catches a mismatched batch there).
bool ShapesMatch(const Shape& a, const Shape& b);

// What a mean divides by: at least 1, so an empty batch gives 0 rather than 0/0.
template <typename T>
T Divisor(int64_t count) {
  return static_cast<T>(std::max<int64_t>(count, 1));
}

// An op's entry in the op reference (docs/ops.md): the table in loss.h, one op at a time.
struct OpText {
  std::string_view summary;
  std::string_view forward;
  std::string_view gradient;
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
  // Class labels may be integer ids.
  bool accepts_integer(int input) const override { return Op::kClassIds && input == 1; }
  OpDoc doc() const override {
    return {.summary = Op::kDoc.summary,
            .inputs = {Op::kInputs[0], Op::kInputs[1]},
            .output = "a scalar, shape []",
            .forward = Op::kDoc.forward,
            .gradient = Op::kDoc.gradient};
  }
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
                                    "): " + std::string(Op::kInputs[i].name) +
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
  bool accepts_integer(int input) const override { return Op::kClassIds && input == 1; }
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

// softmax_cross_entropy, svm_hinge and accuracy (loss_class.cc).
void RegisterClassLosses(GateRegistry& registry);

}  // namespace backflow::loss_internal

#endif  // BACKFLOW_ENGINE_GATES_LOSS_INTERNAL_H_
