// NodeContext: one ONNX node's attributes, inputs and outputs; Translator::Translate and the loss.
#include <algorithm>
#include <string>

#include "engine/onnx/onnx_translator.h"

namespace backflow::onnx_import {

int NodeContext::num_inputs() const {
  int n = node_.input_size();
  while (n > 0 && node_.input(n - 1).empty()) --n;
  return n;
}

bool NodeContext::has_input(int i) const { return i < node_.input_size() && !node_.input(i).empty(); }

int64_t NodeContext::opset() const { return t_.opset(); }

std::string NodeContext::label() const {
  if (!node_.name().empty()) return node_.name();
  return node_.output_size() > 0 ? node_.output(0) : std::string("?");
}

Status NodeContext::Error(std::string_view message) const {
  return InvalidArgumentError("ONNX node '" + label().substr(0, 200) + "' (" + op() + ", opset " +
                              std::to_string(opset()) + "): " + std::string(message));
}

const onnx::AttributeProto* NodeContext::attr(std::string_view name) const {
  for (const onnx::AttributeProto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

StatusOr<int64_t> NodeContext::Int(std::string_view name, int64_t fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::INT) {
    return Error("attribute '" + std::string(name) + "' must be an int");
  }
  return a->i();
}

StatusOr<double> NodeContext::Float(std::string_view name, double fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::FLOAT) {
    return Error("attribute '" + std::string(name) + "' must be a float");
  }
  return static_cast<double>(a->f());
}

StatusOr<std::string> NodeContext::String(std::string_view name, std::string fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::STRING) {
    return Error("attribute '" + std::string(name) + "' must be a string");
  }
  return a->s();
}

StatusOr<std::vector<int64_t>> NodeContext::Ints(std::string_view name,
                                                 std::vector<int64_t> fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::INTS) {
    return Error("attribute '" + std::string(name) + "' must be a list of ints");
  }
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

StatusOr<Entry*> NodeContext::input(int i) const {
  if (!has_input(i)) return Error("input " + std::to_string(i) + " is missing");
  Entry* entry = t_.Find(node_.input(i));
  if (entry == nullptr) {
    return Error("input '" + node_.input(i) + "' is not defined by an earlier node, an "
                 "initializer or a graph input (nodes must be in topological order)");
  }
  return entry;
}

StatusOr<std::string> NodeContext::Tensor(int i) const {
  BF_ASSIGN_OR_RETURN(Entry * entry, input(i));
  return t_.Place(*this, node_.input(i), *entry);
}

bool NodeContext::IsKnown(int i) const {
  if (!has_input(i)) return false;
  Entry* entry = t_.Find(node_.input(i));
  return entry != nullptr && entry->known.has_value();
}

StatusOr<Known> NodeContext::KnownInput(int i, std::string_view what) const {
  BF_ASSIGN_OR_RETURN(Entry * entry, input(i));
  if (entry->initializer != nullptr && !entry->known) {  // read as a setting, not trained
    return KnownFromTensor(*entry->initializer, "initializer '" + node_.input(i) + "'",
                           t_.options().limits.max_tensor_elements);
  }
  if (!entry->known) {
    return Error(std::string(what) + " ('" + node_.input(i) +
                 "') must be known when the model is imported (a constant, an initializer or "
                 "computed from shapes), but it is computed from the data");
  }
  return *entry->known;
}

StatusOr<std::pair<Shape, Shape>> NodeContext::Shapes(const std::string& tensor) const {
  return t_.Shapes(tensor);
}

StatusOr<std::string> NodeContext::Emit(int out, std::string_view suffix, std::string_view op,
                                        std::vector<std::string> inputs, AttrMap attrs) const {
  const std::string onnx_name = out < node_.output_size() ? node_.output(out) : label();
  const std::string name = suffix.empty() ? t_.NameFor(onnx_name)
                                          : t_.Unique(onnx_name + "/" + std::string(suffix));
  StatusOr<std::string> added = t_.AddNode(name, op, std::move(inputs), std::move(attrs));
  if (!added.ok()) {
    if (added.status().code() != StatusCode::kInvalidArgument) return added.status();
    return Error(added.status().message());
  }
  if (suffix.empty()) t_.Set(onnx_name, Entry{.tensor = name});
  return name;
}

// An output the node does not list is read by nobody: nothing to record (Translate refuses a
// node without output 0, so this is only ever an optional output left out).
void NodeContext::Alias(int out, const std::string& tensor) const {
  if (out < node_.output_size()) t_.Set(node_.output(out), Entry{.tensor = tensor});
}

void NodeContext::SetKnown(int out, Known value) const {
  if (out < node_.output_size()) t_.Set(node_.output(out), Entry{.known = std::move(value)});
}

void NodeContext::SetPendingPad(int out, std::string tensor, std::vector<int64_t> pads) const {
  if (out >= node_.output_size()) return;
  t_.Set(node_.output(out), Entry{.pending_pad = std::make_pair(std::move(tensor), std::move(pads))});
}

Status NodeContext::RequireUnused(int i, std::string_view what) const {
  if (i < node_.output_size() && !node_.output(i).empty() && t_.uses(node_.output(i)) > 0) {
    return Error(std::string(what) + " (output " + std::to_string(i) + ", '" + node_.output(i) +
                 "') is read by the graph; backflow does not compute it");
  }
  return Status::Ok();
}

Status Translator::Translate(const onnx::NodeProto& node) {
  NodeContext ctx(*this, node);
  if (!node.domain().empty() && node.domain() != "ai.onnx") {
    return ctx.Error("operators of domain '" + node.domain() + "' are not supported");
  }
  // Every operator backflow imports computes output 0 (fuzz/regressions/onnx_import/crash-1888d0:
  // a Shape node without outputs).
  if (node.output_size() == 0 || node.output(0).empty()) {
    return ctx.Error("the node has no output; every operator backflow imports has one");
  }
  const auto& table = OpTable();
  auto it = table.find(node.op_type());
  if (it == table.end()) {
    std::string list;
    for (const auto& [name, fn] : table) list += (list.empty() ? "" : ", ") + name;
    return ctx.Error("operator not supported; backflow imports " + list);
  }
  return it->second(ctx);
}

}  // namespace backflow::onnx_import
