// DataParallel: one rank's part in a data-parallel job.
//
// Note [Data-parallel jobs]
// `mpirun -np N backflow-server --data-parallel [flags]` starts N ranks with the same flags.
// Rank 0 is the server: it listens, keeps the data directory and answers every RPC as a single
// server does, so clients do not change. Ranks 1..N-1 listen to nothing: each holds a replica
// of every model and applies what rank 0 tells it (Follow), until rank 0 says stop.
//
// Rank 0 sends every change of a model's state to every rank, one command at a time under one
// lock, so all ranks apply them in one order:
// - CreateModel, a model loaded from the data directory at start, SetParameters,
//   RestoreCheckpoint and UploadCheckpoint send the model as rank 0 now has it, its record and
//   its whole state (ShareModel); every rank builds or updates its replica and says whether it
//   could. A rank that cannot (out of --max-memory, say) fails the call as a single server
//   would, and a model that some rank could not create is created nowhere.
// - DeleteModel: DropModel.
// - TrainStep and every step of a Train stream: Step splits the batch's rows into N shards (the
//   first rows % N shards one row more), sends each rank its shard, and every rank, rank 0 too,
//   steps on its own with an MpiReducer, which sums the gradients so that every rank applies the
//   same update (Note [Data-parallel steps] in engine/api/gradient_reducer.h).
// - ComputeGradients: split the same way; the sums are the answer, and nothing is applied.
// Infer, Evaluate and every read run on rank 0 alone, on its copy, which equals every other
// rank's.
//
// Every --data-parallel-checksum-steps steps of a model (100), before the step, every rank sends
// rank 0 a checksum of its copy (ModelChecksum). Copies that differ would be a bug (every rank
// applies the same sums to the same values); the step is refused with DATA_LOSS naming the
// ranks, and so is every later step and change, until the job is restarted from a checkpoint.
//
// A collective call that fails or gives up (a rank is gone: Note [Dead ranks] in
// server/data_parallel/collective.h) is UNAVAILABLE, and from then on the job is broken: every
// step and change answers UNAVAILABLE, saying why, until it is restarted (from the data
// directory's checkpoints, with the same or another N). Rank 0 goes on serving reads and
// inference from its copy, which no failed step changed; its health turns NOT_SERVING (so an
// orchestrator restarts the job), and when it stops it ends the other ranks with MPI_Abort, as it
// can no longer tell them to stop.
#ifndef BACKFLOW_SERVER_DATA_PARALLEL_REPLICA_H_
#define BACKFLOW_SERVER_DATA_PARALLEL_REPLICA_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engine/api/trainer.h"
#include "server/config.h"
#include "server/convert.h"
#include "server/data_parallel/collective.h"
#include "server/model.h"

namespace backflow::server {

class DataParallel {
 public:
  // config.data_parallel_bucket_bytes: of the gradient buckets each step sums (MpiReducer);
  // config.data_parallel_checksum_steps: how often Step compares the ranks' copies.
  DataParallel(std::unique_ptr<Collective> collective, const ServerConfig& config);
  ~DataParallel();  // rank 0: Stop()

  int rank() const { return collective_->rank(); }
  int ranks() const { return collective_->size(); }

  // Rank 0 only. Each is one command; callers hold the model's queue (or own the model alone).
  Status ShareModel(Model& model);
  // ShareModel for a model rank 0 has just built and not yet registered: if some rank cannot
  // hold it, it is dropped from every rank and that rank's error returned.
  Status ShareNewModel(Model& model);
  Status DropModel(const std::string& id);
  StatusOr<StepResult> Step(Model& model, const TensorMap& batch, const StepOptions& options);
  // ComputeGradients split as Step is, summing the gradients and applying nothing; on rank 0
  // alone for a batch or graph Step would refuse, and once the job is broken. The caller need
  // not hold the model's queue.
  StatusOr<StepResult> ComputeGradients(const Model& model, const TensorMap& batch,
                                        const RunOptions& run);
  // Tells the other ranks to exit; later commands fail. Idempotent. In a broken job, ends every
  // rank, this one included (Collective::Abort), once the caller has saved what it holds.
  void Stop();
  // Rank 0 on SIGTERM: waits for the other ranks are bounded from now on (Note [Dead ranks]).
  void Interrupt() { collective_->Interrupt(); }
  // `callback` runs once (on some step's thread) when the job breaks or its copies are found to
  // differ; null clears it. The server turns its health check to NOT_SERVING.
  void SetOnUnusable(std::function<void()> callback);

  // Ranks 1..N-1: applies rank 0's commands until it says stop; the process's exit status.
  int Follow(const ServerConfig& config);

  // For /metrics (rank 0).
  struct Stats {
    int64_t checksums = 0;   // comparisons in which every rank agreed
    int64_t mismatches = 0;  // comparisons in which some rank differed
    bool usable = true;      // false once the job is broken or its copies differ
  };
  Stats stats() const;

 private:
  // UNAVAILABLE once a collective call has failed (Note [Data-parallel jobs]).
  Status CheckUsable() const;
  // Marks the job broken when `status` is a failed collective call; returns it, saying so.
  Status Broken(Status status);
  // Runs the SetOnUnusable callback, the first time only.
  void BecameUnusable();
  // Rank 0: sends `command` to every rank.
  Status Send(const v1::ReplicaCommand& command);
  // Every rank: the first failure among the ranks' `mine` (rank 0 names the rank), else OK.
  Status Agree(const Status& mine);
  // Rank 0, holding mu_: sends the shards of `batch` (of `rows`) to the ranks, and runs this
  // rank's with `run` and an MpiReducer in `options`.
  using ShardRunner = std::function<StatusOr<StepResult>(const FeedMap&, const StepOptions&)>;
  StatusOr<StepResult> Split(const Model& model, const TensorMap& batch, int64_t rows,
                             StepOptions options, bool gradients_only, const ShardRunner& run);
  // Rank 0: every rank's checksum of `model` against its own (Note [Data-parallel jobs]).
  Status CompareChecksums(const Model& model);

  const std::unique_ptr<Collective> collective_;
  const int64_t bucket_bytes_;
  const int64_t checksum_steps_;
  std::mutex mu_;  // rank 0: one command at a time
  std::atomic<bool> broken_{false};
  mutable std::mutex state_mu_;
  std::string broken_reason_;          // GUARDED_BY(state_mu_): the failure that broke the job
  std::function<void()> on_unusable_;  // GUARDED_BY(state_mu_)
  bool told_unusable_ = false;         // GUARDED_BY(state_mu_)
  std::atomic<bool> diverged_{false};
  std::atomic<int64_t> checksums_{0};
  std::atomic<int64_t> mismatches_{0};
  bool stopped_ = false;  // GUARDED_BY(mu_)
};

// A checksum (FNV-1a, 64 bits) of a model's step, parameters and running state, by name: equal on
// every rank while the copies are bitwise equal.
uint64_t ModelChecksum(const Model& model);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_DATA_PARALLEL_REPLICA_H_
