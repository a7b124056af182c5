#include "server/training_stats.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "server/telemetry/request_metrics.h"

namespace backflow::server {

void RateWindow::Record(Clock::time_point when, int64_t rows) {
  const int64_t second = std::chrono::duration_cast<std::chrono::seconds>(when - started_).count();
  Bucket& bucket = buckets_[static_cast<size_t>(std::max<int64_t>(second, 0) % kSeconds)];
  if (bucket.second != second) bucket = Bucket{.second = second};
  ++bucket.steps;
  bucket.rows += rows;
}

RateWindow::Rates RateWindow::Read(Clock::time_point now) const {
  const double since_start = std::chrono::duration<double>(now - started_).count();
  const double window = std::clamp(since_start, 1.0, static_cast<double>(kSeconds));
  const int64_t second = static_cast<int64_t>(std::floor(since_start));
  int64_t steps = 0;
  int64_t rows = 0;
  for (const Bucket& bucket : buckets_) {
    if (bucket.second >= 0 && bucket.second > second - kSeconds && bucket.second <= second) {
      steps += bucket.steps;
      rows += bucket.rows;
    }
  }
  return Rates{.steps_per_second = static_cast<double>(steps) / window,
               .samples_per_second = static_cast<double>(rows) / window};
}

TrainingStats::TrainingStats(Clock::time_point created)
    : rates_(created), step_seconds_(DurationBuckets()) {
  history_.set_stride(1);
}

void TrainingStats::RecordStep(const Step& step) {
  v1::TrainingPoint point;
  point.set_step(step.step);
  point.set_loss(step.loss);
  point.set_unix_ms(step.ended_unix_ms);
  for (const double value : step.metrics) point.add_metrics(value);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++totals_.steps;
    totals_.samples += step.rows;
    totals_.last_step = step.step;
    totals_.last_loss = step.loss;
    rates_.Record(step.ended, step.rows);
    history_.set_samples(history_.samples() + step.rows);
    Append(std::move(point));
  }
  step_seconds_.Observe(std::chrono::duration<double>(step.time).count());
}

void TrainingStats::Append(v1::TrainingPoint point) {
  auto* points = history_.mutable_points();
  // A step number not above the latest one's (parameters set to an earlier step): the curve
  // from there on is replaced.
  while (!points->empty() && points->rbegin()->step() >= point.step()) points->RemoveLast();
  // The previous latest point stays only if it is on the grid (or the first).
  if (points->size() > 1 && points->rbegin()->step() % history_.stride() != 0) {
    points->RemoveLast();
  }
  *points->Add() = std::move(point);
  if (points->size() <= kHistoryCapacity) return;
  const int64_t stride = history_.stride() * 2;
  history_.set_stride(stride);
  int kept = 0;
  for (int i = 0; i < points->size(); ++i) {
    if (i == 0 || i == points->size() - 1 || points->Get(i).step() % stride == 0) {
      if (kept != i) points->SwapElements(kept, i);
      ++kept;
    }
  }
  points->DeleteSubrange(kept, points->size() - kept);
}

TrainingStats::Totals TrainingStats::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return totals_;
}

void TrainingStats::Fill(Clock::time_point now, bool with_history,
                         v1::TrainingStatistics* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const RateWindow::Rates rates = rates_.Read(now);
  out->set_samples(history_.samples());
  out->set_steps_per_second(rates.steps_per_second);
  out->set_samples_per_second(rates.samples_per_second);
  if (!history_.points().empty()) {
    const v1::TrainingPoint& last = *history_.points().rbegin();
    out->set_has_loss(true);
    out->set_last_loss(last.loss());
    out->set_last_step_unix_ms(last.unix_ms());
  }
  if (with_history) *out->mutable_history() = history_;
}

v1::TrainingHistory TrainingStats::History() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

Status TrainingStats::CheckHistory(const v1::TrainingHistory& history, int64_t step, int metrics) {
  if (history.points_size() > kHistoryCapacity + 1) {
    return InvalidArgumentError("training history: " + std::to_string(history.points_size()) +
                                " points, more than " + std::to_string(kHistoryCapacity + 1));
  }
  if (history.stride() < 1 || history.samples() < 0) {
    return InvalidArgumentError("training history: stride " + std::to_string(history.stride()) +
                                " and samples " + std::to_string(history.samples()) +
                                " must be positive and not negative");
  }
  int64_t previous = 0;
  for (const v1::TrainingPoint& point : history.points()) {
    if (point.step() <= previous || point.step() > step) {
      return InvalidArgumentError("training history: step " + std::to_string(point.step()) +
                                  " after step " + std::to_string(previous) +
                                  " (steps must rise from 1 to the checkpoint's " +
                                  std::to_string(step) + ")");
    }
    if (point.metrics_size() != metrics) {
      return InvalidArgumentError("training history: step " + std::to_string(point.step()) +
                                  " has " + std::to_string(point.metrics_size()) +
                                  " metrics, the model " + std::to_string(metrics));
    }
    previous = point.step();
  }
  return Status::Ok();
}

void TrainingStats::Restore(const v1::TrainingHistory* history, int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  if (history != nullptr) {
    history_ = *history;
    return;
  }
  auto* points = history_.mutable_points();
  while (!points->empty() && points->rbegin()->step() > step) points->RemoveLast();
}

}  // namespace backflow::server
