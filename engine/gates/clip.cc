#include "engine/gates/clip.h"

#include <limits>
#include <string>

#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

struct Bounds {
  double lo;
  double hi;
};

// The bounds of a clip node, or why they are not valid.
StatusOr<Bounds> ClipBounds(const Attributes& attrs) {
  const double inf = std::numeric_limits<double>::infinity();
  const Bounds b{attrs.GetFloat("min", -inf), attrs.GetFloat("max", inf)};
  // Absent and infinite are one thing (an absent bound means its default), so "at least one
  // bound" is "at least one finite bound".
  if (b.lo == -inf && b.hi == inf) {
    return InvalidArgumentError("clip needs a finite min, max or both");
  }
  if (!(b.lo <= b.hi)) {
    return InvalidArgumentError("clip needs min <= max, got min " + std::to_string(b.lo) +
                                ", max " + std::to_string(b.hi));
  }
  return b;
}

std::vector<AttrSpec> ClipAttrSpecs() {
  return {{.name = "min",
           .type = AttrType::kFloat,
           .default_value = "-inf",
           .description = "the lower bound (min or max must be finite)"},
          {.name = "max",
           .type = AttrType::kFloat,
           .default_value = "+inf",
           .description = "the upper bound (min or max must be finite)"}};
}

template <typename T>
class ClipKernel : public Kernel {
 public:
  explicit ClipKernel(Bounds b) : lo_(static_cast<T>(b.lo)), hi_(static_cast<T>(b.hi)) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    T* y = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] < lo_ ? lo_ : (x[i] > hi_ ? hi_ : x[i]);
    return Status::Ok();
  }

 private:
  T lo_;
  T hi_;
};

// dx = dy where lo <= x <= hi, else 0. Inputs: x, dy.
template <typename T>
class ClipGradKernel : public Kernel {
 public:
  explicit ClipGradKernel(Bounds b) : lo_(static_cast<T>(b.lo)), hi_(static_cast<T>(b.hi)) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    const T* dy = ctx.inputs[1]->data<T>();
    T* dx = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    for (int64_t i = 0; i < n; ++i) dx[i] = (x[i] >= lo_ && x[i] <= hi_) ? dy[i] : T(0);
    return Status::Ok();
  }

 private:
  T lo_;
  T hi_;
};

class ClipGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override { return ClipAttrSpecs(); }
  OpDoc doc() const override {
    return {.summary = "Clamps every element into [min, max], as torch.clamp.",
            .inputs = {{"x", "any shape"}},
            .output = "x's shape",
            .forward = "y = min(max(x, min), max)",
            .gradient = "dL/dx = dy where min <= x <= max, else 0 (the bounds pass the gradient, "
                        "as in torch.clamp)"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    StatusOr<Bounds> b = ClipBounds(ctx.attrs);
    if (!b.ok()) return ctx.Error(b.status().message());
    return ctx.inputs[0];
  }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const Bounds b, ClipBounds(ctx.attrs));
    return MakeTypedKernel<ClipKernel>(ctx.dtype, b);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(const ValueId grad, ctx.Emit("clip_grad", {ctx.input(0), ctx.output_grad()},
                                                     ctx.node().attrs));
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }
};

// Internal: "clip_grad", inputs x, dy (one shape), attributes those of the forward node.
class ClipGradGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override { return ClipAttrSpecs(); }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(ctx.SameShapes("x and dy"));
    StatusOr<Bounds> b = ClipBounds(ctx.attrs);
    if (!b.ok()) return ctx.Error(b.status().message());
    return ctx.inputs[0];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const Bounds b, ClipBounds(ctx.attrs));
    return MakeTypedKernel<ClipGradKernel>(ctx.dtype, b);
  }
};

}  // namespace

void RegisterClipGates(GateRegistry& registry) {
  (void)registry.Register("clip", std::make_unique<ClipGate>());
  (void)registry.Register("clip_grad", std::make_unique<ClipGradGate>());
}

}  // namespace backflow
