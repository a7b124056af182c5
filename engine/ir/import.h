// Import: the wire format's backflow.v1.Graph -> the engine's Graph (engine/ir/graph.h).
//
// ImportGraph is the gate every client graph passes through, so it assumes nothing about its
// input: nodes may come in any order (they are sorted topologically), and every problem comes
// back as a Status naming the offending node or tensor and the reason, never as a crash:
//   - InvalidArgument for malformed graphs: "node 'h': input 'x2' is not defined";
//   - ResourceExhausted for graphs past a GraphLimits bound, naming the value and the limit
//     (the server maps those to RESOURCE_EXHAUSTED so clients can tell "too big" from "wrong").
// Gates internal to autodiff (Gate::internal()) are rejected: clients may not write them.
#ifndef BACKFLOW_ENGINE_IR_IMPORT_H_
#define BACKFLOW_ENGINE_IR_IMPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backflow/v1/graph.pb.h"
#include "engine/core/status.h"
#include "engine/ir/graph.h"
#include "engine/ir/tensor_proto.h"  // TensorFromProto, TensorToProto

namespace backflow {

// Bounds on what a client graph may ask of the server. The defaults suit a single server with
// some gigabytes of memory; the server's configuration may tighten them.
struct GraphLimits {
  // Gate nodes in the graph (placeholders, parameters and constants not counted).
  int64_t max_nodes = 10000;
  // Elements of any one tensor: placeholders (per sample: the open batch dimension counts as 1),
  // parameters, constants, initial values and the inferred outputs of nodes.
  int64_t max_tensor_elements = int64_t{1} << 28;
  // Elements of all parameters together: what one model pins in memory, before optimizer state.
  int64_t max_total_parameter_elements = int64_t{1} << 30;
  // Dimensions of any tensor, declared or inferred.
  int max_rank = 8;
  // Bytes in the graph's name and in any tensor, node or attribute name.
  size_t max_name_length = 256;
  // Inputs of any one node (add_n is the op that is variadic).
  int64_t max_inputs_per_node = 1024;
};

// Converts and validates `proto`. On success the Graph's nodes are in a topological order that
// keeps the proto's order where the data flow leaves a choice (Kahn's algorithm, ties by
// position), its outputs and loss are set, and every shape has been inferred. Parameters keep
// their initializer (engine/optim/initializers.h draws the values).
// Nodes may use the gates of `gates` (engine/api/import.h has the overload with the built-in
// ones, which is what servers and clients call).
StatusOr<Graph> ImportGraph(const backflow::v1::Graph& proto, const GateRegistry& gates,
                            const GraphLimits& limits = {});

// Parses protobuf text format ("nodes { name: 'h' op: 'add' inputs: 'x' inputs: 'w' }").
// InvalidArgument "graph text:LINE:COLUMN: MESSAGE" (1-based) for the first syntax error.
StatusOr<backflow::v1::Graph> ParseGraphText(std::string_view text);

// Reads and parses a text-format graph file (the models/ directory holds examples). NotFound if
// the file does not exist, InvalidArgument "PATH:LINE:COLUMN: MESSAGE" for parse errors.
StatusOr<backflow::v1::Graph> LoadGraphText(const std::string& path);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_IMPORT_H_
