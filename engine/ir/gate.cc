#include "engine/ir/gate.h"

#include <algorithm>

#include "engine/core/saturating.h"

namespace backflow {

Status ShapeContext::Error(std::string_view message) const {
  return InvalidArgumentError("node '" + std::string(node) + "': " + std::string(message));
}

Status ShapeContext::SameShapes(std::string_view names) const {
  bool same = true;
  std::string got;
  for (const Shape& shape : inputs) {
    same = same && shape == inputs[0];
    got += (got.empty() ? "" : ", ") + shape.ToString();
  }
  if (same) return Status::Ok();
  return Error(std::string(names) + " must share one shape, got " + got);
}

StatusOr<Shape> Gate::CheckAndInferShape(std::string_view node, std::string_view op,
                                         std::span<const Shape> inputs,
                                         const Attributes& attrs) const {
  const std::string where = "node '" + std::string(node) + "' (" + std::string(op) + "): ";
  const Arity a = arity();
  const int n = static_cast<int>(inputs.size());
  if (n < a.min || (a.max != Arity::kVariadic && n > a.max)) {
    std::string expected = a.min == a.max ? std::to_string(a.min)
                           : a.max == Arity::kVariadic
                               ? "at least " + std::to_string(a.min)
                               : std::to_string(a.min) + " to " + std::to_string(a.max);
    return InvalidArgumentError(where + "takes " + expected + " input(s), got " +
                                std::to_string(n));
  }
  const std::vector<AttrSpec> specs = attr_specs();
  for (const auto& [name, value] : attrs.all()) {
    // Not captured directly: clang 14 (the fuzz preset) cannot capture a structured binding.
    auto it = std::find_if(specs.begin(), specs.end(),
                           [&key = name](const AttrSpec& s) { return s.name == key; });
    if (it == specs.end()) {
      std::string known;
      for (const AttrSpec& s : specs) known += (known.empty() ? "" : ", ") + std::string(s.name);
      return InvalidArgumentError(where + "unknown attribute '" + name + "' (known: " +
                                  (known.empty() ? "none" : known) + ")");
    }
    if (!AttrTypeAccepts(it->type, TypeOf(value))) {
      return InvalidArgumentError(where + "attribute '" + name + "' must be " +
                                  std::string(AttrTypeName(it->type)) + ", got " +
                                  std::string(AttrTypeName(TypeOf(value))));
    }
  }
  for (const AttrSpec& s : specs) {
    if (s.required && !attrs.Has(s.name)) {
      return InvalidArgumentError(where + "missing required attribute '" + std::string(s.name) +
                                  "' (" + std::string(AttrTypeName(s.type)) + ")");
    }
  }
  return InferShape(ShapeContext{node, inputs, attrs});
}

int64_t FlopsContext::Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape.dims()) n = SaturatingMul(n, d < 0 ? 0 : d);
  return n;
}

int64_t Gate::Flops(const FlopsContext& ctx) const { return FlopsContext::Elements(ctx.output); }

Rows Gate::BatchRows(const RowsContext& ctx) const {
  return ctx.AllNone() ? Rows::kNone : Rows::kMixed;
}

Status Gate::Backward(BackwardContext& ctx) const {
  return InvalidArgumentError("node '" + ctx.node().name + "' (" + ctx.node().op +
                              "): has no gradient, but a gradient must flow through it");
}

}  // namespace backflow
