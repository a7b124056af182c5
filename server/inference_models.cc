#include "server/inference_models.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "server/inference_tensors.h"
#include "server/inputs.h"
#include "server/names.h"

namespace backflow::server {
namespace {

bool Batched(const v1::TensorInfo& tensor) {
  return tensor.shape_size() > 0 && tensor.shape(0) == kBatchDim;
}

// Elements of one row of a batched tensor (its dimensions after the first; open ones count 1).
int64_t RowElements(const v1::TensorInfo& tensor) {
  int64_t n = 1;
  for (int i = 1; i < tensor.shape_size(); ++i) {
    const int64_t d = tensor.shape(i);
    if (d > 0)
      n = d > std::numeric_limits<int64_t>::max() / n ? std::numeric_limits<int64_t>::max() : n * d;
  }
  return n;
}

template <typename Config>
void SetDims(const v1::TensorInfo& tensor, bool strip_batch, Config* config) {
  for (int i = strip_batch && Batched(tensor) ? 1 : 0; i < tensor.shape_size(); ++i) {
    config->add_dims(tensor.shape(i));
  }
}

// Placeholders that some output of the graph can be computed without.
std::vector<std::string> OptionalInputs(const Graph& graph) {
  std::vector<std::string> optional;
  std::vector<std::vector<std::string>> needs;
  for (ValueId output : graph.outputs()) needs.push_back(PlaceholdersNeeded(graph, output));
  for (ValueId p : graph.ValuesOfKind(ValueKind::kPlaceholder)) {
    const std::string& name = graph.value(p).name;
    const bool some_output_without = std::any_of(needs.begin(), needs.end(), [&](const auto& n) {
      return std::find(n.begin(), n.end(), name) == n.end();
    });
    if (some_output_without) optional.push_back(name);
  }
  return optional;
}

void Add(const InferenceStats::Duration& from, inference::StatisticDuration* to) {
  to->set_count(from.count);
  to->set_ns(from.ns);
}

}  // namespace

Status CheckVersion(const std::string& name, const std::string& version) {
  if (version.empty() || version == kModelVersion) return Status::Ok();
  return NotFoundError("model " + Quoted(name) + " has no version " + Quoted(version) +
                       " (backflow serves one version of each model, \"1\")");
}

StatusOr<std::shared_ptr<Model>> FindModel(const ModelRegistry& registry, const std::string& name,
                                           const std::string& version) {
  if (name.empty())
    return InvalidArgumentError("the model name is empty (give a model's name or id)");
  BF_RETURN_IF_ERROR(CheckLength("model name", name, kMaxNameBytes));
  BF_RETURN_IF_ERROR(CheckVersion(name, version));
  StatusOr<std::shared_ptr<Model>> by_id = registry.Get(name);
  if (by_id.ok() || by_id.status().code() == StatusCode::kDataLoss) return by_id;
  std::vector<std::shared_ptr<Model>> named;
  for (std::shared_ptr<Model>& model : registry.All()) {
    if (model->name() == name) named.push_back(std::move(model));
  }
  if (named.size() == 1) return named.front();
  if (named.empty()) return NotFoundError("no model has the name or id " + Quoted(name));
  std::string ids;
  for (const auto& model : named) ids += (ids.empty() ? "" : ", ") + model->id();
  return FailedPreconditionError(std::to_string(named.size()) + " models have the name " +
                                 Quoted(name) + " (ids " + ids + "); address one by its id");
}

inference::ModelMetadataResponse ModelMetadata(const Model& model, const std::string& name) {
  const v1::ModelInfo info = model.Info();
  inference::ModelMetadataResponse metadata;
  metadata.set_name(name);
  metadata.add_versions(kModelVersion);
  metadata.set_platform("backflow");
  auto describe = [](const v1::TensorInfo& tensor, auto* out) {
    out->set_name(tensor.name());
    out->set_datatype(std::string(ProtocolDatatype(tensor.dtype())));
    *out->mutable_shape() = tensor.shape();
  };
  for (const v1::TensorInfo& input : info.inputs()) describe(input, metadata.add_inputs());
  for (const v1::TensorInfo& output : info.outputs()) describe(output, metadata.add_outputs());
  return metadata;
}

inference::ModelConfig ModelConfig(const Model& model, const std::string& name,
                                   int64_t max_tensor_elements, const BatchSettings& batching) {
  const v1::ModelInfo info = model.Info();
  inference::ModelConfig config;
  config.set_name(name);
  config.set_platform("backflow");
  config.set_backend("backflow");
  const bool batched =
      info.inputs_size() > 0 && std::all_of(info.inputs().begin(), info.inputs().end(), Batched);
  if (batched) {
    int64_t row = 1;
    for (const auto& tensors : {info.inputs(), info.outputs()}) {
      for (const v1::TensorInfo& t : tensors) {
        if (Batched(t)) row = std::max(row, RowElements(t));
      }
    }
    const int64_t rows =
        std::min<int64_t>(max_tensor_elements / row, std::numeric_limits<int32_t>::max());
    config.set_max_batch_size(static_cast<int32_t>(std::max<int64_t>(rows, 1)));
  }
  const std::vector<std::string> optional = OptionalInputs(model.trainer().graph());
  for (const v1::TensorInfo& input : info.inputs()) {
    inference::ModelInput* out = config.add_input();
    out->set_name(input.name());
    out->set_data_type(ConfigDatatype(input.dtype()));
    SetDims(input, batched, out);
    out->set_optional(std::find(optional.begin(), optional.end(), input.name()) != optional.end());
  }
  for (const v1::TensorInfo& output : info.outputs()) {
    inference::ModelOutput* out = config.add_output();
    out->set_name(output.name());
    out->set_data_type(ConfigDatatype(output.dtype()));
    SetDims(output, batched, out);
  }
  if (batching.enabled()) {
    config.mutable_dynamic_batching()->set_max_queue_delay_microseconds(
        static_cast<uint64_t>(batching.delay.count()));
  }
  return config;
}

inference::ModelStatistics ModelStatistics(const Model& model, const std::string& name) {
  const InferenceStats::Totals totals = model.inference_stats().Read();
  inference::ModelStatistics stats;
  stats.set_name(name);
  stats.set_version(kModelVersion);
  stats.set_last_inference(totals.last_unix_ms);
  stats.set_inference_count(totals.rows);
  stats.set_execution_count(totals.executions);
  inference::InferStatistics* infer = stats.mutable_inference_stats();
  Add(totals.success, infer->mutable_success());
  Add(totals.fail, infer->mutable_fail());
  Add(totals.queue, infer->mutable_queue());
  Add(totals.compute_input, infer->mutable_compute_input());
  Add(totals.compute_infer, infer->mutable_compute_infer());
  Add(totals.compute_output, infer->mutable_compute_output());
  return stats;
}

}  // namespace backflow::server
