// The built-in gates: every family in engine/gates/, registered by name. The op reference
// (docs/ops.md) is generated from this registry.
//
// Thread safety: BuiltinGates() is built once, thread-safely, and never changes after.
#ifndef BACKFLOW_ENGINE_GATES_BUILTIN_H_
#define BACKFLOW_ENGINE_GATES_BUILTIN_H_

#include "engine/ir/gate_registry.h"

namespace backflow {

// Adds every built-in gate family to `registry`.
void RegisterBuiltinGates(GateRegistry& registry);

// The process's registry of every built-in gate.
const GateRegistry& BuiltinGates();

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BUILTIN_H_
