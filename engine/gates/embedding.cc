#include "engine/gates/embedding.h"

#include <algorithm>
#include <string>
#include <vector>

#include "engine/gates/batch_rows.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// padding_idx normalised into [0, num), or -1 if absent.
StatusOr<int64_t> PaddingRow(const ShapeContext& ctx, int64_t num) {
  if (!ctx.attrs.Has("padding_idx")) return int64_t{-1};
  const int64_t p = ctx.attrs.GetInt("padding_idx", -1);
  if (p < -num || p >= num) {
    return ctx.Error("padding_idx " + std::to_string(p) + " is not in [" + std::to_string(-num) +
                     ", " + std::to_string(num) + ")");
  }
  return p < 0 ? p + num : p;
}

// weight [num, dim] and ids S give S + [dim].
StatusOr<Shape> EmbeddingRule(const ShapeContext& ctx, const Shape& weight, const Shape& ids) {
  if (weight.rank() != 2 || weight.dim(0) == kBatchDim || weight.dim(1) == kBatchDim) {
    return ctx.Error("weight must be [num, dim] with known sizes, got " + weight.ToString());
  }
  BF_RETURN_IF_ERROR(PaddingRow(ctx, weight.dim(0)).status());
  std::vector<int64_t> dims = ids.dims();
  dims.push_back(weight.dim(1));
  return Shape(std::move(dims));
}

// Equal shapes, where an open dimension agrees with any size.
bool ShapesAgree(const Shape& a, const Shape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) != b.dim(i) && a.dim(i) != kBatchDim && b.dim(i) != kBatchDim) return false;
  }
  return true;
}

// Checks every id against num rows before any is used.
Status CheckIds(const Tensor& ids, const Shape& weight) {
  for (int64_t i = 0; i < ids.num_elements(); ++i) {
    const int64_t id = ids.id(i);
    if (id < 0 || id >= weight.dim(0)) {
      return InvalidArgumentError("id " + std::to_string(id) + " at index " + std::to_string(i) +
                                  " is not a row of weight " + weight.ToString());
    }
  }
  return Status::Ok();
}

template <typename T>
class EmbeddingKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) const override {
    const Tensor& weight = *ctx.inputs[0];
    const Tensor& ids = *ctx.inputs[1];
    BF_RETURN_IF_ERROR(CheckIds(ids, weight.shape()));
    const int64_t dim = weight.shape().dim(1);
    const T* w = weight.data<T>();
    T* y = ctx.output->data<T>();
    for (int64_t i = 0; i < ids.num_elements(); ++i) {
      const T* row = w + ids.id(i) * dim;
      std::copy(row, row + dim, y + i * dim);
    }
    return Status::Ok();
  }
};

// Inputs ids, dy, weight (for its shape).
template <typename T>
class EmbeddingGradKernel : public Kernel {
 public:
  explicit EmbeddingGradKernel(int64_t padding_row) : padding_row_(padding_row) {}
  Status Run(KernelContext& ctx) const override {
    const Tensor& ids = *ctx.inputs[0];
    const Shape& weight = ctx.inputs[2]->shape();
    BF_RETURN_IF_ERROR(CheckIds(ids, weight));
    const int64_t dim = weight.dim(1);
    const T* dy = ctx.inputs[1]->data<T>();
    T* dw = ctx.output->data<T>();
    std::fill(dw, dw + ctx.output->num_elements(), T(0));
    for (int64_t i = 0; i < ids.num_elements(); ++i) {
      const int64_t r = ids.id(i);
      if (r == padding_row_) continue;
      for (int64_t j = 0; j < dim; ++j) dw[r * dim + j] += dy[i * dim + j];
    }
    return Status::Ok();
  }

 private:
  int64_t padding_row_;
};

constexpr AttrSpec kPaddingSpec = {
    .name = "padding_idx",
    .type = AttrType::kInt,
    .description = "optional, in [-num, num): this id's row gets no gradient (PyTorch)"};

class EmbeddingGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override { return {kPaddingSpec}; }
  bool accepts_integer(int input) const override { return input == 1; }
  OpDoc doc() const override {
    return {.summary = "Rows of a table gathered by integer ids (token or class embeddings).",
            .inputs = {{"weight", "w, [num, dim], float"},
                       {"ids", "int32 or int64, any shape S (N may be open), each in [0, num)"}},
            .output = "S + [dim]",
            .forward = "y[s, :] = w[ids[s], :]",
            .gradient = "dL/dw[r, :] = sum of dy[s, :] over s with ids[s] = r (none for "
                        "r = padding_idx); ids: none"};
  }
  int64_t Flops(const FlopsContext&) const override { return 0; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    return EmbeddingRule(ctx, ctx.inputs[0], ctx.inputs[1]);
  }
  // y's row r holds the table rows that row r of ids picks (y is ids' shape + [dim]).
  Rows BatchRows(const RowsContext& ctx) const override { return RowsOfInput(ctx, 1); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<EmbeddingKernel>(ctx.dtype);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (ctx.needs_grad(1)) {
      return InvalidArgumentError("node '" + ctx.node().name +
                                  "' (embedding): ids have no gradient, but a gradient must flow "
                                  "to them");
    }
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(ValueId dw, ctx.Emit("embedding_grad",
                                             {ctx.input(1), ctx.output_grad(), ctx.input(0)},
                                             ctx.node().attrs));
    ctx.SetGrad(0, dw);
    return Status::Ok();
  }
};

class EmbeddingGradGate : public Gate {
 public:
  Arity arity() const override { return {3, 3}; }
  std::vector<AttrSpec> attr_specs() const override { return {kPaddingSpec}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  bool accepts_integer(int input) const override { return input == 0; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(const Shape y, EmbeddingRule(ctx, ctx.inputs[2], ctx.inputs[0]));
    if (!ShapesAgree(ctx.inputs[1], y)) {
      return ctx.Error("dy must be " + y.ToString() + ", got " + ctx.inputs[1].ToString());
    }
    return ctx.inputs[2];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const int64_t num = ctx.inputs[2].dim(0);
    int64_t padding = -1;
    if (ctx.attrs.Has("padding_idx")) {
      padding = ctx.attrs.GetInt("padding_idx", -1);
      if (padding < 0) padding += num;
    }
    return MakeTypedKernel<EmbeddingGradKernel>(ctx.dtype, padding);
  }
};

}  // namespace

void RegisterEmbeddingGates(GateRegistry& registry) {
  (void)registry.Register("embedding", std::make_unique<EmbeddingGate>());
  (void)registry.Register("embedding_grad", std::make_unique<EmbeddingGradGate>());
}

}  // namespace backflow
