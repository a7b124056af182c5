#include "server/checkpoint_transfer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "engine/ir/tensor_proto.h"
#include "server/data_parallel/replica.h"
#include "server/model_io.h"
#include "server/names.h"
#include "server/operations.h"

namespace backflow::server::ops {
namespace {

// A DATA_LOSS of the assembler (its errors are about files) as the client's fault.
Status AsInvalidArgument(const Status& status) {
  if (status.ok() || status.code() != StatusCode::kDataLoss) return status;
  return InvalidArgumentError(status.message());
}

const char* SlotName(v1::CheckpointTensor::Slot slot) {
  switch (slot) {
    case v1::CheckpointTensor::PARAMETER:
      return "parameter";
    case v1::CheckpointTensor::STATE:
      return "running state";
    default:
      return "optimizer slot";
  }
}

// The tensor of the model a header entry must match: the parameter or running state of its
// name, or for an optimizer slot "KIND/NAME" the parameter NAME.
const Tensor* Counterpart(const ParameterSnapshot& values, const v1::CheckpointTensor& entry) {
  const ParameterMap* map = &values.values;
  std::string name = entry.name();
  if (entry.slot() == v1::CheckpointTensor::STATE) map = &values.state;
  if (entry.slot() == v1::CheckpointTensor::OPTIMIZER_STATE) {
    const size_t slash = name.find('/');
    if (slash == std::string::npos) return nullptr;
    name = name.substr(slash + 1);
  }
  auto it = map->find(name);
  return it == map->end() ? nullptr : &it->second;
}

std::string Layout(DType dtype, const Shape& shape) {
  return std::string(DTypeName(dtype)) + shape.ToString();
}

// Note [Checkpoint streams]: the header's tensors against the model, before any bytes.
Status CheckUploadTensors(const Model& model,
                          const google::protobuf::RepeatedPtrField<v1::CheckpointTensor>& tensors) {
  const ParameterSnapshot& values = *model.trainer().parameters();
  std::map<std::string, int> slots_per_parameter;
  size_t parameters = 0;
  size_t state = 0;
  for (const v1::CheckpointTensor& entry : tensors) {
    const std::string what =
        std::string("tensor ") + Quoted(entry.name()) + " (" + SlotName(entry.slot()) + ")";
    const Tensor* counterpart = Counterpart(values, entry);
    if (counterpart == nullptr) {
      return InvalidArgumentError(what + ": the model has no such " +
                                  (entry.slot() == v1::CheckpointTensor::STATE ? "running state"
                                                                               : "parameter"));
    }
    StatusOr<DType> dtype = DTypeFromProto(entry.dtype(), what + " dtype");
    BF_RETURN_IF_ERROR(dtype.status());
    const Shape shape{std::vector<int64_t>(entry.dims().begin(), entry.dims().end())};
    if (*dtype != counterpart->dtype() || shape != counterpart->shape()) {
      return InvalidArgumentError(what + " is " + Layout(*dtype, shape) + ", the model's is " +
                                  Layout(counterpart->dtype(), counterpart->shape()));
    }
    if (entry.slot() == v1::CheckpointTensor::PARAMETER) ++parameters;
    if (entry.slot() == v1::CheckpointTensor::STATE) ++state;
    if (entry.slot() == v1::CheckpointTensor::OPTIMIZER_STATE) {
      // No optimizer keeps more than two slots per parameter (Adam's moments).
      const std::string parameter = entry.name().substr(entry.name().find('/') + 1);
      if (++slots_per_parameter[parameter] > 2) {
        return InvalidArgumentError(what + ": more than two optimizer slots for parameter " +
                                    Quoted(parameter));
      }
    }
  }
  // Names are unique per slot (the assembler checks), so the counts say whether all are there.
  if (parameters != values.values.size() || state != values.state.size()) {
    return InvalidArgumentError(
        "the upload lists " + std::to_string(parameters) + " parameters and " +
        std::to_string(state) + " running state tensors; the model has " +
        std::to_string(values.values.size()) + " and " + std::to_string(values.state.size()));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<CheckpointDownload>> CheckpointDownload::Open(
    const ServiceEnv& env, Model& model, const v1::DownloadCheckpointRequest& request) {
  BF_ASSIGN_OR_RETURN(
      const CheckpointSelector selector,
      SelectCheckpoint(request.name(),
                       request.has_step() ? std::optional<int64_t>(request.step()) : std::nullopt));
  std::unique_ptr<CheckpointDownload> download(new CheckpointDownload());
  {
    // Not while an automatic write of the model is renaming files (server/autosave.h).
    std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
    StatusOr<OpenedCheckpoint> opened = env.store->OpenCheckpoint(model.id(), selector);
    BF_RETURN_IF_ERROR(NoCheckpointIsPrecondition(opened.status(), selector, model.id()));
    download->opened_ = std::move(*opened);
  }
  v1::CheckpointHeader& header = download->header_;
  *header.mutable_model() = model.record().request();
  header.set_model_id(model.id());
  CheckpointInfoToProto(download->opened_.info, header.mutable_checkpoint());
  const v1::CheckpointManifest manifest = download->opened_.reader != nullptr
                                              ? download->opened_.reader->manifest()
                                              : DescribeCheckpoint(*download->opened_.legacy);
  header.set_step(manifest.step());
  header.set_optimizer_steps(manifest.optimizer_steps());
  *header.mutable_tensors() = manifest.tensors();
  if (manifest.has_history()) *header.mutable_history() = manifest.history();
  return download;
}

StatusOr<bool> CheckpointDownload::Next(std::string* chunk) {
  if (opened_.reader != nullptr) return opened_.reader->Next(chunk);
  // A legacy checkpoint, from memory, in the header's order.
  chunk->clear();
  while (legacy_index_ < header_.tensors_size() &&
         chunk->size() < static_cast<size_t>(kCheckpointChunkBytes)) {
    const v1::Tensor* tensor = FindCheckpointTensor(*opened_.legacy, header_.tensors(legacy_index_));
    const std::string& data = tensor->data();
    const size_t take = std::min(data.size() - legacy_offset_,
                                 static_cast<size_t>(kCheckpointChunkBytes) - chunk->size());
    chunk->append(data, legacy_offset_, take);
    legacy_offset_ += take;
    if (legacy_offset_ == data.size()) {
      ++legacy_index_;
      legacy_offset_ = 0;
    }
  }
  return !chunk->empty();
}

CheckpointUpload::CheckpointUpload(std::shared_ptr<Model> model, CheckpointAssembler assembler,
                                   const v1::CheckpointHeader& header)
    : model_(std::move(model)),
      assembler_(std::move(assembler)),
      step_(header.step()),
      optimizer_steps_(header.optimizer_steps()) {
  if (header.has_history()) history_ = header.history();
}

StatusOr<std::unique_ptr<CheckpointUpload>> CheckpointUpload::Begin(
    ServiceEnv& env, const v1::CheckpointHeader& header, const std::string& owner) {
  if (header.step() < 0 || header.optimizer_steps() < 0) {
    return InvalidArgumentError("header: step and optimizer_steps must not be negative");
  }
  v1::ModelRecord record;
  record.set_id(env.registry.NewId());
  *record.mutable_request() = header.model();
  BF_RETURN_IF_ERROR(ResolveOnnxRequest(env.graph_limits, record.mutable_request()));
  record.set_created_unix_ms(NowUnixMs());
  record.set_owner(owner);
  BF_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                      Model::Create(std::move(record), env.graph_limits,
                                    env.config.limits.max_tensor_elements, env.pool, &env.memory));
  BF_RETURN_IF_ERROR(CheckUploadTensors(*model, header.tensors()));
  if (header.has_history()) {
    BF_RETURN_IF_ERROR(model->CheckHistory(header.history(), header.step()).WithPrefix("header"));
  }
  StatusOr<CheckpointAssembler> assembler =
      CheckpointAssembler::Create(header.tensors(), "upload");
  BF_RETURN_IF_ERROR(AsInvalidArgument(assembler.status()));
  return std::unique_ptr<CheckpointUpload>(
      new CheckpointUpload(std::move(model), std::move(*assembler), header));
}

Status CheckpointUpload::Append(std::string_view bytes) {
  return AsInvalidArgument(assembler_.Append(bytes));
}

Status CheckpointUpload::Finish(ServiceEnv& env, ModelRegistry::Reservation& reservation,
                                v1::ModelInfo* info) {
  if (!assembler_.complete()) {
    return InvalidArgumentError("the stream ended after " + std::to_string(assembler_.received()) +
                                " of the header's " + std::to_string(assembler_.total()) +
                                " bytes of tensors");
  }
  v1::CheckpointRecord& checkpoint = assembler_.record();
  checkpoint.set_step(step_);
  checkpoint.set_optimizer_steps(optimizer_steps_);
  checkpoint.set_saved_unix_ms(NowUnixMs());
  if (history_.has_value()) *checkpoint.mutable_history() = std::move(*history_);
  BF_RETURN_IF_ERROR(AsInvalidArgument(
      model_->RestoreCheckpointOrFail(checkpoint, env.config.limits.max_tensor_elements)));
  if (env.data_parallel != nullptr) BF_RETURN_IF_ERROR(env.data_parallel->ShareNewModel(*model_));
  if (Status stored = env.store->CreateModelWithCheckpoint(model_->record(), checkpoint).status();
      !stored.ok()) {
    if (env.data_parallel != nullptr) (void)env.data_parallel->DropModel(model_->id());
    return stored;
  }
  model_->MarkSaved(model_->generation(), step_);
  model_->schedule().Restart(step_, CheckpointSchedule::Clock::now());
  checkpoint.Clear();  // the model holds its own copy now
  if (Status added = env.registry.Add(model_, &reservation); !added.ok()) {
    // The reservation guarantees room, so this is a server fault; the files go with it.
    (void)env.store->DeleteModel(model_->id());
    if (env.data_parallel != nullptr) (void)env.data_parallel->DropModel(model_->id());
    return added;
  }
  *info = model_->Info();
  return Status::Ok();
}

}  // namespace backflow::server::ops
