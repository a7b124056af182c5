// Import with the built-in gates: what servers, clients and tools call to turn a wire-format
// graph into an engine Graph. Everything else about import (GraphLimits, text format, errors)
// is in engine/ir/import.h, which this header includes.
#ifndef BACKFLOW_ENGINE_API_IMPORT_H_
#define BACKFLOW_ENGINE_API_IMPORT_H_

#include "backflow/v1/graph.pb.h"
#include "engine/core/status.h"
#include "engine/ir/graph.h"
#include "engine/ir/import.h"

namespace backflow {

// ImportGraph(proto, BuiltinGates(), limits).
StatusOr<Graph> ImportGraph(const backflow::v1::Graph& proto, const GraphLimits& limits = {});

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_IMPORT_H_
