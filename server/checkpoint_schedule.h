// When a model's next automatic checkpoint is due (Note [Automatic checkpoints] in
// server/autosave.h): after `every_steps` steps or `every_seconds` seconds since the last one
// was started, whichever comes first. Plain data and arithmetic, so the rule is tested alone.
#ifndef BACKFLOW_SERVER_CHECKPOINT_SCHEDULE_H_
#define BACKFLOW_SERVER_CHECKPOINT_SCHEDULE_H_

#include <chrono>
#include <cstdint>

namespace backflow::server {

struct AutoCheckpointPolicy {
  int64_t every_steps = 0;                // 0: never by step count
  std::chrono::seconds every_seconds{0};  // 0: never by time
  bool enabled() const { return every_steps > 0 || every_seconds.count() > 0; }
};

// One model's schedule. Not thread-safe: only the model's queue touches it (Note [Serving
// threads]), which orders its calls.
class CheckpointSchedule {
 public:
  using Clock = std::chrono::steady_clock;

  CheckpointSchedule() : last_time_(Clock::now()) {}

  // True when the model, now at `step`, is due: at least every_steps steps, or every_seconds
  // seconds, since the last Restart. Never due under a disabled policy, and never for a step
  // count that went backwards (a restore to an older checkpoint) until time says so.
  bool Due(const AutoCheckpointPolicy& policy, int64_t step, Clock::time_point now) const {
    if (policy.every_steps > 0 && step - last_step_ >= policy.every_steps) return true;
    return policy.every_seconds.count() > 0 && now - last_time_ >= policy.every_seconds;
  }
  // Counts from here: a checkpoint (automatic or not) of `step` was started at `now`. Called
  // whether or not the write then succeeds, so a failing disk is retried once per interval,
  // not after every step.
  void Restart(int64_t step, Clock::time_point now) {
    last_step_ = step;
    last_time_ = now;
  }
  int64_t last_step() const { return last_step_; }

 private:
  int64_t last_step_ = 0;
  Clock::time_point last_time_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CHECKPOINT_SCHEDULE_H_
