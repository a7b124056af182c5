#include "server/model.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <random>

#include "engine/core/saturating.h"
#include "engine/ir/cost.h"
#include "server/convert.h"
#include "server/names.h"

namespace backflow::server {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

void DescribeValue(const Graph& graph, ValueId id, DType dtype, v1::TensorInfo* info) {
  const Value& value = graph.value(id);
  info->set_name(value.name);
  for (int64_t d : value.shape.dims()) info->add_shape(d);
  info->set_dtype(EncodeDType(IsInteger(value.dtype) ? value.dtype : dtype));  // ids keep theirs
}

// The scalar outputs other than the loss: what a graph reports as metrics unless told.
std::vector<std::string> DefaultMetrics(const Graph& graph) {
  std::vector<std::string> metrics;
  for (ValueId id : graph.outputs()) {
    const Value& value = graph.value(id);
    if (id != graph.loss() && value.shape.fully_defined() && value.shape.num_elements() == 1) {
      metrics.push_back(value.name);
    }
  }
  return metrics;
}

Status CheckBatching(const v1::InferBatching& batching) {
  if (batching.has_max_rows() && batching.max_rows() < 1) {
    return InvalidArgumentError("batching.max_rows is " + std::to_string(batching.max_rows()) +
                                " (at least 1; 1 turns batching off)");
  }
  if (batching.has_delay_us() && (batching.delay_us() < 0 || batching.delay_us() > 1000000)) {
    return InvalidArgumentError("batching.delay_us is " + std::to_string(batching.delay_us()) +
                                " (0 to 1000000)");
  }
  return Status::Ok();
}

v1::ModelInfo StaticInfo(const v1::ModelRecord& record, const Graph& graph, DType dtype,
                         const std::vector<std::string>& metrics) {
  v1::ModelInfo info;
  info.set_id(record.id());
  info.set_name(record.request().name());
  info.set_graph_name(graph.name);
  info.set_dtype(EncodeDType(dtype));
  std::vector<ValueId> params = graph.ValuesOfKind(ValueKind::kParameter);
  std::sort(params.begin(), params.end(), [&graph](ValueId a, ValueId b) {
    return graph.value(a).name < graph.value(b).name;
  });
  int64_t count = 0;
  for (ValueId p : params) {
    DescribeValue(graph, p, dtype, info.add_parameters());
    count += graph.value(p).shape.num_elements();
  }
  for (ValueId s : graph.ValuesOfKind(ValueKind::kState)) {
    DescribeValue(graph, s, dtype, info.add_state());
  }
  for (ValueId p : graph.ValuesOfKind(ValueKind::kPlaceholder)) {
    DescribeValue(graph, p, dtype, info.add_inputs());
  }
  for (ValueId o : graph.outputs()) DescribeValue(graph, o, dtype, info.add_outputs());
  if (graph.loss() != kNoId) info.set_loss(graph.value(graph.loss()).name);
  for (const std::string& m : metrics) info.add_metrics(m);
  info.set_parameter_count(count);
  info.set_flops_per_sample(EstimateForwardFlops(graph));
  *info.mutable_optimizer() = record.request().optimizer();
  info.set_created_unix_ms(record.created_unix_ms());
  return info;
}

// Every optimizer slot "KIND/NAME" belongs to parameter NAME and has its shape and dtype:
// a slot that does not would be accepted by the optimizer and fail every later step.
Status CheckOptimizerSlots(const TensorMap& slots, const ParameterMap& parameters) {
  for (const auto& [key, slot] : slots) {
    const size_t slash = key.find('/');
    const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    auto it = parameters.find(name);
    if (it == parameters.end()) {
      return DataLossError("optimizer slot '" + key + "' belongs to no parameter of the model");
    }
    const Tensor& parameter = it->second;
    if (slot.shape() != parameter.shape() || slot.dtype() != parameter.dtype()) {
      return DataLossError("optimizer slot '" + key + "' is " + std::string(DTypeName(slot.dtype())) +
                           slot.shape().ToString() + ", parameter '" + name + "' is " +
                           std::string(DTypeName(parameter.dtype())) +
                           parameter.shape().ToString());
    }
  }
  return Status::Ok();
}

Status CheckInitialNames(const Graph& graph, const TensorMap& initial) {
  for (const auto& [name, _] : initial) {
    std::optional<ValueId> id = graph.Find(name);
    if (!id || (graph.value(*id).kind != ValueKind::kParameter &&
                graph.value(*id).kind != ValueKind::kState)) {
      return InvalidArgumentError("initial parameter " + Quoted(name) +
                                  ": not a parameter or state of the graph");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<Model>> Model::Create(v1::ModelRecord record, const GraphLimits& limits,
                                               int64_t max_tensor_elements, ComputePool* pool,
                                               MemoryBudget* memory) {
  const v1::CreateModelRequest& request = record.request();
  BF_RETURN_IF_ERROR(CheckLength("name", request.name(), kMaxNameBytes));
  BF_RETURN_IF_ERROR(CheckLengths("metric", request.metrics(), kMaxNameBytes));
  BF_RETURN_IF_ERROR(CheckBatching(request.batching()));
  BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(request.graph(), limits));
  BF_ASSIGN_OR_RETURN(DType dtype, DecodeDType(request.dtype(), "dtype"));
  BF_ASSIGN_OR_RETURN(OptimizerConfig optimizer, DecodeOptimizer(request.optimizer()));
  TrainerOptions options{.dtype = dtype, .seed = request.seed(), .optimizer = optimizer};
  options.metrics.assign(request.metrics().begin(), request.metrics().end());
  if (options.metrics.empty()) options.metrics = DefaultMetrics(graph);
  BF_ASSIGN_OR_RETURN(
      TensorMap initial,
      DecodeTensors(request.initial_parameters(), "initial parameter", max_tensor_elements, dtype));
  BF_RETURN_IF_ERROR(CheckInitialNames(graph, initial));

  // A model's plans, buffers and parameters can be gigabytes: when the last reference goes, so
  // does the memory, not just into malloc's free lists.
  std::shared_ptr<Model> model(new Model(), [](Model* m) {
    delete m;
    ReturnFreeMemory();
  });
  // Everything is checked; the parameters are allocated next (Note [Memory budget]).
  if (memory != nullptr) {
    StatusOr<MemoryBudget::Hold> hold =
        memory->Reserve(EstimateBytes(request),
                        "the model (its parameters, running state and optimizer slots, held "
                        "twice while a step runs)");
    if (!hold.ok()) return ResourceExhaustedError(hold.status().message() + " (--max-memory)");
    model->memory_ = std::move(*hold);
  }
  model->info_ = StaticInfo(record, graph, dtype, options.metrics);
  BF_ASSIGN_OR_RETURN(model->trainer_, Trainer::Create(std::move(graph), options));
  if (!initial.empty()) BF_RETURN_IF_ERROR(model->trainer_->SetParameters(initial));
  model->record_ = std::move(record);
  model->queue_ = std::make_shared<SerialQueue>(pool);
  return model;
}

bool Model::RowsIndependent(const std::string& output) const {
  const std::optional<ValueId> id = trainer_->graph().Find(output);
  return id && trainer_->rows(*id) == Rows::kEach;
}

v1::ModelInfo Model::Info(bool with_history) const {
  v1::ModelInfo info = info_;
  info.set_step(trainer_->parameters()->step);
  info.set_checkpoint_step(checkpoint_step_);
  training_stats_.Fill(TrainingStats::Clock::now(), with_history, info.mutable_statistics());
  return info;
}

std::vector<double> Model::MetricValues(
    const std::unordered_map<std::string, double>& metrics) const {
  std::vector<double> values;
  values.reserve(static_cast<size_t>(info_.metrics_size()));
  for (const std::string& name : info_.metrics()) {
    const auto it = metrics.find(name);
    values.push_back(it == metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
  }
  return values;
}

v1::CheckpointRecord Model::EncodeCheckpoint(const Trainer::Checkpoint& checkpoint) {
  v1::CheckpointRecord record;
  record.set_step(checkpoint.parameters->step);
  EncodeTensors(checkpoint.parameters->values, record.mutable_parameters());
  EncodeTensors(checkpoint.parameters->state, record.mutable_state());
  EncodeTensors(checkpoint.optimizer_state, record.mutable_optimizer_state());
  record.set_optimizer_steps(checkpoint.optimizer_steps);
  record.set_saved_unix_ms(NowUnixMs());
  return record;
}

int64_t Model::EstimateBytes(const v1::CreateModelRequest& request) {
  const int64_t element = request.dtype() == v1::FLOAT64 ? 8 : 4;
  const auto bytes_of = [&](const google::protobuf::RepeatedPtrField<v1::Parameter>& values) {
    int64_t total = 0;
    for (const v1::Parameter& value : values) {
      int64_t count = element;
      for (const int64_t dim : value.shape()) count = SaturatingMul(count, std::max<int64_t>(dim, 0));
      total = SaturatingAdd(total, count);
    }
    return total;
  };
  const v1::OptimizerSpec& optimizer = request.optimizer();
  const bool adam =
      optimizer.kind() == v1::OptimizerSpec::ADAM || optimizer.kind() == v1::OptimizerSpec::ADAMW;
  const int64_t slots = adam ? 2 : (optimizer.momentum() != 0 ? 1 : 0);
  const int64_t parameters = bytes_of(request.graph().parameters());
  const int64_t held =
      SaturatingAdd(SaturatingMul(parameters, 1 + slots), bytes_of(request.graph().states()));
  return SaturatingMul(held, 2);
}

Status Model::RestoreCheckpoint(const v1::CheckpointRecord& record, int64_t max_tensor_elements) {
  Status restored = RestoreCheckpointOrFail(record, max_tensor_elements);
  // The record came from the data directory: whatever does not fit the model is damage there.
  if (!restored.ok() && restored.code() != StatusCode::kDataLoss) {
    restored = DataLossError(restored.message());
  }
  return restored;
}

Status Model::RestoreCheckpointOrFail(const v1::CheckpointRecord& record,
                                      int64_t max_tensor_elements) {
  if (record.has_history()) BF_RETURN_IF_ERROR(CheckHistory(record.history(), record.step()));
  BF_ASSIGN_OR_RETURN(TensorMap values, DecodeTensors(record.parameters(), "checkpoint parameter",
                                                      max_tensor_elements, dtype()));
  BF_ASSIGN_OR_RETURN(TensorMap running, DecodeTensors(record.state(), "checkpoint state",
                                                       max_tensor_elements, dtype()));
  BF_ASSIGN_OR_RETURN(TensorMap state, DecodeTensors(record.optimizer_state(), "optimizer state",
                                                     max_tensor_elements, std::nullopt));
  BF_RETURN_IF_ERROR(CheckOptimizerSlots(state, trainer_->parameters()->values));
  auto snapshot = std::make_shared<ParameterSnapshot>();
  snapshot->step = record.step();
  for (auto& [name, tensor] : values) snapshot->values.emplace(name, std::move(tensor));
  for (auto& [name, tensor] : running) snapshot->state.emplace(name, std::move(tensor));
  Trainer::Checkpoint checkpoint{.parameters = std::move(snapshot),
                                 .optimizer_state = {},
                                 .optimizer_steps = record.optimizer_steps()};
  for (auto& [name, tensor] : state) checkpoint.optimizer_state.emplace(name, std::move(tensor));
  // The trainer checks parameters and running state (names, shapes, dtypes) before it changes
  // anything; the slots were checked above, as the optimizer compares them with nothing.
  BF_RETURN_IF_ERROR(trainer_->RestoreCheckpoint(checkpoint));
  training_stats_.Restore(record.has_history() ? &record.history() : nullptr, record.step());
  return Status::Ok();
}

ModelRegistry::Reservation& ModelRegistry::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    registry_ = other.registry_;
    owner_ = std::move(other.owner_);
    other.registry_ = nullptr;
  }
  return *this;
}

void ModelRegistry::Reservation::Release() {
  if (registry_ == nullptr) return;
  std::lock_guard<std::mutex> lock(registry_->mu_);
  ReleaseLocked();
}

void ModelRegistry::Reservation::ReleaseLocked() {
  --registry_->reserved_;
  if (!owner_.empty()) {
    auto it = registry_->reserved_by_owner_.find(owner_);
    if (it != registry_->reserved_by_owner_.end() && --it->second == 0) {
      registry_->reserved_by_owner_.erase(it);
    }
  }
  registry_ = nullptr;
}

StatusOr<ModelRegistry::Reservation> ModelRegistry::Reserve(const std::string& owner,
                                                            int64_t owner_max_models) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int64_t>(models_.size() + damaged_.size()) + reserved_ >= max_models_) {
    return ResourceExhaustedError("the server holds its limit of " + std::to_string(max_models_) +
                                  " models (--max-models); delete one first");
  }
  if (!owner.empty() && owner_max_models > 0) {
    int64_t held = reserved_by_owner_.count(owner) ? reserved_by_owner_[owner] : 0;
    for (const auto& [id, model] : models_) held += model->owner() == owner ? 1 : 0;
    if (held >= owner_max_models) {
      return ResourceExhaustedError("token '" + owner + "' holds " + std::to_string(held) +
                                    " models, its max-models quota; delete one first");
    }
  }
  ++reserved_;
  if (!owner.empty()) ++reserved_by_owner_[owner];
  return Reservation(this, owner);
}

Status ModelRegistry::Add(std::shared_ptr<Model> model, Reservation* reservation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!models_.emplace(model->id(), model).second) {
    return AlreadyExistsError("model '" + model->id() + "' already exists");
  }
  if (reservation != nullptr && reservation->registry_ == this) {
    reservation->ReleaseLocked();  // the model now holds the place
  }
  return Status::Ok();
}

void ModelRegistry::AddDamaged(const std::string& id, Status damage) {
  std::lock_guard<std::mutex> lock(mu_);
  damaged_[id] = std::move(damage);
}

bool ModelRegistry::IsDamaged(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return damaged_.count(id) > 0;
}

void ModelRegistry::ForgetDamaged(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  damaged_.erase(id);
}

std::vector<std::pair<std::string, Status>> ModelRegistry::Damaged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {damaged_.begin(), damaged_.end()};
}

StatusOr<std::shared_ptr<Model>> ModelRegistry::Get(const std::string& id) const {
  BF_RETURN_IF_ERROR(CheckLength("model id", id, kMaxModelIdBytes));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto damaged = damaged_.find(id); damaged != damaged_.end()) return damaged->second;
  auto it = models_.find(id);
  if (it == models_.end()) return NotFoundError("model " + Quoted(id) + " not found");
  return it->second;
}

StatusOr<std::shared_ptr<Model>> ModelRegistry::Remove(const std::string& id) {
  BF_RETURN_IF_ERROR(CheckLength("model id", id, kMaxModelIdBytes));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(id);
  if (it == models_.end()) return NotFoundError("model " + Quoted(id) + " not found");
  std::shared_ptr<Model> model = std::move(it->second);
  models_.erase(it);
  return model;
}

std::vector<std::shared_ptr<Model>> ModelRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Model>> all;
  for (const auto& [_, model] : models_) all.push_back(model);
  return all;
}

std::string ModelRegistry::NewId() const {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  char id[24];
  std::snprintf(id, sizeof(id), "m-%012llx",
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return id;
}

}  // namespace backflow::server
