// TrainingStats: a model's training so far, as this process saw it: steps and samples, the last
// loss, and how long steps took (the histogram backflow_train_step_seconds exposes; Note
// [Metrics] in server/metrics_text.h). Kept in memory; thread-safe, though a model's steps run
// one at a time on its queue.
#ifndef BACKFLOW_SERVER_TRAINING_STATS_H_
#define BACKFLOW_SERVER_TRAINING_STATS_H_

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>

namespace backflow::server {

class TrainingStats {
 public:
  TrainingStats();

  struct Totals {
    int64_t steps = 0;       // steps taken since the process started
    int64_t samples = 0;     // their rows
    int64_t last_step = -1;  // the model's step number after the last one; -1: none yet
    double last_loss = std::numeric_limits<double>::quiet_NaN();
  };
  // One step of `rows` rows that took `time` and brought the model to `step` with `loss`.
  void RecordStep(int64_t step, double loss, int64_t rows,
                  std::chrono::steady_clock::duration time);
  Totals Read() const;
  // The step-time histogram in seconds, without labels.
  prometheus::ClientMetric StepSeconds() const { return step_seconds_.Collect(); }

 private:
  mutable std::mutex mu_;
  Totals totals_;  // GUARDED_BY(mu_)
  prometheus::Histogram step_seconds_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TRAINING_STATS_H_
