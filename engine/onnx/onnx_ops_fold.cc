// Operators whose results are known at import time: constants and shape arithmetic.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "engine/core/checked.h"
#include "engine/onnx/onnx_known.h"
#include "engine/onnx/onnx_ops.h"

namespace backflow::onnx_import {
namespace {

int64_t MaxKnown(const NodeContext& ctx) { return ctx.translator().options().limits.max_tensor_elements; }

}  // namespace

Status ConstantOp(const NodeContext& ctx) {
  const onnx::NodeProto& node = ctx.node();
  if (node.attribute_size() != 1) return ctx.Error("expects exactly one value attribute");
  const onnx::AttributeProto& a = node.attribute(0);
  if (a.name() == "value") {
    BF_ASSIGN_OR_RETURN(Known k, KnownFromTensor(a.t(), "value", MaxKnown(ctx)));
    ctx.SetKnown(0, std::move(k));
  } else if (a.name() == "value_float") {
    ctx.SetKnown(0, Known::Floats({static_cast<double>(a.f())}, {}));
  } else if (a.name() == "value_floats") {
    ctx.SetKnown(0, Known::Floats(std::vector<double>(a.floats().begin(), a.floats().end()),
                                  {static_cast<int64_t>(a.floats_size())}));
  } else if (a.name() == "value_int") {
    ctx.SetKnown(0, Known::Ints({a.i()}, {}));
  } else if (a.name() == "value_ints") {
    ctx.SetKnown(0, Known::Ints(std::vector<int64_t>(a.ints().begin(), a.ints().end()),
                                {static_cast<int64_t>(a.ints_size())}));
  } else {
    return ctx.Error("attribute '" + a.name() + "' is not supported (value, value_float(s), "
                     "value_int(s) are)");
  }
  return Status::Ok();
}

Status IdentityOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Entry * entry, ctx.input(0));
  if (entry->known && entry->tensor.empty()) {
    ctx.SetKnown(0, *entry->known);
    return Status::Ok();
  }
  // An initializer is placed once, so that both names refer to one parameter.
  BF_ASSIGN_OR_RETURN(std::string tensor, ctx.Tensor(0));
  ctx.Alias(0, tensor);
  return Status::Ok();
}

Status ShapeOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Entry * entry, ctx.input(0));
  std::vector<int64_t> a, b;
  if (entry->known) {
    a = b = entry->known->shape;
  } else if (entry->initializer != nullptr) {
    a.assign(entry->initializer->dims().begin(), entry->initializer->dims().end());
    b = a;
  } else {
    BF_ASSIGN_OR_RETURN(std::string tensor, ctx.Tensor(0));
    BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(tensor));
    a = shapes.first.dims();
    b = shapes.second.dims();
  }
  const int64_t rank = static_cast<int64_t>(a.size());
  BF_ASSIGN_OR_RETURN(int64_t start, ctx.Int("start", 0));
  BF_ASSIGN_OR_RETURN(int64_t end, ctx.Int("end", rank));
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  Known k;
  k.a.assign(a.begin() + start, a.begin() + end);
  k.b.assign(b.begin() + start, b.begin() + end);
  k.shape = {end - start};
  ctx.SetKnown(0, std::move(k));
  return Status::Ok();
}

Status CastOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(int64_t to, ctx.Int("to", 0));
  const bool to_float = IsFloatType(static_cast<int32_t>(to));
  const bool to_int = to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32 ||
                      to == onnx::TensorProto::BOOL;
  if (!to_float && !to_int) return ctx.Error("casts to type " + std::to_string(to) + " are not supported");
  if (ctx.IsKnown(0)) {
    BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(0, "input"));
    if (to_float && !k.is_float) {
      if (k.batch_dependent()) return ctx.Error("casts a batch-dependent value to float");
      k = Known::Floats(std::vector<double>(k.a.begin(), k.a.end()), k.shape);
    } else if (to_int && k.is_float) {
      std::vector<int64_t> v;
      for (double x : k.f) {
        if (to != onnx::TensorProto::BOOL && !(x >= -0x1p63 && x < 0x1p63)) {  // NaN too
          return ctx.Error("casts " + std::to_string(x) + ", outside int64, to an integer");
        }
        v.push_back(to == onnx::TensorProto::BOOL ? x != 0 : static_cast<int64_t>(x));
      }
      k = Known::Ints(std::move(v), k.shape);
    }
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  if (!to_float) return ctx.Error("casts computed data to an integer type; backflow computes in floats");
  BF_ASSIGN_OR_RETURN(std::string tensor, ctx.Tensor(0));
  ctx.Alias(0, tensor);  // float to float: the model's dtype decides the precision
  return Status::Ok();
}

Status ConstantOfShapeOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Known shape, ctx.KnownInput(0, "the shape"));
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> dims, StaticInts(ctx, shape, "the shape"));
  // Zero dimensions count as 1 here, so an empty value's dimensions cannot multiply past int64.
  int64_t extent = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && extent > MaxKnown(ctx) / d)) {
      return ctx.Error("the shape is negative or too large");
    }
    extent *= std::max<int64_t>(d, 1);
  }
  const int64_t n = std::find(dims.begin(), dims.end(), 0) != dims.end() ? 0 : extent;
  Known value = Known::Floats({0.0}, {1});
  if (const onnx::AttributeProto* a = ctx.attr("value")) {
    BF_ASSIGN_OR_RETURN(value, KnownFromTensor(a->t(), "value", 1));
  }
  if (value.size() != 1) return ctx.Error("value must hold one element");
  Known k = value;
  k.shape = dims;
  if (k.is_float) {
    k.f.assign(static_cast<size_t>(n), value.f[0]);
  } else {
    k.a.assign(static_cast<size_t>(n), value.a[0]);
    k.b = k.a;
  }
  ctx.SetKnown(0, std::move(k));
  return Status::Ok();
}

// Range over integers, exactly (doubles would round past 2^53): s, s + d, ... while before l.
StatusOr<std::vector<int64_t>> IntRange(const NodeContext& ctx, int64_t s, int64_t l, int64_t d) {
  std::vector<int64_t> values;
  for (std::optional<int64_t> v = s; v && (d > 0 ? *v < l : *v > l); v = CheckedAdd(*v, d)) {
    if (static_cast<int64_t>(values.size()) >= MaxKnown(ctx)) {
      return ctx.Error("the range is too long");
    }
    values.push_back(*v);  // between s and l, so it fits; past l (or int64) ends the range
  }
  return values;
}

Status RangeOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Known start, ctx.KnownInput(0, "start"));
  BF_ASSIGN_OR_RETURN(Known limit, ctx.KnownInput(1, "limit"));
  BF_ASSIGN_OR_RETURN(Known delta, ctx.KnownInput(2, "delta"));
  BF_ASSIGN_OR_RETURN(double s, ScalarFloat(ctx, start, "start"));
  BF_ASSIGN_OR_RETURN(double l, ScalarFloat(ctx, limit, "limit"));
  BF_ASSIGN_OR_RETURN(double d, ScalarFloat(ctx, delta, "delta"));
  if (d == 0) return ctx.Error("delta is 0");
  if (!start.is_float && !limit.is_float && !delta.is_float) {
    BF_ASSIGN_OR_RETURN(std::vector<int64_t> ints,
                        IntRange(ctx, start.a[0], limit.a[0], delta.a[0]));
    const int64_t n = static_cast<int64_t>(ints.size());
    ctx.SetKnown(0, Known::Ints(std::move(ints), {n}));
    return Status::Ok();
  }
  const double count = std::max(std::ceil((l - s) / d), 0.0);
  if (!(count <= static_cast<double>(MaxKnown(ctx)))) return ctx.Error("the range is too long");
  std::vector<double> values;
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) values.push_back(s + static_cast<double>(i) * d);
  const int64_t n = static_cast<int64_t>(values.size());
  if (!start.is_float) return ctx.Error("start is an integer, but limit or delta is not");
  ctx.SetKnown(0, Known::Floats(std::move(values), {n}));
  return Status::Ok();
}

Status EqualOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Known x, ctx.KnownInput(0, "A"));
  BF_ASSIGN_OR_RETURN(Known y, ctx.KnownInput(1, "B"));
  BF_ASSIGN_OR_RETURN(Known k, KnownBinary(ctx, KnownOp::kEqual, x, y));
  ctx.SetKnown(0, std::move(k));
  return Status::Ok();
}

Status WhereOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Known c, ctx.KnownInput(0, "condition"));
  BF_ASSIGN_OR_RETURN(Known x, ctx.KnownInput(1, "X"));
  BF_ASSIGN_OR_RETURN(Known y, ctx.KnownInput(2, "Y"));
  BF_ASSIGN_OR_RETURN(Known k, KnownWhere(ctx, c, x, y));
  ctx.SetKnown(0, std::move(k));
  return Status::Ok();
}

}  // namespace backflow::onnx_import
