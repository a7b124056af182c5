#include "engine/gates/tensor_ops.h"

#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/checked.h"
#include "engine/gates/batch_rows.h"
#include "engine/gates/copy_kernel.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

using Ints = std::vector<int64_t>;

// Product of dims [begin, end) of `s`; open if any of them is (see tensor_ops.h).
int64_t GroupSize(const Shape& s, int begin, int end) {
  int64_t size = 1;
  for (int i = begin; i < end; ++i) {
    if (s.dim(i) == kBatchDim) return kBatchDim;
    size *= s.dim(i);
  }
  return size;
}

// `axis` normalised into [0, limit), where negative values count back from `rank`.
StatusOr<int> NormaliseAxis(const ShapeContext& ctx, int64_t axis, int rank, int limit) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= limit) {
    return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  return static_cast<int>(a);
}

// ---- flatten ------------------------------------------------------------------------------

StatusOr<Shape> FlattenRule(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  BF_ASSIGN_OR_RETURN(const int axis,
                      NormaliseAxis(ctx, ctx.attrs.GetInt("axis", 1), x.rank(), x.rank() + 1));
  // Each group's product must fit, though x itself may have none (a zero in the other group).
  for (const auto& [begin, end] : {std::pair{0, axis}, std::pair{axis, x.rank()}}) {
    std::vector<int64_t> known;
    for (int i = begin; i < end; ++i) {
      if (x.dim(i) != kBatchDim) known.push_back(x.dim(i));
    }
    if (!CheckedProduct(known)) {
      return ctx.Error("flattening " + x.ToString() + " at axis " + std::to_string(axis) +
                       " overflows: its dimensions multiply past INT64_MAX");
    }
  }
  return Shape{GroupSize(x, 0, axis), GroupSize(x, axis, x.rank())};
}

class FlattenGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "axis",
             .type = AttrType::kInt,
             .default_value = "1",
             .description = "in [-r, r], negative counting from the end: the dimensions before "
                            "it make y's rows, the rest its columns"}};
  }
  OpDoc doc() const override {
    return {.summary = "x as a matrix: the dimensions before axis become rows (ONNX Flatten).",
            .inputs = {{"x", "any shape [d0, ..., d(r-1)]; N may be open"}},
            .output = "[d0 * ... * d(axis-1), d(axis) * ... * d(r-1)]",
            .forward =
                "y = x viewed as [d0 * ... * d(axis-1), d(axis) * ... * d(r-1)]\n"
                "(axis 0 gives [1, all], axis r gives [all, 1])",
            .gradient = "dL/dx = dy viewed as x's shape"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return FlattenRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return ReshapedRows(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext&) const override {
    return std::unique_ptr<Kernel>(std::make_unique<CopyKernel>());
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(ValueId dx, ctx.Emit("reshape_like", {ctx.output_grad(), ctx.input(0)}));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

// ---- transpose ----------------------------------------------------------------------------

StatusOr<Ints> ReadPerm(const ShapeContext& ctx, int rank) {
  Ints perm = ctx.attrs.GetInts("perm");
  if (perm.empty()) {
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
    return perm;
  }
  std::string text;
  for (int64_t p : perm) text += (text.empty() ? "" : ", ") + std::to_string(p);
  const std::string what = "perm [" + text + "] is not a permutation of the " +
                           std::to_string(rank) + " dimensions of " + ctx.inputs[0].ToString();
  if (static_cast<int>(perm.size()) != rank) return ctx.Error(what);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) return ctx.Error(what);
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

StatusOr<Shape> TransposeRule(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  BF_ASSIGN_OR_RETURN(const Ints perm, ReadPerm(ctx, x.rank()));
  std::vector<int64_t> dims;
  for (int64_t p : perm) dims.push_back(x.dim(static_cast<int>(p)));
  return Shape(std::move(dims));
}

// y in row-major order, reading x through `strides`: strides[k] is x's stride (in elements)
// along the dimension that becomes y's dimension k.
template <typename T>
class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(Ints strides) : strides_(std::move(strides)) {}
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    T* y = ctx.output->data<T>();
    const Shape& out = ctx.output->shape();
    const int rank = out.rank();
    const int64_t total = out.num_elements();
    if (rank == 0 || total == 0) {
      if (total == 1) y[0] = x[0];
      return Status::Ok();
    }
    const int64_t inner = out.dim(rank - 1);
    const int64_t step = strides_[static_cast<size_t>(rank - 1)];
    Ints index(static_cast<size_t>(rank), 0);
    int64_t base = 0;
    for (int64_t i = 0; i < total; i += inner) {
      for (int64_t j = 0; j < inner; ++j) y[i + j] = x[base + j * step];
      for (int d = rank - 2; d >= 0; --d) {  // advance the outer multi-index
        const size_t k = static_cast<size_t>(d);
        base += strides_[k];
        if (++index[k] < out.dim(d)) break;
        base -= strides_[k] * index[k];
        index[k] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  Ints strides_;
};

class TransposeGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "perm",
             .type = AttrType::kInts,
             .default_value = "[]",
             .description = "a permutation of 0..r-1: y's dimension k is x's dimension perm[k]; "
                            "empty reverses the dimensions"}};
  }
  OpDoc doc() const override {
    return {.summary = "Permutes the dimensions of x.",
            .inputs = {{"x", "any shape; N may be open, and moves with its dimension"}},
            .output = "[x.dim(perm[0]), ..., x.dim(perm[r-1])]",
            .forward = "y[i0, ..., i(r-1)] = x[j], where j[perm[k]] = ik",
            .gradient = "dL/dx = transpose(dy) with the inverse permutation"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return TransposeRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return TransposedRows(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    BF_ASSIGN_OR_RETURN(const Ints perm,
                        ReadPerm(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, x.rank()));
    Ints x_strides(static_cast<size_t>(x.rank()), 1);
    for (int d = x.rank() - 2; d >= 0; --d) {
      x_strides[static_cast<size_t>(d)] = x_strides[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    }
    Ints strides;
    for (int64_t p : perm) strides.push_back(x_strides[static_cast<size_t>(p)]);
    return MakeTypedKernel<TransposeKernel>(ctx.dtype, std::move(strides));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    const Shape& x = ctx.input_shape(0);
    BF_ASSIGN_OR_RETURN(
        const Ints perm,
        ReadPerm(ShapeContext{ctx.node().name, {&x, 1}, ctx.node().attrs}, x.rank()));
    Ints inverse(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) inverse[static_cast<size_t>(perm[k])] = int64_t(k);
    BF_ASSIGN_OR_RETURN(ValueId dx, ctx.Emit("transpose", {ctx.output_grad()},
                                             Attributes{{"perm", std::move(inverse)}}));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

// ---- concat -------------------------------------------------------------------------------

StatusOr<int> ConcatAxis(const ShapeContext& ctx, int rank) {
  if (rank == 0) return ctx.Error("cannot concatenate scalars");
  return NormaliseAxis(ctx, ctx.attrs.GetInt("axis", 0), rank, rank);
}

// The concatenation of `parts` (inputs of ctx, or the x inputs of concat_grad) along `axis`.
StatusOr<Shape> ConcatShape(const ShapeContext& ctx, std::span<const Shape> parts, int axis) {
  const Shape& first = parts[0];
  std::vector<int64_t> dims = first.dims();
  dims[static_cast<size_t>(axis)] = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Shape& s = parts[i];
    bool agree = s.rank() == first.rank();
    for (int d = 0; agree && d < s.rank(); ++d) agree = d == axis || s.dim(d) == first.dim(d);
    if (!agree) {
      return ctx.Error("input " + std::to_string(i) + " has shape " + s.ToString() +
                       " and input 0 " + first.ToString() + ": they must agree except on axis " +
                       std::to_string(axis));
    }
    int64_t& total = dims[static_cast<size_t>(axis)];
    if (total == kBatchDim || s.dim(axis) == kBatchDim) {
      total = kBatchDim;
    } else if (const std::optional<int64_t> sum = CheckedAdd(total, s.dim(axis))) {
      total = *sum;
    } else {
      return ctx.Error("input " + std::to_string(i) + " " + s.ToString() +
                       " brings the concatenated axis " + std::to_string(axis) + " past INT64_MAX");
    }
  }
  return Shape(std::move(dims));
}

StatusOr<Shape> ConcatRule(const ShapeContext& ctx) {
  BF_ASSIGN_OR_RETURN(const int axis, ConcatAxis(ctx, ctx.inputs[0].rank()));
  return ConcatShape(ctx, ctx.inputs, axis);
}

// Concrete shapes seen as 2-D: [outer, dim(axis) * inner] for each part.
struct ConcatLayout {
  int64_t outer = 1;
  Ints widths;        // elements per outer row, one per part
  int64_t total = 0;  // sum of widths: the joined tensor's row
};

ConcatLayout LayoutOf(std::span<const Shape> parts, int axis) {
  ConcatLayout layout;
  const Shape& first = parts[0];
  layout.outer = GroupSize(first, 0, axis);
  const int64_t inner = GroupSize(first, axis + 1, first.rank());
  for (const Shape& s : parts) {
    layout.widths.push_back(s.dim(axis) * inner);
    layout.total += layout.widths.back();
  }
  return layout;
}

// Copies `rows` rows of `width` elements between arrays whose rows are `from_row` and `to_row`
// elements apart. `elem` is the element size in bytes.
void CopyRows(const std::byte* from, int64_t from_row, std::byte* to, int64_t to_row, int64_t rows,
              int64_t width, size_t elem) {
  if (width == 0) return;
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(to + static_cast<size_t>(r * to_row) * elem,
                from + static_cast<size_t>(r * from_row) * elem, static_cast<size_t>(width) * elem);
  }
}

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(ConcatLayout layout) : layout_(std::move(layout)) {}
  Status Run(KernelContext& ctx) const override {
    const size_t elem = SizeOf(ctx.output->dtype());
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      const int64_t width = layout_.widths[i];
      CopyRows(ctx.inputs[i]->raw(), width, ctx.output->raw() + static_cast<size_t>(offset) * elem,
               layout_.total, layout_.outer, width, elem);
      offset += width;
    }
    return Status::Ok();
  }

 private:
  ConcatLayout layout_;
};

// Part `index` of the joined tensor (input 0). Inputs: dy, x1, ..., xn.
class ConcatGradKernel : public Kernel {
 public:
  ConcatGradKernel(ConcatLayout layout, size_t index) : layout_(std::move(layout)), index_(index) {}
  Status Run(KernelContext& ctx) const override {
    const size_t elem = SizeOf(ctx.output->dtype());
    const int64_t offset = std::accumulate(layout_.widths.begin(),
                                           layout_.widths.begin() + static_cast<long>(index_), 0L);
    const int64_t width = layout_.widths[index_];
    CopyRows(ctx.inputs[0]->raw() + static_cast<size_t>(offset) * elem, layout_.total,
             ctx.output->raw(), width, layout_.outer, width, elem);
    return Status::Ok();
  }

 private:
  ConcatLayout layout_;
  size_t index_;
};

class ConcatGate : public Gate {
 public:
  Arity arity() const override { return {1, Arity::kVariadic}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "axis",
             .type = AttrType::kInt,
             .required = true,
             .description = "the dimension to join along, in [-r, r-1], negative counting from "
                            "the end"}};
  }
  OpDoc doc() const override {
    return {.summary = "Joins tensors along one dimension.",
            .inputs = {{"x1, ..., xn", "one rank; equal in every dimension but axis"}},
            .output = "x1's shape with dimension axis the sum of the inputs' sizes there",
            .forward = "y = x1, x2, ..., xn joined along axis",
            .gradient = "dL/dxi = the slice of dy that xi was copied into"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ConcatRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return ConcatenatedRows(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const int axis, ConcatAxis(ShapeContext{ctx.node, ctx.inputs, ctx.attrs},
                                                   ctx.inputs[0].rank()));
    return std::unique_ptr<Kernel>(std::make_unique<ConcatKernel>(LayoutOf(ctx.inputs, axis)));
  }
  Status Backward(BackwardContext& ctx) const override {
    const Shape first = ctx.input_shape(0);
    BF_ASSIGN_OR_RETURN(
        const int axis,
        ConcatAxis(ShapeContext{ctx.node().name, {&first, 1}, ctx.node().attrs}, first.rank()));
    // Copied out before emitting: Emit appends to the graph, which may move ctx.node().
    std::vector<ValueId> inputs = {ctx.output_grad()};
    inputs.insert(inputs.end(), ctx.node().inputs.begin(), ctx.node().inputs.end());
    for (int i = 0; i + 1 < static_cast<int>(inputs.size()); ++i) {
      if (!ctx.needs_grad(i)) continue;
      BF_ASSIGN_OR_RETURN(ValueId dx,
                          ctx.Emit("concat_grad", inputs,
                                   Attributes{{"axis", int64_t{axis}}, {"index", int64_t{i}}}));
      ctx.SetGrad(i, dx);
    }
    return Status::Ok();
  }
};

// Internal: xi's part of dy, where dy is the gradient of concat(x1, ..., xn).
class ConcatGradGate : public Gate {
 public:
  Arity arity() const override { return {2, Arity::kVariadic}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{"axis", AttrType::kInt, true}, {"index", AttrType::kInt, true}};
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const std::span<const Shape> parts = ctx.inputs.subspan(1);
    const int64_t index = ctx.attrs.GetInt("index", 0);
    if (index < 0 || index >= static_cast<int64_t>(parts.size())) {
      return ctx.Error("index " + std::to_string(index) + " is out of range for " +
                       std::to_string(parts.size()) + " parts");
    }
    BF_ASSIGN_OR_RETURN(const int axis, ConcatAxis(ctx, parts[0].rank()));
    BF_ASSIGN_OR_RETURN(const Shape joined, ConcatShape(ctx, parts, axis));
    if (ctx.inputs[0] != joined) {
      return ctx.Error("dy has shape " + ctx.inputs[0].ToString() + ", but the parts join to " +
                       joined.ToString());
    }
    return parts[static_cast<size_t>(index)];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const std::span<const Shape> parts = ctx.inputs.subspan(1);
    const int axis = static_cast<int>(ctx.attrs.GetInt("axis", 0));
    const size_t index = static_cast<size_t>(ctx.attrs.GetInt("index", 0));
    return std::unique_ptr<Kernel>(
        std::make_unique<ConcatGradKernel>(LayoutOf(parts, axis), index));
  }
};

}  // namespace

void RegisterTensorGates(GateRegistry& registry) {
  (void)registry.Register("flatten", std::make_unique<FlattenGate>());
  (void)registry.Register("transpose", std::make_unique<TransposeGate>());
  (void)registry.Register("concat", std::make_unique<ConcatGate>());
  (void)registry.Register("concat_grad", std::make_unique<ConcatGradGate>());
}

}  // namespace backflow
