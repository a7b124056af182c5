#include "engine/gates/slice.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/gates/strided_copy.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

using Ints = std::vector<int64_t>;

// The least end that takes an open batch dimension whole: no batch has 2^31 rows.
constexpr int64_t kToTheEnd = std::numeric_limits<int32_t>::max();

// How slice reads one dimension of x: `size` elements from `start`, `step` apart. An open
// dimension taken whole keeps size kBatchDim.
struct AxisRead {
  int64_t start = 0;
  int64_t step = 1;
  int64_t size = 0;
};

// ONNX Slice's clamping of start and end on one axis of `dim` elements (see slice.h). The step
// of an axis that keeps at most one element is 1: it is never taken, and step * stride could
// overflow (INT64_MAX).
AxisRead ClampToAxis(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (start < 0) start += dim;  // cannot overflow: dim >= 0
  if (end < 0) end += dim;
  int64_t size = 0;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    size = end > start ? (end - start - 1) / step + 1 : 0;
  } else if (dim > 0) {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    // start - end - 1 >= 0 over a negative step truncates toward zero: -floor(... / |step|).
    size = start > end ? 1 - (start - end - 1) / step : 0;
  } else {
    start = 0;
  }
  return {start, size > 1 ? step : 1, size};
}

// The attributes, checked and completed: one entry per sliced axis in each list, axes
// normalised into [0, rank).
struct SliceLists {
  Ints starts, ends, axes, steps;
};

Status CheckLengths(const ShapeContext& ctx, const SliceLists& lists, const Shape& x) {
  const size_t n = lists.starts.size();
  const auto bad = [n](const Ints& list) { return !list.empty() && list.size() != n; };
  if (lists.ends.size() != n || bad(lists.axes) || bad(lists.steps)) {
    return ctx.Error("starts, ends, axes and steps have " + std::to_string(n) + ", " +
                     std::to_string(lists.ends.size()) + ", " + std::to_string(lists.axes.size()) +
                     " and " + std::to_string(lists.steps.size()) +
                     " entries: they need one per sliced axis (axes and steps may be left out)");
  }
  if (lists.axes.empty() && n > static_cast<size_t>(x.rank())) {
    return ctx.Error("starts has " + std::to_string(n) + " entries, more than the " +
                     std::to_string(x.rank()) + " axes of " + x.ToString());
  }
  return Status::Ok();
}

StatusOr<SliceLists> ReadLists(const ShapeContext& ctx, const Shape& x) {
  const int rank = x.rank();
  SliceLists lists{ctx.attrs.GetInts("starts"), ctx.attrs.GetInts("ends"),
                   ctx.attrs.GetInts("axes"), ctx.attrs.GetInts("steps")};
  BF_RETURN_IF_ERROR(CheckLengths(ctx, lists, x));
  const size_t n = lists.starts.size();
  if (lists.axes.empty()) {
    for (size_t k = 0; k < n; ++k) lists.axes.push_back(static_cast<int64_t>(k));
  }
  if (lists.steps.empty()) lists.steps.assign(n, 1);
  std::vector<int> sliced_by(static_cast<size_t>(rank), -1);  // the entry slicing each axis
  for (size_t k = 0; k < n; ++k) {
    const std::string at = "[" + std::to_string(k) + "]";
    const int64_t axis = lists.axes[k] < 0 ? lists.axes[k] + rank : lists.axes[k];
    if (axis < 0 || axis >= rank) {
      return ctx.Error("axes" + at + " is " + std::to_string(lists.axes[k]) +
                       ", out of range for rank " + std::to_string(rank));
    }
    int& first = sliced_by[static_cast<size_t>(axis)];
    if (first >= 0) {
      return ctx.Error("axis " + std::to_string(axis) + " is sliced twice (axes[" +
                       std::to_string(first) + "] and axes" + at + ")");
    }
    first = static_cast<int>(k);
    lists.axes[k] = axis;
    if (lists.steps[k] == 0) return ctx.Error("steps" + at + " is 0: a step must be nonzero");
  }
  return lists;
}

// How slice reads each dimension of x; errors as the shape rule reports them.
StatusOr<std::vector<AxisRead>> ResolveSlice(const ShapeContext& ctx, const Shape& x) {
  BF_ASSIGN_OR_RETURN(const SliceLists lists, ReadLists(ctx, x));
  std::vector<AxisRead> reads;
  for (int64_t dim : x.dims()) reads.push_back({0, 1, dim});
  for (size_t k = 0; k < lists.starts.size(); ++k) {
    const int axis = static_cast<int>(lists.axes[k]);
    const int64_t dim = x.dim(axis);
    if (dim != kBatchDim) {
      reads[static_cast<size_t>(axis)] =
          ClampToAxis(lists.starts[k], lists.ends[k], lists.steps[k], dim);
    } else if (lists.starts[k] != 0 || lists.steps[k] != 1 || lists.ends[k] < kToTheEnd) {
      return ctx.Error("cannot slice the open batch dimension: axis " + std::to_string(axis) +
                       " of " + x.ToString() + " is open, so it may only be taken whole (start " +
                       "0, step 1, end at least " + std::to_string(kToTheEnd) + "), got start " +
                       std::to_string(lists.starts[k]) + ", end " + std::to_string(lists.ends[k]) +
                       ", step " + std::to_string(lists.steps[k]));
    }
  }
  return reads;
}

Shape SlicedShape(const std::vector<AxisRead>& reads) {
  std::vector<int64_t> dims;
  for (const AxisRead& r : reads) dims.push_back(r.size);
  return Shape(std::move(dims));
}

// The box slice copies from a concrete x into its (row-major) output.
StridedCopy ReadBox(const Shape& x, const std::vector<AxisRead>& reads) {
  const Ints x_strides = RowMajorStrides(x);
  StridedCopy box;
  for (size_t d = 0; d < reads.size(); ++d) {
    box.extent.push_back(reads[d].size);
    box.from_offset += reads[d].start * x_strides[d];
    box.from_strides.push_back(reads[d].step * x_strides[d]);
  }
  box.to_strides = RowMajorStrides(Shape(box.extent));
  return box;
}

std::vector<AttrSpec> SliceAttrSpecs() {
  return {{.name = "starts",
           .type = AttrType::kInts,
           .required = true,
           .description = "first index per sliced axis; negative adds the axis size, then "
                          "clamped as ONNX Slice"},
          {.name = "ends",
           .type = AttrType::kInts,
           .required = true,
           .description = "index each sliced axis stops before; negative adds the axis size, "
                          "then clamped (INT64_MAX: to the end)"},
          {.name = "axes",
           .type = AttrType::kInts,
           .default_value = "[]",
           .description = "the axes sliced, in [-r, r-1], none twice; empty: 0, 1, ..., "
                          "len(starts) - 1"},
          {.name = "steps",
           .type = AttrType::kInts,
           .default_value = "[]",
           .description = "stride per sliced axis, nonzero, negative walking backwards; "
                          "empty: all 1"}};
}

class SliceGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override { return SliceAttrSpecs(); }
  OpDoc doc() const override {
    return {
        .summary = "A strided box of x (ONNX Slice): starts, ends and steps per axis.",
        .inputs = {{"x", "any shape; an open N may only be taken whole"}},
        .output = "x's shape with each sliced axis max(0, ceil((end - start) / step)) long",
        .forward =
            "y[i] = x[j], j[axes[k]] = start_k + i[axes[k]] * steps[k], j[d] = i[d] elsewhere\n"
            "(start_k, end_k: starts[k], ends[k] plus the axis size if negative, then clamped\n"
            "to [0, dim] for a positive step, to [0, dim-1] and [-1, dim-1] for a negative one)",
        .gradient = "dL/dx = dy scattered into zeros at the positions y was read from"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const std::vector<AxisRead> reads, ResolveSlice(ctx, ctx.inputs[0]));
    return SlicedShape(reads);
  }
  // ResolveSlice takes an open axis 0 whole, so every row keeps its own slice.
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    BF_ASSIGN_OR_RETURN(const std::vector<AxisRead> reads,
                        ResolveSlice(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, x));
    return MakeTypedKernel<StridedCopyKernel>(ctx.dtype, ReadBox(x, reads), std::nullopt);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    Attributes attrs = ctx.node().attrs;  // copied: Emit appends to the graph
    BF_ASSIGN_OR_RETURN(
        ValueId dx, ctx.Emit("slice_grad", {ctx.output_grad(), ctx.input(0)}, std::move(attrs)));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

// Internal: dy written into zeros of x's shape where slice read x. Inputs: dy, x.
class SliceGradGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override { return SliceAttrSpecs(); }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const Shape& x = ctx.inputs[1];
    BF_ASSIGN_OR_RETURN(const std::vector<AxisRead> reads, ResolveSlice(ctx, x));
    const Shape sliced = SlicedShape(reads);
    if (ctx.inputs[0] != sliced) {
      return ctx.Error("dy has shape " + ctx.inputs[0].ToString() + ", but the slice of " +
                       x.ToString() + " has " + sliced.ToString());
    }
    return x;
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Shape& x = ctx.inputs[1];
    BF_ASSIGN_OR_RETURN(const std::vector<AxisRead> reads,
                        ResolveSlice(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, x));
    StridedCopy read = ReadBox(x, reads);
    StridedCopy write{.extent = std::move(read.extent),
                      .from_offset = 0,
                      .from_strides = std::move(read.to_strides),
                      .to_offset = read.from_offset,
                      .to_strides = std::move(read.from_strides)};
    return MakeTypedKernel<StridedCopyKernel>(ctx.dtype, std::move(write), 0.0);
  }
};

}  // namespace

void RegisterSliceGates(GateRegistry& registry) {
  (void)registry.Register("slice", std::make_unique<SliceGate>());
  (void)registry.Register("slice_grad", std::make_unique<SliceGradGate>());
}

}  // namespace backflow
