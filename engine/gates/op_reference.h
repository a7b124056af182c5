// The op reference (docs/ops.md): Markdown generated from a registry's gates, so that what users
// read about an op (inputs, attributes, formulas) is what the gate itself declares.
// backflow-opdoc (tools/opdoc/) prints it for BuiltinGates(); a test fails while docs/ops.md
// differs from it.
#ifndef BACKFLOW_ENGINE_GATES_OP_REFERENCE_H_
#define BACKFLOW_ENGINE_GATES_OP_REFERENCE_H_

#include <string>

#include "engine/ir/gate_registry.h"

namespace backflow {

// The command that regenerates docs/ops.md, as the file's header and the staleness test name it.
inline constexpr const char* kOpReferenceCommand =
    "cmake --build build/release --target backflow-opdoc && build/bin/backflow-opdoc > docs/ops.md";

// Every public op of `registry`, sorted by name, from Gate::doc(), arity() and attr_specs().
// Deterministic: the same registry gives the same bytes. An op without a doc gets an entry that
// says so (the gradient coverage test fails on it).
std::string OpReferenceMarkdown(const GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_OP_REFERENCE_H_
