#include "engine/gates/reduce.h"

#include <algorithm>
#include <string>
#include <vector>

#include "engine/gates/accumulate.h"
#include "engine/gates/batch_rows.h"
#include "engine/gates/broadcast.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// A reduction's attributes, checked against the rank of the operand they reduce.
struct ReduceSpec {
  std::vector<bool> reduced;  // one flag per operand dimension
  bool keepdims = false;
};

StatusOr<ReduceSpec> ParseReduce(const ShapeContext& ctx, int rank) {
  ReduceSpec spec{std::vector<bool>(static_cast<size_t>(rank), false), false};
  const int64_t keepdims = ctx.attrs.GetInt("keepdims", 0);
  if (keepdims != 0 && keepdims != 1) {
    return ctx.Error("keepdims must be 0 or 1, got " + std::to_string(keepdims));
  }
  spec.keepdims = keepdims == 1;
  const std::vector<int64_t> axes = ctx.attrs.GetInts("axes");
  if (axes.empty()) {
    std::fill(spec.reduced.begin(), spec.reduced.end(), true);
    return spec;
  }
  for (int64_t axis : axes) {
    const int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                       std::to_string(rank));
    }
    if (spec.reduced[static_cast<size_t>(a)]) {
      return ctx.Error("axis " + std::to_string(axis) + " (dimension " + std::to_string(a) +
                       ") is listed twice");
    }
    spec.reduced[static_cast<size_t>(a)] = true;
  }
  return spec;
}

// `in` with the reduced dimensions set to 1 (keepdims) or dropped. Open dimensions that are not
// reduced stay open.
Shape ReducedShape(const Shape& in, const std::vector<bool>& reduced, bool keepdims) {
  std::vector<int64_t> dims;
  for (int i = 0; i < in.rank(); ++i) {
    if (!reduced[static_cast<size_t>(i)]) {
      dims.push_back(in.dim(i));
    } else if (keepdims) {
      dims.push_back(1);
    }
  }
  return Shape(std::move(dims));
}

// How many elements of a fully defined `in` are reduced into each output element.
int64_t ReducedCount(const Shape& in, const std::vector<bool>& reduced) {
  int64_t count = 1;
  for (int i = 0; i < in.rank(); ++i) {
    if (reduced[static_cast<size_t>(i)]) count *= in.dim(i);
  }
  return count;
}

std::vector<int64_t> AxesOf(const std::vector<bool>& reduced) {
  std::vector<int64_t> axes;
  for (size_t i = 0; i < reduced.size(); ++i) {
    if (reduced[i]) axes.push_back(static_cast<int64_t>(i));
  }
  return axes;
}

// Equal up to open dimensions, which match any size.
bool Compatible(const Shape& a, const Shape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) != b.dim(i) && a.dim(i) != kBatchDim && b.dim(i) != kBatchDim) return false;
  }
  return true;
}

// y[j] = sum (or mean) of the x[i] that map to j. The output is laid out like `kept` (x's shape
// with reduced dimensions of size 1) whatever keepdims says, so ForEachBroadcast yields, for
// every x element in row-major order, the offset of its output element.
template <typename T>
class ReduceKernel : public Kernel {
 public:
  ReduceKernel(Shape kept, int64_t count, bool mean)
      : kept_(std::move(kept)), count_(count), mean_(mean) {}
  Status Run(KernelContext& ctx) const override {
    const Tensor& x = *ctx.inputs[0];
    const T* px = x.data<T>();
    const int64_t n = ctx.output->num_elements();
    // Note [Float32 sums accumulate in double] in engine/gates/accumulate.h.
    std::vector<Accumulator> sums(static_cast<size_t>(n), 0);
    ForEachBroadcast(x.shape(), x.shape(), kept_,
                     [&](int64_t i, int64_t, int64_t iy) { sums[iy] += px[i]; });
    if (mean_) {
      for (Accumulator& s : sums) s /= static_cast<Accumulator>(count_);
    }
    std::copy(sums.begin(), sums.end(), ctx.output->data<T>());
    return Status::Ok();
  }

 private:
  Shape kept_;
  int64_t count_;
  bool mean_;
};

// dx[i] = dy[j] / divisor, where j is the output element x[i] was reduced into.
// Inputs: dy, x.
template <typename T>
class ExpandLikeKernel : public Kernel {
 public:
  ExpandLikeKernel(Shape kept, int64_t divisor) : kept_(std::move(kept)), divisor_(divisor) {}
  Status Run(KernelContext& ctx) const override {
    const T* dy = ctx.inputs[0]->data<T>();
    T* dx = ctx.output->data<T>();
    const T divisor = static_cast<T>(divisor_);
    const Shape& x = ctx.output->shape();
    ForEachBroadcast(x, x, kept_,
                     [&](int64_t i, int64_t, int64_t iy) { dx[i] = dy[iy] / divisor; });
    return Status::Ok();
  }

 private:
  Shape kept_;
  int64_t divisor_;
};

// The op reference's entries for sum and mean: the table in reduce.h.
OpDoc ReduceDoc(bool mean) {
  if (!mean) {
    return {.summary = "Sum over the given axes.",
            .inputs = {{"x", "any shape; N may be open, and may be reduced"}},
            .output = "x's shape with the reduced axes dropped (keepdims 0) or of size 1",
            .forward = "y = sum of x over axes",
            .gradient = "dL/dx = dy broadcast back over axes"};
  }
  return {.summary = "Mean over the given axes.",
          .inputs = {{"x", "any shape; N may be open, and may be reduced"}},
          .output = "x's shape with the reduced axes dropped (keepdims 0) or of size 1",
          .forward =
              "y = (sum of x over axes) / count\n"
              "count = the number of elements reduced into each y element",
          .gradient = "dL/dx = dy broadcast back over axes / count"};
}

class ReduceGate : public Gate {
 public:
  explicit ReduceGate(bool mean) : mean_(mean) {}
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "axes",
             .type = AttrType::kInts,
             .default_value = "[]",
             .description = "the axes to reduce, negative counting from the end; empty: all"},
            {.name = "keepdims",
             .type = AttrType::kInt,
             .default_value = "0",
             .description = "1 keeps each reduced axis with size 1, 0 drops it"}};
  }
  OpDoc doc() const override { return ReduceDoc(mean_); }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(ReduceSpec spec, ParseReduce(ctx, ctx.inputs[0].rank()));
    return ReducedShape(ctx.inputs[0], spec.reduced, spec.keepdims);
  }
  // Reducing later axes only, output row r reduces row r of x; no axes means all of them.
  Rows BatchRows(const RowsContext& ctx) const override {
    const std::vector<int64_t> axes = ctx.attrs.GetInts("axes");
    const int64_t rank = ctx.input_shapes[0].rank();
    bool keeps_rows = !axes.empty();
    for (int64_t a : axes) keeps_rows = keeps_rows && (a < 0 ? a + rank : a) != 0;
    return keeps_rows ? RowsOfInput(ctx, 0) : Gate::BatchRows(ctx);
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    BF_ASSIGN_OR_RETURN(ReduceSpec spec,
                        ParseReduce(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, x.rank()));
    return MakeTypedKernel<ReduceKernel>(ctx.dtype, ReducedShape(x, spec.reduced, true),
                                         ReducedCount(x, spec.reduced), mean_);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    const Node& node = ctx.node();
    const Shape& x = ctx.input_shape(0);
    BF_ASSIGN_OR_RETURN(ReduceSpec spec,
                        ParseReduce(ShapeContext{node.name, {&x, 1}, node.attrs}, x.rank()));
    BF_ASSIGN_OR_RETURN(ValueId grad,
                        ctx.Emit("expand_like", {ctx.output_grad(), ctx.input(0)},
                                 Attributes{{"axes", AxesOf(spec.reduced)},
                                            {"keepdims", int64_t{spec.keepdims ? 1 : 0}},
                                            {"mean", int64_t{mean_ ? 1 : 0}}}));
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }

 private:
  bool mean_;
};

// Internal: dy broadcast back to the shape of x over the axes a sum or mean reduced; with
// mean = 1 also divided by the number of elements each output element averaged.
class ExpandLikeGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {
        {"axes", AttrType::kInts, true}, {"keepdims", AttrType::kInt}, {"mean", AttrType::kInt}};
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const Shape& x = ctx.inputs[1];
    BF_ASSIGN_OR_RETURN(ReduceSpec spec, ParseReduce(ctx, x.rank()));
    const Shape expected = ReducedShape(x, spec.reduced, spec.keepdims);
    if (!Compatible(ctx.inputs[0], expected)) {
      return ctx.Error("dy has shape " + ctx.inputs[0].ToString() + ", but reducing " +
                       x.ToString() + " gives " + expected.ToString());
    }
    return x;
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Shape& x = ctx.inputs[1];
    BF_ASSIGN_OR_RETURN(ReduceSpec spec,
                        ParseReduce(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, x.rank()));
    const bool mean = ctx.attrs.GetInt("mean", 0) != 0;
    return MakeTypedKernel<ExpandLikeKernel>(ctx.dtype, ReducedShape(x, spec.reduced, true),
                                             mean ? ReducedCount(x, spec.reduced) : 1);
  }
};

}  // namespace

void RegisterReduceGates(GateRegistry& registry) {
  (void)registry.Register("sum", std::make_unique<ReduceGate>(/*mean=*/false));
  (void)registry.Register("mean", std::make_unique<ReduceGate>(/*mean=*/true));
  (void)registry.Register("expand_like", std::make_unique<ExpandLikeGate>());
}

}  // namespace backflow
