#include "engine/gates/gradient_ops.h"

#include <algorithm>
#include <vector>

#include "engine/gates/accumulate.h"
#include "engine/gates/broadcast.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

template <typename T>
class AddNKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    T* y = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    const T* first = ctx.inputs[0]->data<T>();
    std::copy(first, first + n, y);
    for (size_t k = 1; k < ctx.inputs.size(); ++k) {
      const T* x = ctx.inputs[k]->data<T>();
      for (int64_t i = 0; i < n; ++i) y[i] += x[i];
    }
    return Status::Ok();
  }
};

class AddNGate : public Gate {
 public:
  Arity arity() const override { return {1, Arity::kVariadic}; }
  OpDoc doc() const override {
    return {.summary = "Elementwise sum of any number of tensors of one shape (no broadcasting).",
            .inputs = {{"x1, ..., xn", "one shape"}},
            .output = "that shape",
            .forward = "y = x1 + x2 + ... + xn",
            .gradient = "dL/dxi = dy"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    for (size_t i = 1; i < ctx.inputs.size(); ++i) {
      if (ctx.inputs[i] != ctx.inputs[0]) {
        return ctx.Error("input " + std::to_string(i) + " has shape " +
                         ctx.inputs[i].ToString() + ", expected " + ctx.inputs[0].ToString());
      }
    }
    return ctx.inputs[0];
  }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<AddNKernel>(ctx.dtype);
  }
  Status Backward(BackwardContext& ctx) const override {
    for (int i = 0; i < static_cast<int>(ctx.node().inputs.size()); ++i) {
      if (ctx.needs_grad(i)) ctx.SetGrad(i, ctx.output_grad());
    }
    return Status::Ok();
  }
};

template <typename T>
class FillKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  explicit FillKernel(double value) : value_(static_cast<T>(value)) {}
  Status Run(KernelContext& ctx) const override {
    T* y = ctx.output->data<T>();
    std::fill(y, y + ctx.output->num_elements(), value_);
    return Status::Ok();
  }

 private:
  T value_;
};

class FillLikeGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override { return {{"value", AttrType::kFloat}}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<FillKernel>(ctx.dtype, ctx.attrs.GetFloat("value", 1.0));
  }
};

template <typename T>
class ReduceLikeKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) const override {
    const Tensor& g = *ctx.inputs[0];
    const T* pg = g.data<T>();
    // Note [Float32 sums accumulate in double] in engine/gates/accumulate.h.
    std::vector<Accumulator> sums(static_cast<size_t>(ctx.output->num_elements()), 0);
    ForEachBroadcast(g.shape(), g.shape(), ctx.output->shape(),
                     [&](int64_t i, int64_t, int64_t iy) { sums[iy] += pg[i]; });
    std::copy(sums.begin(), sums.end(), ctx.output->data<T>());
    return Status::Ok();
  }
};

class ReduceLikeGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    Shape joint;
    if (!BroadcastShapes(ctx.inputs[1], ctx.inputs[0], &joint) ||
        joint.rank() != ctx.inputs[0].rank()) {
      return ctx.Error("cannot sum " + ctx.inputs[0].ToString() + " down to " +
                       ctx.inputs[1].ToString());
    }
    return ctx.inputs[1];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<ReduceLikeKernel>(ctx.dtype);
  }
};

}  // namespace

StatusOr<ValueId> SumToShapeOf(BackwardContext& ctx, ValueId grad, ValueId ref) {
  if (ctx.graph().value(grad).shape == ctx.graph().value(ref).shape) return grad;
  return ctx.Emit("reduce_like", {grad, ref});
}

void RegisterGradientGates(GateRegistry& registry) {
  (void)registry.Register("add_n", std::make_unique<AddNGate>());
  (void)registry.Register("fill_like", std::make_unique<FillLikeGate>());
  (void)registry.Register("reduce_like", std::make_unique<ReduceLikeGate>());
}

}  // namespace backflow
