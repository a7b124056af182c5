#include "engine/gates/matmul.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/gradient_ops.h"
#include "engine/gates/matmul_kernel.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// Reads a 0/1 flag attribute.
StatusOr<bool> ReadFlag(const ShapeContext& ctx, std::string_view name) {
  const int64_t value = ctx.attrs.GetInt(name, 0);
  if (value != 0 && value != 1) {
    return ctx.Error(std::string(name) + " must be 0 or 1, got " + std::to_string(value));
  }
  return value == 1;
}

// "[N, 784] x [785, 256]", with the transposes named when set.
std::string Operands(const Shape& a, const Shape& b, bool ta, bool tb) {
  std::string s = a.ToString() + " x " + b.ToString();
  if (ta && tb) return s + " (both transposed)";
  if (ta || tb) return s + (ta ? " (a transposed)" : " (b transposed)");
  return s;
}

// The batch dimensions of an operand (all but its last two), padded on the left with 1s to `rank`.
std::vector<int64_t> BatchDims(const Shape& s, int rank) {
  std::vector<int64_t> dims(static_cast<size_t>(rank), 1);
  const int own = s.rank() - 2;
  for (int i = 0; i < own; ++i) dims[static_cast<size_t>(rank - own + i)] = s.dim(i);
  return dims;
}

StatusOr<Shape> MatMulRule(const ShapeContext& ctx) {
  BF_ASSIGN_OR_RETURN(const bool ta, ReadFlag(ctx, "transpose_a"));
  BF_ASSIGN_OR_RETURN(const bool tb, ReadFlag(ctx, "transpose_b"));
  const Shape& a = ctx.inputs[0];
  const Shape& b = ctx.inputs[1];
  if (a.rank() < 2 || b.rank() < 2) {
    return ctx.Error("matmul takes operands of rank 2 or more, got " + Operands(a, b, ta, tb));
  }
  const int ra = a.rank(), rb = b.rank();
  const int64_t m = a.dim(ta ? ra - 1 : ra - 2);
  const int64_t ka = a.dim(ta ? ra - 2 : ra - 1);
  const int64_t kb = b.dim(tb ? rb - 1 : rb - 2);
  const int64_t n = b.dim(tb ? rb - 2 : rb - 1);
  if (ka != kb) return ctx.Error("inner dimensions differ: " + Operands(a, b, ta, tb));
  // Batch dimensions broadcast as NumPy's: equal, or one of them 1 (an open dimension matches
  // only an open dimension or 1, as in the header).
  const int batch_rank = std::max(ra, rb) - 2;
  std::vector<int64_t> dims = BatchDims(a, batch_rank);
  const std::vector<int64_t> db = BatchDims(b, batch_rank);
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == db[i] || db[i] == 1) continue;
    if (dims[i] != 1) {
      return ctx.Error("batch dimensions do not broadcast: " + Operands(a, b, ta, tb));
    }
    dims[i] = db[i];
  }
  dims.push_back(m);
  dims.push_back(n);
  return Shape(std::move(dims));
}

StatusOr<Shape> LinearRule(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  const Shape& w = ctx.inputs[1];
  if (x.rank() < 2 || w.rank() != 2) {
    return ctx.Error("linear takes x [..., rows, in] and w [in, out], got " + Operands(x, w, 0, 0));
  }
  if (x.dim(x.rank() - 1) != w.dim(0)) {
    return ctx.Error("inner dimensions differ: " + Operands(x, w, 0, 0));
  }
  if (ctx.inputs.size() == 3 && ctx.inputs[2] != Shape{w.dim(1)}) {
    return ctx.Error("bias has shape " + ctx.inputs[2].ToString() + ", expected " +
                     Shape{w.dim(1)}.ToString() + " for w " + w.ToString());
  }
  std::vector<int64_t> dims = x.dims();
  dims.back() = w.dim(1);
  return Shape(std::move(dims));
}

// The sizes of a matmul node with concrete shapes (its shape rule has passed on them).
ProductDims MatMulDimsOf(const CompileContext& ctx) {
  const Shape& a = ctx.inputs[0];
  const int r = ctx.output.rank();
  ProductDims d;
  d.mm.transpose_a = ctx.attrs.GetInt("transpose_a", 0) == 1;
  d.mm.transpose_b = ctx.attrs.GetInt("transpose_b", 0) == 1;
  d.out_batch = BatchDims(ctx.output, r - 2);
  d.a_batch = BatchDims(a, r - 2);
  d.b_batch = BatchDims(ctx.inputs[1], r - 2);
  d.mm.batch = 1;
  for (int64_t n : d.out_batch) d.mm.batch *= n;
  d.mm.m = ctx.output.dim(r - 2);
  d.mm.n = ctx.output.dim(r - 1);
  d.mm.k = a.dim(d.mm.transpose_a ? a.rank() - 2 : a.rank() - 1);
  return d;
}

AttrSpec TransposeSpec(std::string_view name, std::string_view description) {
  return {.name = name, .type = AttrType::kInt, .default_value = "0", .description = description};
}

class MatMulGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {TransposeSpec("transpose_a", "1: op(a) is a with its last two dimensions swapped"),
            TransposeSpec("transpose_b", "1: op(b) is b with its last two dimensions swapped")};
  }
  OpDoc doc() const override {
    return {.summary =
                "Matrix product, or a batch of them with the batch dimensions broadcast "
                "(NumPy matmul).",
            .inputs = {{"a", "op(a) is [..., M, K]; rank 2 or more"},
                       {"b", "op(b) is [..., K, N]; rank 2 or more"}},
            .output = "[..., M, N], the batch dimensions of a and b broadcast (each equal, or 1)",
            .forward = "y[i] = op(a[i]) op(b[i]) for every batch index i (broadcast)",
            .gradient =
                "dL/da = dy op(b)^T   (transpose_a = 0)\n"
                "dL/da = op(b) dy^T   (transpose_a = 1)\n"
                "dL/db = op(a)^T dy   (transpose_b = 0)\n"
                "dL/db = dy^T op(a)   (transpose_b = 1)\n"
                "each summed over the batch dimensions its operand was broadcast along"};
  }
  bool compute_bound() const override { return true; }
  // 2 * out * K, K being a's last dimension (its next-to-last when transposed); out counts
  // every product of the broadcast batch.
  int64_t Flops(const FlopsContext& ctx) const override {
    const Shape& a = ctx.inputs[0];
    const int64_t out = FlopsContext::Elements(ctx.output);
    if (a.rank() < 2) return out;
    const bool transpose_a = ctx.attrs.GetInt("transpose_a", 0) == 1;
    return SaturatingMul(2, SaturatingMul(out, a.dim(transpose_a ? a.rank() - 2 : a.rank() - 1)));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return MatMulRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override;
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return CompileProduct(ctx, MatMulDimsOf(ctx), /*bias=*/false);
  }
  Status Backward(BackwardContext& ctx) const override;
};

// Row i of a times the matrix b, or (rank >= 3) times row i of b: a product per sample. At rank 2
// with transpose_a the output's rows are a's columns.
Rows MatMulGate::BatchRows(const RowsContext& ctx) const {
  if (ctx.AllNone()) return Rows::kNone;
  const int rank = ctx.output.rank();
  if (!ctx.RowsAligned(0) || (rank < 3 && ctx.attrs.GetInt("transpose_a", 0) != 0)) {
    return Rows::kMixed;
  }
  if (ctx.inputs[1] == Rows::kNone) return Rows::kEach;
  return rank >= 3 && ctx.RowsAligned(1) ? Rows::kEach : Rows::kMixed;
}

Attributes Transposes(bool ta, bool tb) {
  return Attributes{{"transpose_a", int64_t{ta ? 1 : 0}}, {"transpose_b", int64_t{tb ? 1 : 0}}};
}

// The table in matmul.h: each gradient is one matmul of dy with the other operand, transposed
// so that the product comes out in the stored (not the logical) layout of the input.
Status MatMulGate::Backward(BackwardContext& ctx) const {
  const bool ta = ctx.node().attrs.GetInt("transpose_a", 0) == 1;
  const bool tb = ctx.node().attrs.GetInt("transpose_b", 0) == 1;
  const ValueId a = ctx.input(0);
  const ValueId b = ctx.input(1);
  const ValueId dy = ctx.output_grad();
  if (ctx.needs_grad(0)) {
    BF_ASSIGN_OR_RETURN(ValueId da, ta ? ctx.Emit("matmul", {b, dy}, Transposes(tb, true))
                                       : ctx.Emit("matmul", {dy, b}, Transposes(false, !tb)));
    BF_ASSIGN_OR_RETURN(da, SumToShapeOf(ctx, da, a));  // over the batch dims a broadcast along
    ctx.SetGrad(0, da);
  }
  if (ctx.needs_grad(1)) {
    BF_ASSIGN_OR_RETURN(ValueId db, tb ? ctx.Emit("matmul", {dy, a}, Transposes(true, ta))
                                       : ctx.Emit("matmul", {a, dy}, Transposes(!ta, false)));
    BF_ASSIGN_OR_RETURN(db, SumToShapeOf(ctx, db, b));
    ctx.SetGrad(1, db);
  }
  return Status::Ok();
}

class LinearGate : public Gate {
 public:
  Arity arity() const override { return {2, 3}; }
  OpDoc doc() const override {
    return {.summary = "Fully connected layer: x times w, plus a bias per output.",
            .inputs = {{"x", "[..., in], rank 2 or more; any leading dimension may be the open N"},
                       {"w", "[in, out]"},
                       {"b", "[out]"}},
            .output = "[..., out]",
            .forward = "y = x w + b   (every leading index is a row; b added to every row)",
            .gradient =
                "dL/dx = dy w^T\ndL/dw = x^T dy   (summed over all rows)\n"
                "dL/db = dy summed over all rows"};
  }
  bool compute_bound() const override { return true; }
  // 2 * out * in, plus out for the bias (x is [..., in]; out counts every row).
  int64_t Flops(const FlopsContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    const int64_t out = FlopsContext::Elements(ctx.output);
    const int64_t in = x.rank() > 0 ? x.dim(x.rank() - 1) : 1;
    const int64_t bias = ctx.inputs.size() > 2 ? out : 0;
    return SaturatingAdd(SaturatingMul(2, SaturatingMul(out, in)), bias);
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return LinearRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    ProductDims d;
    const Shape& x = ctx.inputs[0];
    d.mm = {.batch = 1, .m = 1, .k = x.dim(x.rank() - 1), .n = ctx.inputs[1].dim(1)};
    for (int i = 0; i < x.rank() - 1; ++i) d.mm.m *= x.dim(i);  // the leading dimensions are rows
    return CompileProduct(ctx, std::move(d), /*bias=*/ctx.inputs.size() == 3);
  }
  Status Backward(BackwardContext& ctx) const override;
};

// x [..., in] is a stack of rows: dx is one broadcast matmul; dw contracts over every row, so x
// and dy are flattened to matrices first when they have more than two dimensions.
Status LinearGate::Backward(BackwardContext& ctx) const {
  const ValueId dy = ctx.output_grad();
  const int rank = ctx.graph().value(ctx.input(0)).shape.rank();
  if (ctx.needs_grad(0)) {
    BF_ASSIGN_OR_RETURN(ValueId dx,
                        ctx.Emit("matmul", {dy, ctx.input(1)}, Transposes(false, true)));
    ctx.SetGrad(0, dx);
  }
  if (ctx.needs_grad(1)) {
    ValueId x = ctx.input(0), rows_dy = dy;
    if (rank > 2) {
      const Attributes rows{{"axis", int64_t{rank - 1}}};
      BF_ASSIGN_OR_RETURN(x, ctx.Emit("flatten", {x}, rows));
      BF_ASSIGN_OR_RETURN(rows_dy, ctx.Emit("flatten", {dy}, rows));
    }
    BF_ASSIGN_OR_RETURN(ValueId dw, ctx.Emit("matmul", {x, rows_dy}, Transposes(true, false)));
    ctx.SetGrad(1, dw);
  }
  if (ctx.node().inputs.size() == 3 && ctx.needs_grad(2)) {
    std::vector<int64_t> axes(static_cast<size_t>(rank - 1));
    for (int i = 0; i < rank - 1; ++i) axes[static_cast<size_t>(i)] = i;
    BF_ASSIGN_OR_RETURN(ValueId db, ctx.Emit("sum", {dy}, Attributes{{"axes", axes}}));
    ctx.SetGrad(2, db);
  }
  return Status::Ok();
}

}  // namespace

void RegisterMatMulGates(GateRegistry& registry) {
  (void)registry.Register("matmul", std::make_unique<MatMulGate>());
  (void)registry.Register("linear", std::make_unique<LinearGate>());
}

}  // namespace backflow
