#include "engine/ir/attributes.h"

namespace backflow {

std::string_view AttrTypeName(AttrType type) {
  switch (type) {
    case AttrType::kInt: return "int";
    case AttrType::kFloat: return "float";
    case AttrType::kString: return "string";
    case AttrType::kInts: return "ints";
    case AttrType::kFloats: return "floats";
  }
  return "?";
}

AttrType TypeOf(const AttrValue& value) { return static_cast<AttrType>(value.index()); }

bool AttrTypeAccepts(AttrType expected, AttrType actual) {
  return expected == actual || (expected == AttrType::kFloat && actual == AttrType::kInt) ||
         (expected == AttrType::kFloats && actual == AttrType::kInts);
}

const AttrValue* Attributes::Find(std::string_view name) const {
  auto it = map_.find(std::string(name));
  return it == map_.end() ? nullptr : &it->second;
}

int64_t Attributes::GetInt(std::string_view name, int64_t fallback) const {
  const AttrValue* v = Find(name);
  return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : fallback;
}

double Attributes::GetFloat(std::string_view name, double fallback) const {
  const AttrValue* v = Find(name);
  if (!v) return fallback;
  if (auto* d = std::get_if<double>(v)) return *d;
  if (auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  return fallback;
}

std::string Attributes::GetString(std::string_view name, std::string fallback) const {
  const AttrValue* v = Find(name);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : fallback;
}

std::vector<int64_t> Attributes::GetInts(std::string_view name,
                                         std::vector<int64_t> fallback) const {
  const AttrValue* v = Find(name);
  if (v && std::holds_alternative<std::vector<int64_t>>(*v)) {
    return std::get<std::vector<int64_t>>(*v);
  }
  return fallback;
}

std::vector<double> Attributes::GetFloats(std::string_view name,
                                          std::vector<double> fallback) const {
  const AttrValue* v = Find(name);
  if (!v) return fallback;
  if (auto* d = std::get_if<std::vector<double>>(v)) return *d;
  if (auto* i = std::get_if<std::vector<int64_t>>(v)) return {i->begin(), i->end()};
  return fallback;
}

}  // namespace backflow
