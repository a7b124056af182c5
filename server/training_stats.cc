#include "server/training_stats.h"

#include "server/telemetry/request_metrics.h"

namespace backflow::server {

TrainingStats::TrainingStats() : step_seconds_(DurationBuckets()) {}

void TrainingStats::RecordStep(int64_t step, double loss, int64_t rows,
                               std::chrono::steady_clock::duration time) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++totals_.steps;
    totals_.samples += rows;
    totals_.last_step = step;
    totals_.last_loss = loss;
  }
  step_seconds_.Observe(std::chrono::duration<double>(time).count());
}

TrainingStats::Totals TrainingStats::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return totals_;
}

}  // namespace backflow::server
