#include "engine/api/import.h"

#include "engine/gates/builtin.h"

namespace backflow {

StatusOr<Graph> ImportGraph(const backflow::v1::Graph& proto, const GraphLimits& limits) {
  return ImportGraph(proto, BuiltinGates(), limits);
}

}  // namespace backflow
