#include "engine/gates/pad.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/gates/strided_copy.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

using Ints = std::vector<int64_t>;

// y.dim(d) for pads `begin` and `end` on axis d of x.
StatusOr<int64_t> PaddedSize(const ShapeContext& ctx, const Shape& x, int d, int64_t begin,
                             int64_t end) {
  const int64_t dim = x.dim(d);
  const std::string axis = "axis " + std::to_string(d) + " of " + x.ToString();
  const std::string pads = "begin " + std::to_string(begin) + ", end " + std::to_string(end);
  if (dim == kBatchDim) {
    if (begin == 0 && end == 0) return kBatchDim;
    return ctx.Error("cannot pad the open batch dimension: " + axis +
                     " is open, so its pads must be 0, got " + pads);
  }
  const std::string too_much = "pads remove more than " + axis + " holds: " + pads;
  if (begin < -dim || end < -dim) return ctx.Error(too_much);
  int64_t size = 0;  // dim + begin >= 0 here, so only a positive sum can overflow
  if (__builtin_add_overflow(dim, begin, &size) || __builtin_add_overflow(size, end, &size)) {
    return ctx.Error("pads make " + axis + " too large: " + pads);
  }
  if (size < 0) return ctx.Error(too_much);
  return size;
}

StatusOr<Shape> PadRule(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  const Ints pads = ctx.attrs.GetInts("pads");
  const int rank = x.rank();
  if (pads.size() != 2 * static_cast<size_t>(rank)) {
    return ctx.Error("pads has " + std::to_string(pads.size()) + " entries, but x " + x.ToString() +
                     " has rank " + std::to_string(rank) + ", so it needs " +
                     std::to_string(2 * rank) + ": each axis's begin, then each axis's end");
  }
  std::vector<int64_t> dims;
  for (int d = 0; d < rank; ++d) {
    BF_ASSIGN_OR_RETURN(const int64_t size, PaddedSize(ctx, x, d, pads[static_cast<size_t>(d)],
                                                       pads[static_cast<size_t>(d + rank)]));
    dims.push_back(size);
  }
  return Shape(std::move(dims));
}

// The box of x that lands in y, for concrete shapes that passed PadRule: on axis d, y's
// elements max(0, begin) up to min(y.dim(d), x.dim(d) + begin), read from x at index - begin.
StridedCopy PadBox(const Shape& x, const Shape& y, const Ints& pads) {
  StridedCopy box{.from_strides = RowMajorStrides(x), .to_strides = RowMajorStrides(y)};
  for (int d = 0; d < x.rank(); ++d) {
    const size_t k = static_cast<size_t>(d);
    const int64_t begin = pads[k];
    const int64_t first = std::max<int64_t>(0, begin);
    box.extent.push_back(std::max<int64_t>(0, std::min(y.dim(d), x.dim(d) + begin) - first));
    box.from_offset += std::max<int64_t>(0, -begin) * box.from_strides[k];
    box.to_offset += first * box.to_strides[k];
  }
  return box;
}

class PadGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "pads",
             .type = AttrType::kInts,
             .required = true,
             .description = "[begin_0, ..., begin_(r-1), end_0, ..., end_(r-1)] (ONNX order); "
                            "negative entries crop"},
            {.name = "value",
             .type = AttrType::kFloat,
             .default_value = "0",
             .description = "what the added elements hold"}};
  }
  OpDoc doc() const override {
    return {.summary =
                "x padded with a constant on each side of each axis, or cropped (ONNX "
                "Pad, constant mode).",
            .inputs = {{"x", "any shape; an open N cannot be padded (its pads must be 0)"}},
            .output = "y.dim(d) = x.dim(d) + begin_d + end_d, never negative",
            .forward =
                "y[i] = x[i - begin] where 0 <= i[d] - begin[d] < x.dim(d) on every axis d,\n"
                "       value elsewhere",
            .gradient =
                "dL/dx = the part of dy that x was copied into, 0 where x was cropped\n"
                "      = pad(dy, -pads, value 0)"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return PadRule(ctx); }
  // PadRule keeps an open axis 0 whole (its pads must be 0), so every row is padded on its own.
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const StridedCopy box = PadBox(ctx.inputs[0], ctx.output, ctx.attrs.GetInts("pads"));
    return MakeTypedKernel<StridedCopyKernel>(ctx.dtype, box, ctx.attrs.GetFloat("value", 0.0));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    Ints pads = ctx.node().attrs.GetInts("pads");  // copied: Emit appends to the graph
    for (int64_t& p : pads) p = -p;                // no overflow: PadRule keeps each pad >= -dim
    BF_ASSIGN_OR_RETURN(ValueId dx,
                        ctx.Emit("pad", {ctx.output_grad()},
                                 Attributes{{"pads", std::move(pads)}, {"value", 0.0}}));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

}  // namespace

void RegisterPadGates(GateRegistry& registry) {
  (void)registry.Register("pad", std::make_unique<PadGate>());
}

}  // namespace backflow
