// Evaluate: one stateless forward (and optionally backward) pass of a graph on given values: the
// computation behind the Evaluate RPC (proto/backflow/v1/service.proto). Nothing is kept between
// calls: each builds, runs and drops its own Program, unless the caller keeps what
// PrepareEvaluation made (the graph with its backward, compiled into a Program) and runs it again
// with RunEvaluation, as the server's Evaluate cache does (server/evaluate_cache.h).
//
// Contract (every error is InvalidArgument naming the offending tensor, unless said otherwise):
//   dtype      The values' dtype; all values must share it ("value 'b' is float64 but value 'a'
//              is float32: all values must share one dtype", names in sorted order). With no
//              values: spec.dtype, else float32. spec.dtype set and different from the values'
//              dtype is an error.
//   values     Each name must be a placeholder or a parameter of the graph ("value 'q': not a
//              placeholder or parameter of the graph"): constants and node outputs cannot be fed.
//              Every placeholder the requested outputs and gradients read must have a value
//              ("placeholder 'x' has no value"); placeholders nothing requested reads may be
//              left out. Parameters without a value take their initializer's value drawn with
//              spec.seed (engine/optim/initializers.h), so two calls with one seed agree.
//              Shapes are checked by Program::Run against the declared ones (the batch
//              dimension matches any size, the same in every value), naming the tensor, for the
//              values the run reads; values it does not read are checked only for name and
//              dtype. Non-finite elements (NaN, inf) are accepted and flow through the math as
//              IEEE arithmetic says: the caller sees NaN or inf in the results, not an error.
//   outputs    Empty: the graph's outputs, then its loss if it has one that is not among them.
//              Any value of the graph may be named (placeholders, parameters, constants and
//              nodes); an unknown name is an error ("output 'z' is not in the graph").
//   target     Empty: the graph's loss. It must name a value holding exactly one element
//              ("target 'h' has shape [N, 10]: ..."), and is checked whenever one is named
//              explicitly, even with no wrt.
//   wrt        Values to differentiate the target by: placeholders, parameters, nodes, and also
//              constants, whose gradient is the target's sensitivity to the constant's value at
//              that value (as AppendBackward treats any value). Unknown names are an error
//              ("wrt 'z' is not in the graph"); wrt without a target and without a loss is an
//              error ("no target: the graph has no loss; set target"). A value that does not
//              influence the target gets zeros. A gradient that must flow through a gate without
//              one (the labels of a loss, accuracy) fails as AppendBackward reports it.
//   mode       Training or inference (Note [Training and inference mode] in engine/ir/run_info.h):
//              dropout drops and batch norm uses batch statistics only in training. kAuto, the
//              default, is training when gradients are asked for (wrt not empty), else inference,
//              so a gradient is the one a training step would take and a forward pass is the
//              one Infer would compute. Random gates draw from (spec.seed, step 0, node).
//   run        Honoured before parameters are initialised and between nodes: CANCELLED once
//              *run.cancelled is true, DEADLINE_EXCEEDED past run.deadline.
//
// Results keep request order: outputs in the order of spec.outputs (or the default list above),
// gradients in the order of spec.wrt, each shaped like its wrt value with the run's batch size.
//
// Thread safety: Evaluate touches only its arguments; any number of calls may run at once.
#ifndef BACKFLOW_ENGINE_API_EVALUATE_H_
#define BACKFLOW_ENGINE_API_EVALUATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "engine/ir/graph.h"

namespace backflow {

enum class EvaluateMode { kAuto, kTraining, kInference };

struct EvaluateSpec {
  std::vector<std::string> outputs;  // empty: the graph's outputs and loss
  std::string target;                // empty: the graph's loss
  std::vector<std::string> wrt;      // d target / d each of these
  uint64_t seed = 0;                 // for parameters without a value
  std::optional<DType> dtype;        // used when there are no values; else must match them
  EvaluateMode mode = EvaluateMode::kAuto;
};

struct EvaluateResult {
  std::vector<std::pair<std::string, Tensor>> outputs;    // by output name, in request order
  std::vector<std::pair<std::string, Tensor>> gradients;  // by wrt name, in wrt order
};

// Runs `graph` (as ImportGraph made it, limits applied by the caller) on `values` as the contract
// above says. Takes the graph by value because the backward is appended to it.
StatusOr<EvaluateResult> Evaluate(Graph graph,
                                  const std::unordered_map<std::string, Tensor>& values,
                                  const EvaluateSpec& spec, const RunOptions& run = {});

// The part of Evaluate that depends only on the graph and spec.outputs, target and wrt: the
// graph with its backward, its Program (which keeps the plans it compiles), and what to fetch.
// Immutable once made; any number of RunEvaluation calls may share one at once.
struct PreparedEvaluation {
  std::shared_ptr<const Program> program;
  std::vector<ValueId> outputs;                 // resolved from spec.outputs
  std::vector<ValueId> gradients;               // the gradient of the target by each of spec.wrt
  std::vector<std::string> wrt;                 // spec.wrt, the gradients' names in the result
  std::vector<bool> needed;                     // ValuesNeededFor(outputs + gradients)
  NodeId backward_begin = 0, backward_end = 0;  // the nodes AppendBackward added
};
// The values' checks of the contract that come before anything about outputs, target and wrt
// (dtype, then names): Evaluate makes them first, and so should a caller of PrepareEvaluation
// for the same errors in the same order.
Status CheckEvaluationValues(const Graph& graph,
                             const std::unordered_map<std::string, Tensor>& values,
                             const EvaluateSpec& spec);
StatusOr<std::shared_ptr<const PreparedEvaluation>> PrepareEvaluation(Graph graph,
                                                                      const EvaluateSpec& spec);
// Evaluate on a prepared graph; of `spec`, reads the values' dtype, seed and mode only (outputs,
// target and wrt are those it was prepared with). The same results as Evaluate.
StatusOr<EvaluateResult> RunEvaluation(const PreparedEvaluation& prepared,
                                       const std::unordered_map<std::string, Tensor>& values,
                                       const EvaluateSpec& spec, const RunOptions& run = {});

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_EVALUATE_H_
