#include "engine/ir/gate_registry.h"

namespace backflow {

Status GateRegistry::Register(std::string op, std::unique_ptr<Gate> gate) {
  if (gates_.count(op)) return AlreadyExistsError("gate '" + op + "' is already registered");
  gates_.emplace(std::move(op), std::move(gate));
  return Status::Ok();
}

const Gate* GateRegistry::Find(std::string_view op) const {
  auto it = gates_.find(op);
  return it == gates_.end() ? nullptr : it->second.get();
}

StatusOr<const Gate*> GateRegistry::Lookup(std::string_view op) const {
  if (const Gate* gate = Find(op)) return gate;
  std::string known;
  for (const std::string& name : PublicOps()) known += (known.empty() ? "" : ", ") + name;
  return InvalidArgumentError("unknown op '" + std::string(op) + "' (known ops: " + known + ")");
}

std::vector<std::string> GateRegistry::PublicOps() const {
  std::vector<std::string> names;
  for (const auto& [name, gate] : gates_) {
    if (!gate->internal()) names.push_back(name);
  }
  return names;
}

}  // namespace backflow
