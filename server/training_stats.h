// TrainingStats: a model's training so far: its loss curve and life-long sample count (kept
// with its checkpoints), its steps and samples per second over the last minute, and, for this
// process, steps, samples and how long steps took (the histogram backflow_train_step_seconds
// exposes; Note [Metrics] in server/metrics_text.h). Thread-safe, though a model's steps run one
// at a time on its queue.
//
// Note [Training history]
// A client that reconnects to a long training job wants its whole loss curve, and a server
// cannot keep every step of a million-step job. The history keeps the first step, every
// `stride`-th step and the latest one. It starts at stride 1; when it passes kHistoryCapacity
// points, every point whose step is not a multiple of twice the stride is dropped (but the
// first and the latest) and the stride doubles. So it always spans the whole training at an
// even spacing, in at most kHistoryCapacity + 1 points, each exactly what the step's answer
// said (a sample, not an average: the points a client saw are the points it gets back).
// The history goes into every checkpoint (the manifest of its file, the header of a download)
// as it was at the checkpoint's step, and comes back with it: a restart or a RestoreCheckpoint
// puts the model's curve where its parameters are, and an uploaded model keeps its curve.
#ifndef BACKFLOW_SERVER_TRAINING_STATS_H_
#define BACKFLOW_SERVER_TRAINING_STATS_H_

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"

namespace backflow::server {

inline constexpr int kHistoryCapacity = 1024;

// Steps and rows counted in one-second buckets over the last minute.
class RateWindow {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateWindow(Clock::time_point started) : started_(started) {}
  void Record(Clock::time_point when, int64_t rows);
  struct Rates {
    double steps_per_second = 0;
    double samples_per_second = 0;
  };
  // Over the minute before `now`, or since `started` when that is shorter (at least a second).
  Rates Read(Clock::time_point now) const;

 private:
  static constexpr int kSeconds = 60;
  struct Bucket {
    int64_t second = -1;  // since started_
    int64_t steps = 0;
    int64_t rows = 0;
  };
  Clock::time_point started_;
  std::array<Bucket, kSeconds> buckets_{};
};

class TrainingStats {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TrainingStats(Clock::time_point created = Clock::now());

  struct Totals {
    int64_t steps = 0;       // steps taken since the process started
    int64_t samples = 0;     // their rows
    int64_t last_step = -1;  // the model's step number after the last one; -1: none yet
    double last_loss = std::numeric_limits<double>::quiet_NaN();
  };
  struct Step {
    int64_t step = 0;  // the model's step after it
    double loss = 0;
    std::vector<double> metrics;  // in ModelInfo.metrics' order
    int64_t rows = 0;
    Clock::duration time{};     // how long it took
    Clock::time_point ended;    // for the rates
    int64_t ended_unix_ms = 0;  // for the history
  };
  void RecordStep(const Step& step);
  Totals Read() const;
  // The step-time histogram in seconds, without labels.
  prometheus::ClientMetric StepSeconds() const { return step_seconds_.Collect(); }

  // ModelInfo.statistics as of `now`; the history only `with_history`.
  void Fill(Clock::time_point now, bool with_history, v1::TrainingStatistics* out) const;
  // What a checkpoint of the model's current state keeps.
  v1::TrainingHistory History() const;
  // InvalidArgument unless `history` could be a model's at `step` with `metrics` metrics: at
  // most kHistoryCapacity + 1 points, steps rising from 1 up to `step`, a positive stride, each
  // point with `metrics` values, samples not negative.
  static Status CheckHistory(const v1::TrainingHistory& history, int64_t step, int metrics);
  // Puts the curve where a restored checkpoint at `step` puts the parameters: its `history`
  // (checked) or, for a checkpoint without one (an older server's), the current curve cut after
  // `step`.
  void Restore(const v1::TrainingHistory* history, int64_t step);

 private:
  void Append(v1::TrainingPoint point);  // with mu_ held

  mutable std::mutex mu_;
  Totals totals_;                // GUARDED_BY(mu_)
  RateWindow rates_;             // GUARDED_BY(mu_)
  v1::TrainingHistory history_;  // GUARDED_BY(mu_): stride starts at 1
  prometheus::Histogram step_seconds_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TRAINING_STATS_H_
