#include "server/autosave.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "server/names.h"

namespace backflow::server {
namespace {

constexpr std::chrono::seconds kFailureLogInterval{60};

}  // namespace

AutoCheckpointer::AutoCheckpointer(AutoCheckpointPolicy policy, CheckpointStore* store)
    : policy_(policy), store_(store) {
  if (policy_.enabled()) thread_ = std::thread([this] { Run(); });
}

AutoCheckpointer::~AutoCheckpointer() { Stop(); }

bool AutoCheckpointer::AfterStep(Model& model) {
  if (!policy_.enabled()) return false;
  const auto now = CheckpointSchedule::Clock::now();
  const int64_t step = model.trainer().parameters()->step;  // only this queue publishes
  if (!model.schedule().Due(policy_, step, now)) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !busy_.insert(&model).second) return false;  // coalesced
  }
  model.schedule().Restart(step, now);
  Job job{.model = model.shared_from_this(),
          .snapshot = model.trainer().TakeCheckpoint(),
          .history = model.training_stats().History(),
          .generation = model.generation()};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      busy_.erase(&model);
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  changed_.notify_all();
  return true;
}

void AutoCheckpointer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t AutoCheckpointer::written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

int64_t AutoCheckpointer::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

void AutoCheckpointer::Run() {
  pthread_setname_np(pthread_self(), "bf-checkpoint");  // as top -H shows it
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything handed over is written
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    const Outcome outcome = Write(job);
    const Model* model = job.model.get();
    job = Job{};  // the snapshot's memory goes back before the next one is taken
    lock.lock();
    // Counted as the model stops being busy, so a caller that sees the count sees it free.
    if (outcome == Outcome::kWritten) ++written_;
    if (outcome == Outcome::kFailed) ++failed_;
    busy_.erase(model);
  }
}

AutoCheckpointer::Outcome AutoCheckpointer::Write(Job& job) {
  Model& model = *job.model;
  v1::CheckpointRecord record = Model::EncodeCheckpoint(job.snapshot);
  *record.mutable_history() = std::move(job.history);
  job.snapshot = Trainer::Checkpoint{};
  std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
  // Deleted: its directory is gone, and must stay gone. Not newer: a SaveCheckpoint or restore
  // already put this state or a later one on disk.
  if (model.deleted() || model.saved_generation() >= job.generation) return Outcome::kSkipped;
  StatusOr<StoredCheckpoint> saved = store_->SaveCheckpoint(model.id(), record);
  if (!saved.ok()) {
    LogFailure(model.id(), saved.status());
    return Outcome::kFailed;
  }
  model.MarkSaved(job.generation, record.step());
  spdlog::debug("automatic checkpoint of model {} at step {} ({} bytes)", model.id(), record.step(),
                saved->bytes);
  return Outcome::kWritten;
}

void AutoCheckpointer::LogFailure(const std::string& id, const Status& status) {
  const auto now = std::chrono::steady_clock::now();
  if (logged_a_failure_ && now - last_failure_log_ < kFailureLogInterval) {
    ++unlogged_failures_;
    return;
  }
  const std::string unlogged =
      unlogged_failures_ > 0 ? "; " + std::to_string(unlogged_failures_) + " not logged before"
                             : "";
  spdlog::error("model {}: automatic checkpoint failed (retried an interval later{}): {}",
                Escaped(id), unlogged, Escaped(status.ToString()));
  logged_a_failure_ = true;
  last_failure_log_ = now;
  unlogged_failures_ = 0;
}

}  // namespace backflow::server
