// Attributes: the typed, named settings of a node (axes, alpha, stride, ...).
#ifndef BACKFLOW_ENGINE_IR_ATTRIBUTES_H_
#define BACKFLOW_ENGINE_IR_ATTRIBUTES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace backflow {

enum class AttrType { kInt, kFloat, kString, kInts, kFloats };
std::string_view AttrTypeName(AttrType type);  // "int", "float", "string", "ints", "floats"

using AttrValue =
    std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;
AttrType TypeOf(const AttrValue& value);

// True if a value of type `actual` may stand where `expected` is declared: the same type, or an
// int where a float is expected (text format writes `f: 2` and `i: 2` alike for people).
bool AttrTypeAccepts(AttrType expected, AttrType actual);

class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<std::pair<const std::string, AttrValue>> init) : map_(init) {}

  void Set(std::string name, AttrValue value) { map_[std::move(name)] = std::move(value); }
  bool Has(std::string_view name) const { return map_.find(std::string(name)) != map_.end(); }
  const AttrValue* Find(std::string_view name) const;

  // Typed reads. Types were checked against the gate's AttrSpecs when the node was added, so
  // these fall back to `fallback` only when the attribute is absent.
  int64_t GetInt(std::string_view name, int64_t fallback) const;
  double GetFloat(std::string_view name, double fallback) const;
  std::string GetString(std::string_view name, std::string fallback) const;
  std::vector<int64_t> GetInts(std::string_view name, std::vector<int64_t> fallback = {}) const;
  std::vector<double> GetFloats(std::string_view name, std::vector<double> fallback = {}) const;

  const std::map<std::string, AttrValue>& all() const { return map_; }

 private:
  std::map<std::string, AttrValue> map_;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_ATTRIBUTES_H_
