// Fuzz target: graph import and validation. The input is a serialized backflow.v1.Graph, as a
// CreateModel, Evaluate or CheckGradients request carries it; ImportGraph must answer any of
// them with a Status, and a graph it accepts must take the backward pass of its loss (what
// CreateModel's trainer builds next) without crashing.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "engine/api/import.h"
#include "engine/autodiff/autodiff.h"
#include "fuzz/fuzz_limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  backflow::v1::Graph proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  backflow::StatusOr<backflow::Graph> graph = backflow::ImportGraph(proto, backflow::fuzz::Limits());
  if (!graph.ok() || graph->loss() == backflow::kNoId) return 0;
  std::vector<backflow::ValueId> wrt = graph->ValuesOfKind(backflow::ValueKind::kParameter);
  (void)backflow::AppendBackward(*graph, graph->loss(), wrt);
  return 0;
}
