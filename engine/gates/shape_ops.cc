#include "engine/gates/shape_ops.h"

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/checked.h"
#include "engine/gates/batch_rows.h"
#include "engine/gates/copy_kernel.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// "[2, -1, 0]": a reshape target as written (Shape::ToString would print -1 as N).
std::string TargetString(const std::vector<int64_t>& target) {
  std::string s = "[";
  for (size_t i = 0; i < target.size(); ++i) s += (i ? ", " : "") + std::to_string(target[i]);
  return s + "]";
}

// The dimensions of a shape split into the product of the known ones and the number of open
// ones (each the run's batch size, unknown until then).
struct DimCount {
  int64_t known = 1;
  int open = 0;
  bool overflow = false;  // the known dimensions multiply past INT64_MAX (known is then 0)
};

DimCount CountDims(const std::vector<int64_t>& dims, int skip) {
  DimCount count;
  std::vector<int64_t> known;
  for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
    if (i == skip) continue;
    if (dims[static_cast<size_t>(i)] == kBatchDim) {
      ++count.open;
    } else {
      known.push_back(dims[static_cast<size_t>(i)]);
    }
  }
  const std::optional<int64_t> product = CheckedProduct(known);
  count.known = product.value_or(0);
  count.overflow = !product;
  return count;
}

// True if some whole factor f >= 1 makes a * f == b.
bool Divides(int64_t a, int64_t b) { return a == 0 ? b == 0 : b % a == 0; }

// Fills in the -1 at `infer_at` (if any) and checks that the element counts of x and `dims` can
// agree. With open dimensions on x that `dims` does not copy, the counts depend on the batch, so
// only what holds for every batch size is checked.
Status ResolveCount(const ShapeContext& ctx, const std::vector<int64_t>& target, int infer_at,
                    std::vector<int64_t>& dims) {
  const DimCount in = CountDims(ctx.inputs[0].dims(), -1);
  const DimCount out = CountDims(dims, infer_at);
  const std::string what =
      "cannot reshape " + ctx.inputs[0].ToString() + " into " + TargetString(target);
  if (in.overflow || out.overflow) {
    return ctx.Error(what + ": the dimensions of " + (in.overflow ? "x" : "shape") +
                     " multiply past INT64_MAX");
  }
  const bool batch_left = out.open < in.open;  // x's count has a factor N that dims lacks
  if (infer_at >= 0) {
    if (out.known == 0) {
      return ctx.Error(what + ": -1 cannot be inferred when the other dimensions multiply to 0");
    }
    if (batch_left) {
      dims[static_cast<size_t>(infer_at)] = kBatchDim;
    } else if (in.known % out.known != 0) {
      return ctx.Error(what + ": " + std::to_string(in.known) + " elements are not a multiple of " +
                       std::to_string(out.known));
    } else {
      dims[static_cast<size_t>(infer_at)] = in.known / out.known;
    }
    return Status::Ok();
  }
  if (batch_left ? !Divides(in.known, out.known) : in.known != out.known) {
    return ctx.Error(what + ": element counts differ (" + std::to_string(in.known) +
                     (batch_left ? " per batch row" : "") + " vs " + std::to_string(out.known) +
                     ")");
  }
  return Status::Ok();
}

StatusOr<Shape> ReshapeRule(const ShapeContext& ctx) {
  const Shape& in = ctx.inputs[0];
  const std::vector<int64_t> target = ctx.attrs.GetInts("shape");
  std::vector<int64_t> dims = target;
  int infer_at = -1;
  for (int i = 0; i < static_cast<int>(target.size()); ++i) {
    const int64_t t = target[static_cast<size_t>(i)];
    const std::string where = "shape[" + std::to_string(i) + "] is " + std::to_string(t);
    if (t == -1) {
      if (infer_at >= 0) {
        return ctx.Error(where + ", but shape[" + std::to_string(infer_at) +
                         "] is -1 already: only one dimension may be inferred");
      }
      infer_at = i;
    } else if (t < -1) {
      return ctx.Error(where + ": dimensions must be positive, 0 (copy) or -1 (infer)");
    } else if (t == 0) {
      if (i >= in.rank()) {
        return ctx.Error(where + " (copy), but the input " + in.ToString() + " has rank " +
                         std::to_string(in.rank()));
      }
      dims[static_cast<size_t>(i)] = in.dim(i);
    }
  }
  BF_RETURN_IF_ERROR(ResolveCount(ctx, target, infer_at, dims));
  return Shape(std::move(dims));
}

// Both reshape gates compile to a copy, once the concrete counts are known to agree.
StatusOr<std::unique_ptr<Kernel>> CompileCopy(const CompileContext& ctx) {
  if (ctx.inputs[0].num_elements() != ctx.output.num_elements()) {
    return InvalidArgumentError("node '" + std::string(ctx.node) + "': cannot copy " +
                                ctx.inputs[0].ToString() + " into " + ctx.output.ToString() +
                                ": element counts differ");
  }
  return std::unique_ptr<Kernel>(std::make_unique<CopyKernel>());
}

class ReshapeGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "shape",
             .type = AttrType::kInts,
             .required = true,
             .description = "the new shape (ONNX Reshape): 0 copies x's dimension at that index, "
                            "one -1 is inferred from the element count"}};
  }
  OpDoc doc() const override {
    return {.summary = "The same elements, in row-major order, in a new shape.",
            .inputs = {{"x", "any shape; N may be open"}},
            .output = "`shape`, with its 0s and -1 resolved; as many elements as x",
            .forward = "y = x viewed as shape",
            .gradient = "dL/dx = dy viewed as x's shape"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ReshapeRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return ReshapedRows(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return CompileCopy(ctx);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(ValueId grad, ctx.Emit("reshape_like", {ctx.output_grad(), ctx.input(0)}));
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }
};

// Internal: dy's elements in x's shape. Inputs: dy, x.
class ReshapeLikeGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    const Shape& dy = ctx.inputs[0];
    const Shape& x = ctx.inputs[1];
    if (dy.fully_defined() && x.fully_defined() && dy.num_elements() != x.num_elements()) {
      return ctx.Error("cannot reshape " + dy.ToString() + " like " + x.ToString() +
                       ": element counts differ");
    }
    return x;
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return CompileCopy(ctx);
  }
};

}  // namespace

void RegisterShapeGates(GateRegistry& registry) {
  (void)registry.Register("reshape", std::make_unique<ReshapeGate>());
  (void)registry.Register("reshape_like", std::make_unique<ReshapeLikeGate>());
}

}  // namespace backflow
