// The value conversions of ImportGraph: initializers and attributes.
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "engine/ir/import_internal.h"
#include "engine/ir/tensor_proto.h"

namespace backflow::import_internal {
namespace {

namespace v1 = backflow::v1;
using Kind = InitializerSpec::Kind;

constexpr size_t kMaxQuotedName = 128;

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", v);
  return buffer;
}

Status CheckFinite(double v, const std::string& what) {
  if (std::isfinite(v)) return Status::Ok();
  return InvalidArgumentError(what + " is " + FormatDouble(v) + " (values must be finite)");
}

StatusOr<bool> IsNormal(int distribution, const std::string& what) {
  switch (distribution) {
    case v1::Initializer::DISTRIBUTION_UNIFORM:
      return false;
    case v1::Initializer::DISTRIBUTION_NORMAL:
      return true;
    default:
      return InvalidArgumentError(what + ": unknown distribution " + std::to_string(distribution) +
                                  " (expected DISTRIBUTION_UNIFORM or DISTRIBUTION_NORMAL)");
  }
}

StatusOr<InitializerSpec> RandomInitializer(const v1::Initializer& init, const std::string& where) {
  InitializerSpec spec;
  if (init.has_uniform()) {
    const std::string what = where + ": uniform initializer";
    spec = {.kind = Kind::kUniform, .a = init.uniform().low(), .b = init.uniform().high()};
    BF_RETURN_IF_ERROR(CheckFinite(spec.a, what + " low"));
    BF_RETURN_IF_ERROR(CheckFinite(spec.b, what + " high"));
    if (spec.a > spec.b) {
      return InvalidArgumentError(what + " has low " + FormatDouble(spec.a) + " > high " +
                                  FormatDouble(spec.b));
    }
    return spec;
  }
  const std::string what = where + ": normal initializer";
  spec = {.kind = Kind::kNormal, .a = init.normal().mean(), .b = init.normal().stddev()};
  BF_RETURN_IF_ERROR(CheckFinite(spec.a, what + " mean"));
  BF_RETURN_IF_ERROR(CheckFinite(spec.b, what + " stddev"));
  if (spec.b < 0) {
    return InvalidArgumentError(what + " has stddev " + FormatDouble(spec.b) + " < 0");
  }
  return spec;
}

StatusOr<InitializerSpec> ScaledInitializer(const v1::Initializer& init, const std::string& where) {
  InitializerSpec spec;
  if (init.has_he()) {
    spec.kind = Kind::kHe;
    BF_ASSIGN_OR_RETURN(spec.normal, IsNormal(init.he().distribution(), where + ": he"));
    return spec;
  }
  const std::string what = where + ": glorot initializer";
  spec.kind = Kind::kGlorot;
  BF_ASSIGN_OR_RETURN(spec.normal, IsNormal(init.glorot().distribution(), what));
  spec.a = init.glorot().gain() == 0 ? 1.0 : init.glorot().gain();  // proto3 default: gain 1
  BF_RETURN_IF_ERROR(CheckFinite(spec.a, what + " gain"));
  if (spec.a < 0) {
    return InvalidArgumentError(what + " has gain " + FormatDouble(spec.a) + " < 0");
  }
  return spec;
}

StatusOr<InitializerSpec> ValueInitializer(const v1::Tensor& proto, const std::string& where,
                                           const Shape& shape, int64_t max_elements) {
  const std::string what = where + ": initial value";
  BF_ASSIGN_OR_RETURN(Tensor value, TensorFromProto(proto, what, max_elements));
  if (value.shape() != shape) {
    return InvalidArgumentError(what + " has shape " + value.shape().ToString() + ", expected " +
                                shape.ToString());
  }
  BF_RETURN_IF_ERROR(CheckAllFinite(value, what));
  return InitializerSpec{.kind = Kind::kValue,
                         .value = std::make_shared<const Tensor>(std::move(value))};
}

StatusOr<backflow::AttrValue> ConvertAttrValue(const v1::AttrValue& value,
                                               const std::string& what) {
  switch (value.value_case()) {
    case v1::AttrValue::kI:
      return backflow::AttrValue(value.i());
    case v1::AttrValue::kF:
      BF_RETURN_IF_ERROR(CheckFinite(value.f(), what));
      return backflow::AttrValue(value.f());
    case v1::AttrValue::kS:
      return backflow::AttrValue(value.s());
    case v1::AttrValue::kInts:
      return backflow::AttrValue(
          std::vector<int64_t>(value.ints().values().begin(), value.ints().values().end()));
    case v1::AttrValue::kFloats: {
      std::vector<double> floats(value.floats().values().begin(), value.floats().values().end());
      for (size_t i = 0; i < floats.size(); ++i) {
        BF_RETURN_IF_ERROR(CheckFinite(floats[i], what + " element " + std::to_string(i)));
      }
      return backflow::AttrValue(std::move(floats));
    }
    case v1::AttrValue::VALUE_NOT_SET:
      break;
  }
  return InvalidArgumentError(what + " has no value (set one of i, f, s, ints, floats)");
}

}  // namespace

std::string Quote(std::string_view name) {
  if (name.size() <= kMaxQuotedName) return "'" + std::string(name) + "'";
  return "'" + std::string(name.substr(0, kMaxQuotedName)) + "...'";
}

StatusOr<InitializerSpec> ConvertInitializer(const v1::Initializer& init, const std::string& where,
                                             const Shape& shape, int64_t max_elements) {
  switch (init.kind_case()) {
    case v1::Initializer::KIND_NOT_SET:
    case v1::Initializer::kZeros:
      return InitializerSpec{};
    case v1::Initializer::kConstant: {
      BF_RETURN_IF_ERROR(CheckFinite(init.constant().value(), where + ": constant initializer"));
      return InitializerSpec{.kind = Kind::kConstant, .a = init.constant().value()};
    }
    case v1::Initializer::kUniform:
    case v1::Initializer::kNormal:
      return RandomInitializer(init, where);
    case v1::Initializer::kGlorot:
    case v1::Initializer::kHe:
      return ScaledInitializer(init, where);
    case v1::Initializer::kValue:
      return ValueInitializer(init.value(), where, shape, max_elements);
  }
  return InvalidArgumentError(where + ": unknown initializer kind");
}

StatusOr<Attributes> ConvertAttributes(const v1::Node& node, const std::string& where,
                                       size_t max_name_length) {
  const std::map<std::string, v1::AttrValue> sorted(node.attrs().begin(), node.attrs().end());
  Attributes attrs;
  for (const auto& [name, value] : sorted) {
    const std::string what = where + ": attribute " + Quote(name);
    if (name.size() > max_name_length) {
      return ResourceExhaustedError(what + ": name is " + std::to_string(name.size()) +
                                    " bytes, longer than the limit of " +
                                    std::to_string(max_name_length));
    }
    BF_ASSIGN_OR_RETURN(backflow::AttrValue converted, ConvertAttrValue(value, what));
    attrs.Set(name, std::move(converted));
  }
  return attrs;
}

}  // namespace backflow::import_internal
