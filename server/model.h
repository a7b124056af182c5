// Model: one trainable graph held by the server, and ModelRegistry: all of them by id.
//
// A Model pairs the engine's Trainer with the SerialQueue that orders its mutations (steps,
// parameter writes, checkpoint save and restore: Note [Serving threads]) and with what the
// data directory knows of it. Reads (inference, gradients, parameters) go to the Trainer's
// current snapshot directly and never wait for the queue.
#ifndef BACKFLOW_SERVER_MODEL_H_
#define BACKFLOW_SERVER_MODEL_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/core/memory_budget.h"
#include "engine/core/status.h"
#include "server/checkpoint_schedule.h"
#include "server/inference_stats.h"
#include "server/training_stats.h"
#include "server/work_queue.h"

namespace backflow::server {

// The wall clock in milliseconds since 1970 (records' and checkpoints' times).
int64_t NowUnixMs();

class Model : public std::enable_shared_from_this<Model> {
 public:
  // Builds the model a CreateModelRequest describes (the record's), validating everything:
  // graph (within `limits`), dtype, optimizer, metrics and initial parameters.
  // With `memory`, the model's share of it (EstimateBytes) is reserved once everything else is
  // checked and before the parameters are allocated, and held as long as the model lives:
  // RESOURCE_EXHAUSTED past --max-memory.
  static StatusOr<std::shared_ptr<Model>> Create(v1::ModelRecord record, const GraphLimits& limits,
                                                 int64_t max_tensor_elements, ComputePool* pool,
                                                 MemoryBudget* memory = nullptr);
  // What a model of `request` (its graph in `graph` form, ONNX already resolved) will hold, from
  // the shapes alone, before anything is allocated (Note [Memory budget]): its parameters and
  // running state and the optimizer's slots for each parameter (momentum: one, Adam: two), all
  // counted twice, as a step writes a new snapshot beside the one it reads. Saturates.
  static int64_t EstimateBytes(const v1::CreateModelRequest& request);
  // Replaces the model's share of the server's MemoryBudget (a model loaded at start; an empty
  // hold when it is deleted). On the model's queue, or before the model is shared.
  void HoldMemory(MemoryBudget::Hold hold) { memory_ = std::move(hold); }

  const std::string& id() const { return record_.id(); }
  const v1::ModelRecord& record() const { return record_; }
  const std::string& owner() const { return record_.owner(); }
  Trainer& trainer() { return *trainer_; }
  const Trainer& trainer() const { return *trainer_; }
  DType dtype() const { return trainer_->options().dtype; }
  SerialQueue& queue() { return *queue_; }
  // True if row i of `output` depends only on row i of the batched inputs in inference mode
  // (Note [Independent rows] in engine/ir/rows.h): rows may then be stacked or padded. False
  // for a name that is no tensor of the graph.
  bool RowsIndependent(const std::string& output) const;
  // engine/ir/cost.h's estimate of one sample's forward pass.
  int64_t flops_per_sample() const { return info_.flops_per_sample(); }
  const std::string& name() const { return info_.name(); }

  // Set by DeleteModel's job on the model's queue: work that reaches the model after it (a
  // Train stream still open, reads still queued) fails with NOT_FOUND.
  void MarkDeleted() { deleted_.store(true); }
  bool deleted() const { return deleted_.load(); }
  Status CheckNotDeleted() const {
    return deleted() ? NotFoundError("model '" + id() + "' was deleted") : Status::Ok();
  }

  // ModelInfo with the current step, checkpoint step and statistics filled in; the statistics'
  // loss curve only `with_history`.
  v1::ModelInfo Info(bool with_history = false) const;
  // InvalidArgument unless `history` could be this model's curve at `step`
  // (TrainingStats::CheckHistory with its number of metrics).
  Status CheckHistory(const v1::TrainingHistory& history, int64_t step) const {
    return TrainingStats::CheckHistory(history, step, info_.metrics_size());
  }
  // A step's metrics (StepResult::metrics) in ModelInfo.metrics' order; NaN for one missing.
  std::vector<double> MetricValues(const std::unordered_map<std::string, double>& metrics) const;

  // Mutations count generations; a model is dirty when its state differs from its latest
  // checkpoint (or, without one, from its creation). MarkChanged is only called from the
  // model's queue; MarkSaved with checkpoint_mu() held (or before the model is shared). A save
  // of an older generation than the one on disk (an automatic write finishing after a newer
  // SaveCheckpoint) changes nothing, so the checkpoint step never goes backwards.
  void MarkChanged() { ++generation_; }
  void MarkSaved(int64_t generation, int64_t step) {
    if (generation < saved_generation_) return;
    saved_generation_ = generation;
    checkpoint_step_ = step;
  }
  int64_t saved_generation() const { return saved_generation_; }
  int64_t generation() const { return generation_; }
  bool dirty() const { return generation_ != saved_generation_; }
  int64_t checkpoint_step() const { return checkpoint_step_; }

  // The checkpoint record for the trainer's current state, and back. A record that does not
  // fit the model (a parameter, running state or optimizer slot of another shape or dtype, an
  // unknown or missing name, a non-finite value) is DataLoss naming the tensor and both shapes,
  // and the model keeps its current values.
  // The record carries the training history (Note [Training history]).
  v1::CheckpointRecord TakeCheckpoint() {
    v1::CheckpointRecord record = EncodeCheckpoint(trainer_->TakeCheckpoint());
    *record.mutable_history() = training_stats_.History();
    return record;
  }
  // The same in two halves: the immutable snapshot (on the model's queue: it copies the
  // optimizer's slots, which steps change), and its encoding (anywhere, later).
  static v1::CheckpointRecord EncodeCheckpoint(const Trainer::Checkpoint& checkpoint);

  // Held while the model's checkpoint file is written, read or deleted: it orders the queue's
  // saves, restores and delete with the background writer's automatic checkpoints
  // (Note [Automatic checkpoints] in server/autosave.h).
  std::mutex& checkpoint_mu() { return checkpoint_mu_; }
  // When the next automatic checkpoint is due; only the model's queue touches it.
  CheckpointSchedule& schedule() { return schedule_; }
  Status RestoreCheckpoint(const v1::CheckpointRecord& record, int64_t max_tensor_elements);
  // The same with the checks' own codes (InvalidArgument for a tensor that does not fit, ...):
  // for a checkpoint a client sent (UploadCheckpoint), not one read from the data directory.
  Status RestoreCheckpointOrFail(const v1::CheckpointRecord& record, int64_t max_tensor_elements);
  // Counts and times of its inference requests (ModelStatistics); kept in memory only.
  InferenceStats& inference_stats() const { return inference_stats_; }
  // Its loss curve, samples and rates; steps and step times since the process started.
  TrainingStats& training_stats() const { return training_stats_; }

 private:
  Model() = default;

  v1::ModelRecord record_;
  MemoryBudget::Hold memory_;
  v1::ModelInfo info_;  // the static part
  std::unique_ptr<Trainer> trainer_;
  std::shared_ptr<SerialQueue> queue_;
  std::atomic<int64_t> generation_{0};
  std::atomic<int64_t> saved_generation_{0};
  std::atomic<int64_t> checkpoint_step_{-1};
  std::atomic<bool> deleted_{false};
  std::mutex checkpoint_mu_;
  CheckpointSchedule schedule_;  // the queue's
  mutable InferenceStats inference_stats_;
  mutable TrainingStats training_stats_;
};

class ModelRegistry {
 public:
  explicit ModelRegistry(int64_t max_models) : max_models_(max_models) {}

  // Room for one more model, held from Reserve until Add uses it up or the reservation is
  // destroyed (a creation that failed, threw or was cancelled before it ran), so concurrent
  // creations cannot overshoot the limit while they build, and none can leak its place.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept
        : registry_(other.registry_), owner_(std::move(other.owner_)) {
      other.registry_ = nullptr;
    }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { Release(); }
    bool held() const { return registry_ != nullptr; }
    // The token name the place was reserved for ("" without tokens): the new model's owner.
    const std::string& owner() const { return owner_; }

   private:
    friend class ModelRegistry;
    Reservation(ModelRegistry* registry, std::string owner)
        : registry_(registry), owner_(std::move(owner)) {}
    void Release();
    void ReleaseLocked();  // registry_->mu_ held
    ModelRegistry* registry_ = nullptr;
    std::string owner_;
  };

  // RESOURCE_EXHAUSTED "the server holds its limit of N models" when models and reservations
  // together reach max_models; and, for an `owner` (a token's name) with a positive
  // `owner_max_models`, "token 'NAME' holds N models, its max-models quota" when the models it
  // created and its reservations reach that.
  StatusOr<Reservation> Reserve(const std::string& owner = "", int64_t owner_max_models = 0);
  // Registers `model`, using up `reservation` if one is given and held (models loaded at start
  // take none). ALREADY_EXISTS for a taken id, and then the reservation stays held.
  Status Add(std::shared_ptr<Model> model, Reservation* reservation = nullptr);
  // A model whose files could not be loaded at start: listed by DamagedIds, counted against
  // max_models, and answered by Get with `damage` (DATA_LOSS naming what is damaged) until
  // ForgetDamaged, so it never vanishes and is never NOT_FOUND.
  void AddDamaged(const std::string& id, Status damage);
  bool IsDamaged(const std::string& id) const;
  void ForgetDamaged(const std::string& id);
  std::vector<std::pair<std::string, Status>> Damaged() const;  // by id

  // NOT_FOUND "model 'ID' not found"; a damaged model's DATA_LOSS; RESOURCE_EXHAUSTED for an id
  // longer than kMaxModelIdBytes (server/names.h), whose message shows only its start.
  StatusOr<std::shared_ptr<Model>> Get(const std::string& id) const;
  StatusOr<std::shared_ptr<Model>> Remove(const std::string& id);
  std::vector<std::shared_ptr<Model>> All() const;  // by id
  std::string NewId() const;

 private:
  const int64_t max_models_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Model>> models_;  // GUARDED_BY(mu_)
  std::map<std::string, Status> damaged_;  // GUARDED_BY(mu_)
  int64_t reserved_ = 0;  // GUARDED_BY(mu_)
  std::map<std::string, int64_t> reserved_by_owner_;  // GUARDED_BY(mu_)
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_MODEL_H_
