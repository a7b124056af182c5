// GateRegistry: op name -> Gate. Gates are registered explicitly, never by static initialisers:
// the built-in ones by RegisterBuiltinGates (engine/gates/builtin.h), which also offers the
// shared registry holding them (BuiltinGates). This layer has no default registry: whoever builds
// a Graph says which gates it may use.
//
// Thread safety: Register is for set-up only; once a registry is shared, only const methods are
// called, and those are safe from any thread.
#ifndef BACKFLOW_ENGINE_IR_GATE_REGISTRY_H_
#define BACKFLOW_ENGINE_IR_GATE_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"
#include "engine/ir/gate.h"

namespace backflow {

class GateRegistry {
 public:
  // Fails with AlreadyExists if `op` is taken.
  Status Register(std::string op, std::unique_ptr<Gate> gate);

  // The gate for `op`, or InvalidArgument "unknown op 'x' (known ops: add, ...)".
  StatusOr<const Gate*> Lookup(std::string_view op) const;
  const Gate* Find(std::string_view op) const;
  // Sorted names of the gates clients may use (internal ones left out).
  std::vector<std::string> PublicOps() const;

 private:
  std::map<std::string, std::unique_ptr<Gate>, std::less<>> gates_;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_GATE_REGISTRY_H_
