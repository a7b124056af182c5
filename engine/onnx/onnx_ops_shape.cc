// Reshapes, transposes, slices, gathers and reductions.
#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "engine/core/checked.h"
#include "engine/onnx/onnx_known.h"
#include "engine/onnx/onnx_ops.h"

namespace backflow::onnx_import {
namespace {

// ONNX Reshape's target at one batch size: 0 copies the input's dimension (allowzero 0), one -1
// takes the rest of the elements.
StatusOr<Shape> ResolveReshape(const NodeContext& ctx, const Shape& in,
                               const std::vector<int64_t>& target) {
  std::vector<int64_t> dims = target;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 0) {
      if (static_cast<int>(i) >= in.rank()) return ctx.Error("shape copies a dimension the input lacks");
      dims[i] = in.dim(static_cast<int>(i));
    }
    if (dims[i] == -1) {
      if (infer >= 0) return ctx.Error("shape has two -1 entries");
      infer = static_cast<int>(i);
    } else if (dims[i] < 0) {
      return ctx.Error("shape has a negative entry " + std::to_string(dims[i]));
    } else if (const std::optional<int64_t> product = CheckedMul(known, dims[i])) {
      known = *product;
    } else {
      std::string text;
      for (int64_t t : target) text += (text.empty() ? "" : ", ") + std::to_string(t);
      return ctx.Error("shape [" + text + "] overflows: its dimensions multiply past INT64_MAX");
    }
  }
  if (infer >= 0) {
    const std::optional<int64_t> count = CheckedProduct(in.dims());
    if (known == 0 || !count || *count % known != 0) {
      return ctx.Error("cannot infer the -1 of the shape for an input of shape " + in.ToString());
    }
    dims[static_cast<size_t>(infer)] = *count / known;
  }
  return Shape(std::move(dims));
}

// The shape after Squeeze or Unsqueeze with normalised `axes`.
Shape SqueezeShape(const Shape& in, std::vector<int64_t> axes, bool unsqueeze) {
  std::vector<int64_t> dims;
  if (unsqueeze) {
    const int64_t rank = in.rank() + static_cast<int64_t>(axes.size());
    int64_t next = 0;
    for (int64_t i = 0; i < rank; ++i) {
      const bool added = std::find(axes.begin(), axes.end(), i) != axes.end();
      dims.push_back(added ? 1 : in.dim(static_cast<int>(next++)));
    }
  } else {
    for (int i = 0; i < in.rank(); ++i) {
      const bool removed = axes.empty() ? in.dim(i) == 1
                                        : std::find(axes.begin(), axes.end(), i) != axes.end();
      if (!removed) dims.push_back(in.dim(i));
    }
  }
  return Shape(std::move(dims));
}

// Axes from the attribute (before `input_from_opset`) or from input 1.
StatusOr<std::vector<int64_t>> AxesOf(const NodeContext& ctx, int64_t input_from_opset) {
  if (ctx.opset() < input_from_opset) return ctx.Ints("axes", {});
  if (!ctx.has_input(1)) return std::vector<int64_t>{};
  BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(1, "axes"));
  return StaticInts(ctx, k, "axes");
}

StatusOr<std::vector<int64_t>> Normalised(const NodeContext& ctx, std::vector<int64_t> axes,
                                          int64_t rank) {
  for (int64_t& a : axes) {
    BF_ASSIGN_OR_RETURN(a, Axis(ctx, a, rank, "axis"));
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) return ctx.Error("repeated axis");
  return axes;
}

}  // namespace

StatusOr<std::vector<int64_t>> ReshapeTarget(const NodeContext& ctx, const Shape& a,
                                             const Shape& b) {
  std::vector<int64_t> target;
  bool inferred = false;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) == b.dim(i)) {
      target.push_back(a.dim(i));
      continue;
    }
    const std::optional<int64_t> at_a = CheckedMul(a.dim(i), kBatchB);
    if (inferred || !at_a || at_a != CheckedMul(b.dim(i), kBatchA)) {
      return ctx.Error("the result's shape depends on the batch size in a way a backflow reshape "
                       "cannot express (more than one dimension, or not a multiple of it)");
    }
    inferred = true;
    target.push_back(-1);
  }
  return target;
}

Status EmitReshapeTo(const NodeContext& ctx, int out, const std::string& tensor, const Shape& a,
                     const Shape& b) {
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> target, ReshapeTarget(ctx, a, b));
  AttrMap attrs;
  attrs["shape"] = IntsAttr(target);
  return ctx.Emit(out, "", "reshape", {tensor}, attrs).status();
}

Status ReshapeOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Known target, ctx.KnownInput(1, "the shape"));
  BF_ASSIGN_OR_RETURN(int64_t allowzero, ctx.Int("allowzero", 0));
  if (target.is_float) return ctx.Error("the shape must be integers");
  if (allowzero && std::find(target.a.begin(), target.a.end(), 0) != target.a.end()) {
    return ctx.Error("allowzero 1 with a 0 in the shape (an empty tensor) is not supported");
  }
  if (ctx.IsKnown(0)) {
    BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(0, "data"));
    BF_ASSIGN_OR_RETURN(std::vector<int64_t> t, StaticInts(ctx, target, "the shape"));
    BF_ASSIGN_OR_RETURN(Shape s, ResolveReshape(ctx, Shape(k.shape), t));
    k.shape = s.dims();
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
  BF_ASSIGN_OR_RETURN(Shape a, ResolveReshape(ctx, shapes.first, target.a));
  BF_ASSIGN_OR_RETURN(Shape b, ResolveReshape(ctx, shapes.second, target.b));
  return EmitReshapeTo(ctx, 0, x, a, b);
}

Status FlattenOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 1));
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  AttrMap attrs;
  attrs["axis"] = IntAttr(axis);
  return ctx.Emit(0, "", "flatten", {x}, attrs).status();
}

Status TransposeOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> perm, ctx.Ints("perm", {}));
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  AttrMap attrs;
  if (!perm.empty()) attrs["perm"] = IntsAttr(perm);
  return ctx.Emit(0, "", "transpose", {x}, attrs).status();
}

Status SqueezeOp(const NodeContext& ctx) {
  const bool unsqueeze = ctx.op() == "Unsqueeze";
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(ctx, 13));
  if (unsqueeze && axes.empty()) return ctx.Error("axes is required");
  if (ctx.IsKnown(0)) {
    BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(0, "data"));
    const int64_t rank = static_cast<int64_t>(k.shape.size()) +
                         (unsqueeze ? static_cast<int64_t>(axes.size()) : 0);
    BF_ASSIGN_OR_RETURN(axes, Normalised(ctx, axes, rank));
    k.shape = SqueezeShape(Shape(k.shape), axes, unsqueeze).dims();
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
  const int64_t rank = shapes.first.rank() + (unsqueeze ? static_cast<int64_t>(axes.size()) : 0);
  BF_ASSIGN_OR_RETURN(axes, Normalised(ctx, axes, rank));
  for (int64_t a : axes) {
    if (!unsqueeze && (shapes.first.dim(static_cast<int>(a)) != 1 || shapes.second.dim(static_cast<int>(a)) != 1)) {
      return ctx.Error("axis " + std::to_string(a) + " does not have size 1");
    }
  }
  return EmitReshapeTo(ctx, 0, x, SqueezeShape(shapes.first, axes, unsqueeze),
                       SqueezeShape(shapes.second, axes, unsqueeze));
}

Status ConcatOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  bool all_known = true;
  for (int i = 0; i < ctx.num_inputs(); ++i) all_known = all_known && ctx.IsKnown(i);
  if (all_known) {
    std::vector<Known> parts;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(i, "input"));
      parts.push_back(std::move(k));
    }
    BF_ASSIGN_OR_RETURN(Known k, KnownConcat(ctx, parts, axis));
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  std::vector<std::string> inputs;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    BF_ASSIGN_OR_RETURN(std::string t, ctx.Tensor(i));
    inputs.push_back(t);
  }
  AttrMap attrs;
  attrs["axis"] = IntAttr(axis);
  return ctx.Emit(0, "", "concat", inputs, attrs).status();
}

Status SliceOp(const NodeContext& ctx) {
  std::vector<Known> parts;  // starts, ends, axes, steps
  if (ctx.opset() >= 10) {
    for (int i = 1; i <= 4; ++i) {
      if (!ctx.has_input(i)) break;
      BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(i, "starts, ends, axes and steps"));
      parts.push_back(std::move(k));
    }
  } else {
    for (const char* name : {"starts", "ends", "axes"}) {
      BF_ASSIGN_OR_RETURN(std::vector<int64_t> v, ctx.Ints(name, {}));
      if (!v.empty()) parts.push_back(Known::Ints(v, {static_cast<int64_t>(v.size())}));
    }
  }
  if (parts.size() < 2) return ctx.Error("starts and ends are required");
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> starts, StaticInts(ctx, parts[0], "starts"));
  std::vector<int64_t> axes, steps;
  if (parts.size() > 2) {
    BF_ASSIGN_OR_RETURN(axes, StaticInts(ctx, parts[2], "axes"));
  }
  if (parts.size() > 3) {
    BF_ASSIGN_OR_RETURN(steps, StaticInts(ctx, parts[3], "steps"));
  }
  if (ctx.IsKnown(0)) {
    BF_ASSIGN_OR_RETURN(Known data, ctx.KnownInput(0, "data"));
    BF_ASSIGN_OR_RETURN(std::vector<int64_t> ends, StaticInts(ctx, parts[1], "ends"));
    if (starts.size() != 1 || (!axes.empty() && axes[0] != 0 && axes[0] != -1)) {
      return ctx.Error("a known value is sliced along one axis only");
    }
    BF_ASSIGN_OR_RETURN(Known k, KnownSlice(ctx, data, starts[0], ends[0], steps.empty() ? 1 : steps[0]));
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
  std::vector<int64_t> ends;
  for (size_t i = 0; i < parts[1].a.size(); ++i) {
    if (parts[1].a[i] == parts[1].b[i]) {
      ends.push_back(parts[1].a[i]);
      continue;
    }
    // An end that follows the batch: the whole axis if it is the input's own size there.
    const int axis = axes.empty() ? static_cast<int>(i) : static_cast<int>(axes[i]);
    const bool whole = axis >= 0 && axis < shapes.first.rank() &&
                       parts[1].a[i] == shapes.first.dim(axis) && parts[1].b[i] == shapes.second.dim(axis);
    if (!whole) return ctx.Error("ends depends on the batch size, which backflow cannot fold here");
    ends.push_back(std::numeric_limits<int64_t>::max());
  }
  AttrMap attrs;
  attrs["starts"] = IntsAttr(starts);
  attrs["ends"] = IntsAttr(ends);
  if (!axes.empty()) attrs["axes"] = IntsAttr(axes);
  if (!steps.empty()) attrs["steps"] = IntsAttr(steps);
  return ctx.Emit(0, "", "slice", {x}, attrs).status();
}

Status GatherOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", 0));
  if (ctx.IsKnown(0) && ctx.IsKnown(1)) {
    BF_ASSIGN_OR_RETURN(Known data, ctx.KnownInput(0, "data"));
    BF_ASSIGN_OR_RETURN(Known indices, ctx.KnownInput(1, "indices"));
    BF_ASSIGN_OR_RETURN(Known k, KnownGather(ctx, data, indices, axis));
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  if (ctx.IsKnown(1)) {  // a fixed index into computed data: a slice, less the axis
    BF_ASSIGN_OR_RETURN(Known indices, ctx.KnownInput(1, "indices"));
    BF_ASSIGN_OR_RETURN(std::vector<int64_t> idx, StaticInts(ctx, indices, "indices"));
    if (!indices.shape.empty()) return ctx.Error("only a scalar index into computed data is supported");
    BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
    BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
    BF_ASSIGN_OR_RETURN(axis, Axis(ctx, axis, shapes.first.rank(), "axis"));
    const int64_t i = idx[0];
    if (i == std::numeric_limits<int64_t>::max()) {
      return ctx.Error("index " + std::to_string(i) + " is out of range");
    }
    AttrMap attrs;
    attrs["starts"] = IntsAttr({i});
    attrs["ends"] = IntsAttr({i == -1 ? std::numeric_limits<int64_t>::max() : i + 1});
    attrs["axes"] = IntsAttr({axis});
    BF_ASSIGN_OR_RETURN(std::string sliced, ctx.Emit(0, "slice", "slice", {x}, attrs));
    return EmitReshapeTo(ctx, 0, sliced, SqueezeShape(shapes.first, {axis}, false),
                         SqueezeShape(shapes.second, {axis}, false));
  }
  if (axis != 0) return ctx.Error("gathering computed indices is supported along axis 0 only (embeddings)");
  BF_ASSIGN_OR_RETURN(std::string weight, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(std::string ids, ctx.Tensor(1));
  return ctx.Emit(0, "", "embedding", {weight, ids}).status();
}

Status ReduceOp(const NodeContext& ctx) {
  const bool sum = ctx.op() == "ReduceSum";
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(ctx, sum ? 13 : 18));
  BF_ASSIGN_OR_RETURN(int64_t keepdims, ctx.Int("keepdims", 1));
  BF_ASSIGN_OR_RETURN(int64_t noop, ctx.Int("noop_with_empty_axes", 0));
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  if (axes.empty() && noop) {
    ctx.Alias(0, x);
    return Status::Ok();
  }
  AttrMap attrs;
  if (!axes.empty()) attrs["axes"] = IntsAttr(axes);
  attrs["keepdims"] = IntAttr(keepdims);
  return ctx.Emit(0, "", sum ? "sum" : "mean", {x}, attrs).status();
}

}  // namespace backflow::onnx_import
