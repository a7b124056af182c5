// AutoCheckpointer: the server's automatic checkpoints, written by one background thread.
//
// Note [Automatic checkpoints]
// Without them, a crash (SIGKILL, the OOM killer, a power cut) loses every step since the last
// SaveCheckpoint or clean shutdown. So after each training step, on the model's queue, the
// model's CheckpointSchedule (server/checkpoint_schedule.h) says whether --checkpoint-every-steps
// steps or --checkpoint-every-seconds seconds have passed since the last checkpoint. If so, the
// step path takes the model's immutable snapshot (the published ParameterSnapshot, shared, plus a
// copy of the optimizer's slots, the only state a later step changes in place) and hands it to
// the writer thread, which encodes and writes it as the model's latest checkpoint
// (CheckpointStore::SaveCheckpoint: atomic, checksummed). The step path never waits for the disk.
//
// Bounded: a model has at most one automatic write handed over and not finished. While it has
// one, later due steps are skipped (coalesced), and the next step after the write finishes
// takes a fresh snapshot, so a slow disk costs checkpoint frequency, never memory or step time.
// A crash therefore loses at most the interval plus the steps applied while one write ran.
//
// Ordering with the model's other file operations: every write, read and delete of a model's
// checkpoint file holds Model::checkpoint_mu(). The writer, holding it, skips a snapshot whose
// model was deleted meanwhile (so a deleted model's directory is never recreated) or whose
// generation is not newer than what is already on disk (a SaveCheckpoint or restore got there
// first), so the checkpoint on disk and GetModel's checkpoint_step only move forward.
//
// A failed write (a full or read-only disk) is logged, at most once a minute with a count of
// those not logged, and the server keeps serving; the schedule restarts at every attempt, so the
// write is retried an interval later, not after every step.
#ifndef BACKFLOW_SERVER_AUTOSAVE_H_
#define BACKFLOW_SERVER_AUTOSAVE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "engine/api/trainer.h"
#include "server/checkpoint_schedule.h"
#include "server/model.h"
#include "server/storage/checkpoint_store.h"

namespace backflow::server {

class AutoCheckpointer {
 public:
  // Starts the writer thread if `policy` is enabled. `store` must outlive this object.
  AutoCheckpointer(AutoCheckpointPolicy policy, CheckpointStore* store);
  ~AutoCheckpointer();  // Stop()
  AutoCheckpointer(const AutoCheckpointer&) = delete;
  AutoCheckpointer& operator=(const AutoCheckpointer&) = delete;

  const AutoCheckpointPolicy& policy() const { return policy_; }

  // Called on `model`'s queue after each step it applies: hands a snapshot to the writer when
  // the model is due and has no automatic write in flight. Returns true if it handed one over.
  // Costs a clock read when not due; when due, a copy of the optimizer's slots. Never blocks on
  // the disk. Does nothing after Stop().
  bool AfterStep(Model& model);

  // Waits until every snapshot handed over has been written (or skipped), then ends the thread.
  // Idempotent. The server calls it at shutdown, once no step can run, before the shutdown
  // checkpoint.
  void Stop();

  // Totals since start: automatic checkpoints written, and writes that failed. A model whose
  // write is counted here has no write in flight any more.
  int64_t written() const;
  int64_t failed() const;

 private:
  struct Job {
    std::shared_ptr<Model> model;
    Trainer::Checkpoint snapshot;
    v1::TrainingHistory history;  // as of the snapshot's step
    int64_t generation = 0;
  };
  enum class Outcome { kWritten, kFailed, kSkipped };
  void Run();
  Outcome Write(Job& job);
  void LogFailure(const std::string& id, const Status& status);

  const AutoCheckpointPolicy policy_;
  CheckpointStore* const store_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Job> jobs_;         // GUARDED_BY(mu_): handed over, not started
  std::set<const Model*> busy_;  // GUARDED_BY(mu_): models with a job handed over, not finished
  bool stopping_ = false;        // GUARDED_BY(mu_)
  int64_t written_ = 0;          // GUARDED_BY(mu_)
  int64_t failed_ = 0;           // GUARDED_BY(mu_)

  // The writer thread's own: when a failure was last logged, and failures since not logged.
  bool logged_a_failure_ = false;
  std::chrono::steady_clock::time_point last_failure_log_{};
  int64_t unlogged_failures_ = 0;

  std::thread thread_;  // started last, in the constructor
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_AUTOSAVE_H_
