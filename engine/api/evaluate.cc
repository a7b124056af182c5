#include "engine/api/evaluate.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "engine/autodiff/autodiff.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

using ValueMap = std::unordered_map<std::string, Tensor>;

std::string Quote(const std::string& name) { return "'" + name + "'"; }

std::vector<std::string> SortedNames(const ValueMap& values) {
  std::vector<std::string> names;
  names.reserve(values.size());
  for (const auto& [name, _] : values) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

// The dtype of the run: the float values' one dtype, else the requested one, else float32.
// Integer values (ids, labels) are not counted: the program checks them against placeholders.
StatusOr<DType> ResolveDType(const ValueMap& values, const std::vector<std::string>& sorted,
                             const std::optional<DType>& requested) {
  auto is_float = [&](const std::string& name) { return !IsInteger(values.at(name).dtype()); };
  auto found = std::find_if(sorted.begin(), sorted.end(), is_float);
  if (found == sorted.end()) return requested.value_or(DType::kFloat32);
  const std::string& first = *found;
  const DType dtype = values.at(first).dtype();
  for (const std::string& name : sorted) {
    const DType d = values.at(name).dtype();
    if (d == dtype || IsInteger(d)) continue;
    return InvalidArgumentError(
        "value " + Quote(name) + " is " + std::string(DTypeName(d)) + " but value " + Quote(first) +
        " is " + std::string(DTypeName(dtype)) + ": all values must share one dtype");
  }
  if (requested && *requested != dtype) {
    return InvalidArgumentError("value " + Quote(first) + " is " + std::string(DTypeName(dtype)) +
                                " but dtype " + std::string(DTypeName(*requested)) +
                                " was requested");
  }
  return dtype;
}

Status CheckValueNames(const Graph& graph, const std::vector<std::string>& sorted) {
  for (const std::string& name : sorted) {
    std::optional<ValueId> id = graph.Find(name);
    const bool feedable = id && (graph.value(*id).kind == ValueKind::kPlaceholder ||
                                 graph.value(*id).kind == ValueKind::kParameter ||
                                 graph.value(*id).kind == ValueKind::kState);
    if (!feedable) {
      return InvalidArgumentError("value " + Quote(name) +
                                  ": not a placeholder, parameter or state of the graph");
    }
  }
  return Status::Ok();
}

StatusOr<ValueId> FindValue(const Graph& graph, const std::string& name, const char* role) {
  std::optional<ValueId> id = graph.Find(name);
  if (!id) {
    return InvalidArgumentError(std::string(role) + " " + Quote(name) + " is not in the graph");
  }
  return *id;
}

// The requested outputs, or the graph's outputs and then its loss.
StatusOr<std::vector<ValueId>> ResolveOutputs(const Graph& graph, const EvaluateSpec& spec) {
  std::vector<ValueId> ids;
  if (spec.outputs.empty()) {
    ids = graph.outputs();
    const ValueId loss = graph.loss();
    if (loss != kNoId && std::find(ids.begin(), ids.end(), loss) == ids.end()) ids.push_back(loss);
    return ids;
  }
  for (const std::string& name : spec.outputs) {
    BF_ASSIGN_OR_RETURN(ValueId id, FindValue(graph, name, "output"));
    ids.push_back(id);
  }
  return ids;
}

// The target to differentiate, or kNoId when none is named and the graph has no loss.
StatusOr<ValueId> ResolveTarget(const Graph& graph, const EvaluateSpec& spec) {
  if (spec.target.empty()) {
    if (graph.loss() == kNoId && !spec.wrt.empty()) {
      return InvalidArgumentError("no target: the graph has no loss; set target");
    }
    return graph.loss();
  }
  BF_ASSIGN_OR_RETURN(ValueId id, FindValue(graph, spec.target, "target"));
  const Shape& shape = graph.value(id).shape;
  if (!shape.fully_defined() || shape.num_elements() != 1) {
    return InvalidArgumentError("target " + Quote(spec.target) + " has shape " + shape.ToString() +
                                ": a target must be a scalar (one element)");
  }
  return id;
}

// Appends the backward for spec.wrt and returns the gradients' value ids, in wrt order.
StatusOr<std::vector<ValueId>> AppendGradients(Graph& graph, ValueId target,
                                               const EvaluateSpec& spec) {
  if (spec.wrt.empty()) return std::vector<ValueId>{};
  std::vector<ValueId> wrt;
  for (const std::string& name : spec.wrt) {
    BF_ASSIGN_OR_RETURN(ValueId id, FindValue(graph, name, "wrt"));
    wrt.push_back(id);
  }
  return AppendBackward(graph, target, wrt);
}

Status CheckRunOptions(const RunOptions& run) {
  if (run.cancelled != nullptr && run.cancelled->load()) {
    return CancelledError("evaluation cancelled before it ran");
  }
  if (run.deadline && std::chrono::steady_clock::now() > *run.deadline) {
    return DeadlineExceededError("deadline passed before the evaluation ran");
  }
  return Status::Ok();
}

// Feeds for every needed placeholder (which must have a value) and parameter (its value, or its
// initializer's drawn into `initialized`).
StatusOr<FeedMap> BuildFeeds(const Graph& graph, const std::vector<bool>& needed,
                             const ValueMap& values, DType dtype, uint64_t seed,
                             ValueMap& initialized) {
  FeedMap feeds;
  for (const auto& [name, tensor] : values) feeds[name] = &tensor;
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (!needed[static_cast<size_t>(v)] || values.count(value.name) != 0) continue;
    if (value.kind == ValueKind::kPlaceholder) {
      return InvalidArgumentError("placeholder " + Quote(value.name) + " has no value");
    }
    if (value.kind != ValueKind::kParameter && value.kind != ValueKind::kState) continue;
    BF_ASSIGN_OR_RETURN(Tensor drawn, InitializeParameter(value, dtype, seed));
    feeds[value.name] = &initialized.insert_or_assign(value.name, std::move(drawn)).first->second;
  }
  return feeds;
}

}  // namespace

Status CheckEvaluationValues(const Graph& graph, const ValueMap& values, const EvaluateSpec& spec) {
  const std::vector<std::string> sorted = SortedNames(values);
  BF_RETURN_IF_ERROR(ResolveDType(values, sorted, spec.dtype).status());
  return CheckValueNames(graph, sorted);
}

StatusOr<std::shared_ptr<const PreparedEvaluation>> PrepareEvaluation(Graph graph,
                                                                      const EvaluateSpec& spec) {
  auto prepared = std::make_shared<PreparedEvaluation>();
  BF_ASSIGN_OR_RETURN(prepared->outputs, ResolveOutputs(graph, spec));
  BF_ASSIGN_OR_RETURN(ValueId target, ResolveTarget(graph, spec));
  prepared->backward_begin = graph.num_nodes();
  BF_ASSIGN_OR_RETURN(prepared->gradients, AppendGradients(graph, target, spec));
  prepared->backward_end = graph.num_nodes();
  prepared->wrt = spec.wrt;
  std::vector<ValueId> fetches = prepared->outputs;
  fetches.insert(fetches.end(), prepared->gradients.begin(), prepared->gradients.end());
  prepared->needed = ValuesNeededFor(graph, fetches);
  prepared->program =
      std::make_shared<const Program>(std::make_shared<const Graph>(std::move(graph)));
  return std::shared_ptr<const PreparedEvaluation>(std::move(prepared));
}

StatusOr<EvaluateResult> RunEvaluation(const PreparedEvaluation& prepared, const ValueMap& values,
                                       const EvaluateSpec& spec, const RunOptions& run) {
  const Graph& graph = prepared.program->graph();
  const std::vector<std::string> sorted = SortedNames(values);
  BF_ASSIGN_OR_RETURN(DType dtype, ResolveDType(values, sorted, spec.dtype));
  BF_RETURN_IF_ERROR(CheckValueNames(graph, sorted));
  std::vector<ValueId> fetches = prepared.outputs;
  fetches.insert(fetches.end(), prepared.gradients.begin(), prepared.gradients.end());
  BF_RETURN_IF_ERROR(CheckRunOptions(run));
  ValueMap initialized;
  BF_ASSIGN_OR_RETURN(FeedMap feeds,
                      BuildFeeds(graph, prepared.needed, values, dtype, spec.seed, initialized));

  RunOptions moded = run;
  moded.info =
      RunInfo{.training = spec.mode == EvaluateMode::kAuto ? !prepared.wrt.empty()
                                                           : spec.mode == EvaluateMode::kTraining,
              .seed = spec.seed,
              .step = 0};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> fetched, prepared.program->Run(feeds, fetches, moded));
  if (run.profile != nullptr) {
    run.profile->MarkBackward(prepared.backward_begin, prepared.backward_end);
  }

  EvaluateResult result;
  const size_t n = prepared.outputs.size();
  for (size_t i = 0; i < n; ++i) {
    result.outputs.emplace_back(graph.value(prepared.outputs[i]).name, std::move(fetched[i]));
  }
  // Gradients are reported under the wrt names, not their gradient nodes' names.
  for (size_t i = 0; i < prepared.wrt.size(); ++i) {
    result.gradients.emplace_back(prepared.wrt[i], std::move(fetched[n + i]));
  }
  return result;
}

StatusOr<EvaluateResult> Evaluate(Graph graph, const ValueMap& values, const EvaluateSpec& spec,
                                  const RunOptions& run) {
  BF_RETURN_IF_ERROR(CheckEvaluationValues(graph, values, spec));
  BF_ASSIGN_OR_RETURN(std::shared_ptr<const PreparedEvaluation> prepared,
                      PrepareEvaluation(std::move(graph), spec));
  return RunEvaluation(*prepared, values, spec, run);
}

}  // namespace backflow
