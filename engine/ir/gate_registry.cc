#include "engine/gates/registry.h"

#include "engine/gates/binary.h"
#include "engine/gates/conv.h"
#include "engine/gates/gradient_ops.h"
#include "engine/gates/loss.h"
#include "engine/gates/matmul.h"
#include "engine/gates/pool.h"
#include "engine/gates/reduce.h"
#include "engine/gates/shape_ops.h"
#include "engine/gates/tensor_ops.h"
#include "engine/gates/unary.h"

namespace backflow {

const GateRegistry& GateRegistry::Builtin() {
  static const GateRegistry* const registry = [] {
    auto* r = new GateRegistry();
    RegisterBuiltinGates(*r);
    return r;
  }();
  return *registry;
}

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

void RegisterBuiltinGates(GateRegistry& registry) {
  RegisterBinaryGates(registry);
  RegisterConvGates(registry);
  RegisterPoolGates(registry);
  RegisterUnaryGates(registry);
  RegisterReduceGates(registry);
  RegisterShapeGates(registry);
  RegisterGradientGates(registry);
  RegisterLossGates(registry);
  RegisterMatMulGates(registry);
  RegisterTensorGates(registry);
}

}  // namespace backflow
