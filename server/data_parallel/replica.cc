#include "server/data_parallel/replica.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "server/data_parallel/mpi_reducer.h"
#include "server/data_parallel/shards.h"
#include "server/service_env.h"
#include "server/work_queue.h"

namespace backflow::server {
namespace {

// One rank's replicas (ranks 1..N-1), and what they apply.
class Follower {
 public:
  Follower(const ServerConfig& config, Collective* collective)
      : config_(config),
        collective_(collective),
        limits_(LimitsFor(config)),
        memory_(config.limits.max_memory),
        pool_(config.compute_threads) {}

  Status ApplyModel(const v1::ReplicaModel& command) {
    auto it = models_.find(command.record().id());
    if (it == models_.end()) {
      BF_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Model::Create(command.record(), limits_,
                                        config_.limits.max_tensor_elements, &pool_, &memory_));
      it = models_.emplace(command.record().id(), std::move(model)).first;
    }
    return it->second->RestoreCheckpointOrFail(command.state(), config_.limits.max_tensor_elements);
  }

  void Drop(const std::string& id) { models_.erase(id); }

  // ModelChecksum of this rank's copy, as rank 0 compares it ("missing" without one).
  std::string Checksum(const std::string& id) const {
    auto it = models_.find(id);
    return it == models_.end() ? "missing" : std::to_string(ModelChecksum(*it->second));
  }

  // This rank's shard of a step; its outcome reaches rank 0 through the reducer.
  Status Step(const v1::ReplicaStep& command) {
    std::string bytes;
    BF_RETURN_IF_ERROR(collective_->Scatter({}, &bytes));
    v1::ReplicaShard shard;
    Status decoded = shard.ParseFromString(bytes) ? Status::Ok()
                                                  : InternalError("undecodable shard from rank 0");
    auto it = models_.find(command.model_id());
    if (it == models_.end()) {
      // Rank 0 sent every model it steps; this rank cannot take part without the model's
      // shapes, so the job cannot go on: the rank exits, and mpirun ends the job.
      return UnavailableError("no replica of model '" + command.model_id() + "' on this rank");
    }
    Model& model = *it->second;
    StatusOr<TensorMap> batch = InternalError("not decoded");
    if (decoded.ok()) {
      batch =
          DecodeTensors(shard.batch(), "shard", config_.limits.max_tensor_elements, std::nullopt);
    }
    MpiReducer reducer(collective_, model.trainer(), *model.trainer().parameters(), shard.rows(),
                       command.batch_rows(), config_.data_parallel_bucket_bytes);
    if (!batch.ok()) {
      // Still take part in the sums, so that no rank waits; every rank refuses the step.
      StepResult none;
      ParameterMap state;
      return reducer.Reduce(batch.status(), &none, &state);
    }
    StepOptions options{.reducer = &reducer, .empty_shard = shard.rows() == 0};
    if (command.gradients_only()) {
      return model.trainer().ComputeShardGradients(Feeds(*batch), options).status();
    }
    if (command.has_learning_rate()) options.learning_rate = command.learning_rate();
    return model.trainer().Step(Feeds(*batch), options).status();
  }

 private:
  const ServerConfig& config_;
  Collective* const collective_;
  const GraphLimits limits_;
  MemoryBudget memory_;
  ComputePool pool_;
  std::map<std::string, std::shared_ptr<Model>> models_;
};

}  // namespace

DataParallel::DataParallel(std::unique_ptr<Collective> collective, const ServerConfig& config)
    : collective_(std::move(collective)),
      bucket_bytes_(config.data_parallel_bucket_bytes),
      checksum_steps_(config.data_parallel_checksum_steps) {
  collective_->SetTimeout(config.data_parallel_timeout);
}

void DataParallel::SetOnUnusable(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(state_mu_);
  on_unusable_ = std::move(callback);
  if (on_unusable_ && told_unusable_) on_unusable_();
}

void DataParallel::BecameUnusable() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (told_unusable_) return;
  told_unusable_ = true;
  if (on_unusable_) on_unusable_();
}

DataParallel::Stats DataParallel::stats() const {
  return {.checksums = checksums_.load(),
          .mismatches = mismatches_.load(),
          .usable = !broken_.load() && !diverged_.load()};
}

uint64_t ModelChecksum(const Model& model) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  };
  std::shared_ptr<const ParameterSnapshot> snapshot = model.trainer().parameters();
  mix(&snapshot->step, sizeof snapshot->step);
  for (const ParameterMap* values : {&snapshot->values, &snapshot->state}) {
    const std::map<std::string, const Tensor*> ordered = [values] {
      std::map<std::string, const Tensor*> m;
      for (const auto& [name, tensor] : *values) m[name] = &tensor;
      return m;
    }();
    for (const auto& [name, tensor] : ordered) {
      mix(name.data(), name.size() + 1);
      mix(tensor->raw(), tensor->byte_size());
    }
  }
  return hash;
}

Status DataParallel::CompareChecksums(const Model& model) {
  v1::ReplicaCommand command;
  command.set_checksum(model.id());
  BF_RETURN_IF_ERROR(Send(command));
  const std::string mine = std::to_string(ModelChecksum(model));
  std::vector<std::string> all;
  BF_RETURN_IF_ERROR(Broken(collective_->Gather(mine, &all)));
  std::string differing;
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != mine) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  }
  const int64_t step = model.trainer().parameters()->step;
  if (differing.empty()) {
    ++checksums_;
    spdlog::info("data-parallel checksum of model {} at step {}: {} ranks agree", model.id(), step,
                 ranks());
    return Status::Ok();
  }
  ++mismatches_;
  diverged_.store(true);
  BecameUnusable();
  const std::string message = "the copies of model '" + model.id() + "' on ranks " + differing +
                              " differ from rank 0's at step " + std::to_string(step) +
                              "; restart the job (mpirun) to go on from the last checkpoint";
  spdlog::error("data-parallel checksum: {}", message);
  return DataLossError(message + "; the step was not applied");
}

DataParallel::~DataParallel() {
  if (rank() == 0) Stop();
}

Status DataParallel::CheckUsable() const {
  if (diverged_.load()) {
    return DataLossError(
        "the ranks' copies of a model differ (see the log); restart the job (mpirun) to go on "
        "from the last checkpoint");
  }
  if (!broken_.load()) return Status::Ok();
  std::lock_guard<std::mutex> lock(state_mu_);
  return UnavailableError("the data-parallel job is broken (" + broken_reason_ +
                          "); restart it (mpirun) to go on from the last checkpoint");
}

Status DataParallel::Broken(Status status) {
  if (status.code() != StatusCode::kUnavailable) return status;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (broken_reason_.empty()) broken_reason_ = status.message();
  }
  if (!broken_.exchange(true)) {
    spdlog::error("data-parallel job broken: {}", status.ToString());
    BecameUnusable();
  }
  return UnavailableError(status.message() +
                          "; nothing was applied, and the job cannot go on: restart it (mpirun) "
                          "to go on from the last checkpoint");
}

Status DataParallel::Send(const v1::ReplicaCommand& command) {
  BF_RETURN_IF_ERROR(CheckUsable());
  if (stopped_) return UnavailableError("the data-parallel job is stopping");
  std::string bytes = command.SerializeAsString();
  return Broken(collective_->Broadcast(&bytes));
}

Status DataParallel::Agree(const Status& mine) {
  int64_t failed = mine.ok() ? 0 : 1;
  BF_RETURN_IF_ERROR(Broken(collective_->AllreduceMax(&failed)));
  if (failed == 0) return Status::Ok();
  return Broken(FirstFailure(*collective_, mine));
}

Status DataParallel::ShareModel(Model& model) {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ReplicaCommand command;
  *command.mutable_model()->mutable_record() = model.record();
  *command.mutable_model()->mutable_state() = model.TakeCheckpoint();
  BF_RETURN_IF_ERROR(Send(command));
  return Agree(Status::Ok());
}

Status DataParallel::ShareNewModel(Model& model) {
  Status shared = ShareModel(model);
  if (!shared.ok() && shared.code() != StatusCode::kUnavailable) (void)DropModel(model.id());
  return shared;
}

Status DataParallel::DropModel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ReplicaCommand command;
  command.set_delete_model(id);
  return Send(command);
}

StatusOr<StepResult> DataParallel::Step(Model& model, const TensorMap& batch,
                                        const StepOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  // Checked here, before any rank starts: every rank is at the same step.
  std::shared_ptr<const ParameterSnapshot> current = model.trainer().parameters();
  BF_RETURN_IF_ERROR(CheckIfStep(*current, options.if_step));
  BF_RETURN_IF_ERROR(CheckShardableLoss(model.trainer().graph()));
  if (checksum_steps_ > 0 && current->step > 0 && current->step % checksum_steps_ == 0) {
    BF_RETURN_IF_ERROR(CompareChecksums(model));
  }
  const int64_t rows = BatchRows(model.trainer().graph(), batch);
  if (rows < 1) {
    return InvalidArgumentError(
        rows < 0 ? "a data-parallel step splits the batch along its rows, and no tensor of this "
                   "batch feeds a placeholder with the batch (N) on axis 0"
                 : "the batch has no rows");
  }
  StepOptions shard_options = options;
  shard_options.if_step.reset();
  return Split(model, batch, rows, shard_options, /*gradients_only=*/false,
               [&model](const FeedMap& shard, const StepOptions& o) {
                 return model.trainer().Step(shard, o);
               });
}

StatusOr<StepResult> DataParallel::ComputeGradients(const Model& model, const TensorMap& batch,
                                                    const RunOptions& run) {
  const Trainer& trainer = model.trainer();
  const int64_t rows = BatchRows(trainer.graph(), batch);
  if (rows < 1 || !CheckShardableLoss(trainer.graph()).ok() || !CheckUsable().ok()) {
    // Rank 0's copy answers as well as the job's (every copy is the same; in a broken job it is
    // the one reads are served from), and says what is wrong with the batch, if anything.
    return trainer.ComputeGradients(Feeds(batch), run);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return Split(model, batch, rows, StepOptions{.run = run}, /*gradients_only=*/true,
               [&trainer](const FeedMap& shard, const StepOptions& o) {
                 return trainer.ComputeShardGradients(shard, o);
               });
}

StatusOr<StepResult> DataParallel::Split(const Model& model, const TensorMap& batch, int64_t rows,
                                         StepOptions options, bool gradients_only,
                                         const ShardRunner& run) {
  const Graph& graph = model.trainer().graph();
  std::shared_ptr<const ParameterSnapshot> current = model.trainer().parameters();
  v1::ReplicaCommand command;
  v1::ReplicaStep* step = command.mutable_step();
  step->set_model_id(model.id());
  if (options.learning_rate) step->set_learning_rate(*options.learning_rate);
  step->set_batch_rows(rows);
  step->set_gradients_only(gradients_only);
  BF_RETURN_IF_ERROR(Send(command));

  const std::vector<int64_t> sizes = ShardRows(rows, ranks());
  std::vector<std::string> pieces;
  TensorMap mine;
  int64_t begin = 0;
  for (int r = 0; r < ranks(); ++r) {
    const int64_t n = sizes[static_cast<size_t>(r)];
    TensorMap shard = ShardOfBatch(graph, batch, begin, n);
    begin += n;
    if (r == 0) {
      mine = std::move(shard);
      pieces.emplace_back();
      continue;
    }
    v1::ReplicaShard wire;
    wire.set_rows(n);
    EncodeTensors(shard, wire.mutable_batch());
    pieces.push_back(wire.SerializeAsString());
  }
  std::string unused;
  BF_RETURN_IF_ERROR(Broken(collective_->Scatter(pieces, &unused)));
  MpiReducer reducer(collective_.get(), model.trainer(), *current, sizes[0], rows, bucket_bytes_);
  options.reducer = &reducer;
  StatusOr<StepResult> result = run(Feeds(mine), options);
  if (!result.ok()) return Broken(result.status());
  return result;
}

void DataParallel::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  Status told = CheckUsable();
  if (told.code() != StatusCode::kUnavailable) {
    v1::ReplicaCommand command;
    command.set_stop(true);
    std::string bytes = command.SerializeAsString();
    told = collective_->Broadcast(&bytes);
  }
  if (told.code() == StatusCode::kUnavailable) {
    // The other ranks cannot be told: some wait for a rank that is gone (Note [Dead ranks]).
    spdlog::error("data-parallel job broken: ending every rank (MPI_Abort): {}", told.message());
    spdlog::shutdown();
    collective_->Abort(1);
  }
}

int DataParallel::Follow(const ServerConfig& config) {
  Follower follower(config, collective_.get());
  spdlog::info("data-parallel rank {} of {} (pid {}) on {}: following rank 0", rank(), ranks(),
               getpid(), collective_->host());
  for (;;) {
    std::string bytes;
    if (Status received = collective_->Broadcast(&bytes, Collective::Patience::kForever);
        !received.ok()) {
      spdlog::error("{}", received.ToString());
      return 1;
    }
    v1::ReplicaCommand command;
    if (!command.ParseFromString(bytes)) {
      spdlog::error("undecodable command from rank 0");
      return 1;
    }
    Status status;
    switch (command.command_case()) {
      case v1::ReplicaCommand::kModel:
        status = Agree(follower.ApplyModel(command.model()));
        break;
      case v1::ReplicaCommand::kDeleteModel:
        follower.Drop(command.delete_model());
        break;
      case v1::ReplicaCommand::kStep:
        status = follower.Step(command.step());
        break;
      case v1::ReplicaCommand::kChecksum:
        status = collective_->Gather(follower.Checksum(command.checksum()), nullptr);
        break;
      case v1::ReplicaCommand::kStop:
        spdlog::info("rank 0 stopped the job");
        return 0;
      default:
        spdlog::error("unknown command from rank 0");
        return 1;
    }
    if (status.code() == StatusCode::kUnavailable) {
      spdlog::error("{}", status.ToString());
      return 1;
    }
    if (!status.ok()) spdlog::debug("rank {}: {}", rank(), status.ToString());
  }
}

}  // namespace backflow::server
