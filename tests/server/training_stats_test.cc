// TrainingStats (server/training_stats.h): the bounded loss curve of Note [Training history],
// the last-minute rates, and the checks a checkpoint's or an upload's history must pass.
#include "server/training_stats.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <vector>

namespace backflow::server {
namespace {

using Clock = TrainingStats::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Step `step`'s loss: a pure function, so a point can be checked against the step it claims.
double LossOf(int64_t step) { return 1.0 / static_cast<double>(step) + 0.25; }

TrainingStats::Step StepAt(int64_t step, Clock::time_point when, int64_t rows = 8) {
  return {.step = step,
          .loss = LossOf(step),
          .metrics = {static_cast<double>(step % 7)},
          .rows = rows,
          .time = milliseconds(3),
          .ended = when,
          .ended_unix_ms = 1'700'000'000'000 + step};
}

std::vector<int64_t> Steps(const v1::TrainingHistory& history) {
  std::vector<int64_t> steps;
  for (const v1::TrainingPoint& point : history.points()) steps.push_back(point.step());
  return steps;
}

TEST(TrainingStatsTest, KeepsEveryStepUpToItsCapacity) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  for (int64_t step = 1; step <= kHistoryCapacity; ++step) stats.RecordStep(StepAt(step, start));
  const v1::TrainingHistory history = stats.History();
  ASSERT_EQ(history.points_size(), kHistoryCapacity);
  EXPECT_EQ(history.stride(), 1);
  EXPECT_EQ(history.samples(), 8 * kHistoryCapacity);
  for (int i = 0; i < history.points_size(); ++i) {
    const v1::TrainingPoint& point = history.points(i);
    EXPECT_EQ(point.step(), i + 1);
    EXPECT_EQ(point.loss(), LossOf(i + 1));
    ASSERT_EQ(point.metrics_size(), 1);
    EXPECT_EQ(point.metrics(0), static_cast<double>((i + 1) % 7));
    EXPECT_EQ(point.unix_ms(), 1'700'000'000'000 + i + 1);
  }
}

TEST(TrainingStatsTest, ALongRunIsSpannedEvenlyWithinTheCapacity) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  constexpr int64_t kSteps = 100'003;  // off the grid at the end
  for (int64_t step = 1; step <= kSteps; ++step) {
    stats.RecordStep(StepAt(step, start));
    if (step == kHistoryCapacity + 1) {
      const v1::TrainingHistory history = stats.History();
      EXPECT_EQ(history.stride(), 2);
      EXPECT_EQ(history.points_size(), 1 + kHistoryCapacity / 2 + 1)
          << "step 1, the 512 even steps, and step 1025";
    }
  }
  const v1::TrainingHistory history = stats.History();
  // 100,003 steps at stride 128 are 781 grid points; at 64 they would be 1,562, over 1,024.
  EXPECT_EQ(history.stride(), 128);
  const std::vector<int64_t> steps = Steps(history);
  ASSERT_EQ(steps.size(), 1u + kSteps / 128 + 1);
  EXPECT_EQ(steps.front(), 1);
  EXPECT_EQ(steps.back(), kSteps);
  for (size_t i = 1; i + 1 < steps.size(); ++i) EXPECT_EQ(steps[i], 128 * static_cast<int64_t>(i));
  for (const v1::TrainingPoint& point : history.points()) {
    EXPECT_EQ(point.loss(), LossOf(point.step())) << "step " << point.step();
  }
  EXPECT_EQ(history.samples(), 8 * kSteps);
}

TEST(TrainingStatsTest, TheLatestStepIsAlwaysTheLastPoint) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  for (int64_t step = 1; step <= kHistoryCapacity + 1; ++step) {
    stats.RecordStep(StepAt(step, start));
  }
  stats.RecordStep(StepAt(kHistoryCapacity + 2, start));  // on the grid of stride 2
  stats.RecordStep(StepAt(kHistoryCapacity + 3, start));  // off it: replaced by the next
  stats.RecordStep(StepAt(kHistoryCapacity + 5, start));
  const std::vector<int64_t> steps = Steps(stats.History());
  ASSERT_GE(steps.size(), 3u);
  EXPECT_EQ(steps[steps.size() - 1], kHistoryCapacity + 5);
  EXPECT_EQ(steps[steps.size() - 2], kHistoryCapacity + 2);
}

TEST(TrainingStatsTest, AnEarlierStepNumberReplacesTheCurveFromThere) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  for (int64_t step = 1; step <= 10; ++step) stats.RecordStep(StepAt(step, start));
  stats.RecordStep(StepAt(4, start));  // parameters set back to step 3, then one step
  EXPECT_EQ(Steps(stats.History()), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(TrainingStatsTest, RatesCoverTheLastMinute) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  // 10 steps of 8 rows in the first 5 s: 2 steps/s and 16 samples/s over those 5 s.
  for (int64_t step = 1; step <= 10; ++step) {
    stats.RecordStep(StepAt(step, start + milliseconds(500 * step - 250)));
  }
  v1::TrainingStatistics statistics;
  stats.Fill(start + seconds(5), false, &statistics);
  EXPECT_DOUBLE_EQ(statistics.steps_per_second(), 2.0);
  EXPECT_DOUBLE_EQ(statistics.samples_per_second(), 16.0);
  EXPECT_TRUE(statistics.has_loss());
  EXPECT_EQ(statistics.last_loss(), LossOf(10));
  EXPECT_EQ(statistics.last_step_unix_ms(), 1'700'000'000'010);
  EXPECT_EQ(statistics.samples(), 80);
  EXPECT_FALSE(statistics.has_history());
  // A minute later the window holds them all over 60 s; later still, none.
  stats.Fill(start + seconds(59), false, &statistics);
  EXPECT_DOUBLE_EQ(statistics.steps_per_second(), 10.0 / 59.0);
  stats.Fill(start + seconds(70), true, &statistics);
  EXPECT_EQ(statistics.steps_per_second(), 0.0);
  EXPECT_EQ(statistics.samples_per_second(), 0.0);
  EXPECT_EQ(statistics.samples(), 80) << "the life-long count stays";
  EXPECT_EQ(statistics.history().points_size(), 10);
}

TEST(TrainingStatsTest, AModelNeverTrainedHasNoLoss) {
  TrainingStats stats;
  v1::TrainingStatistics statistics;
  stats.Fill(Clock::now(), true, &statistics);
  EXPECT_FALSE(statistics.has_loss());
  EXPECT_EQ(statistics.samples(), 0);
  EXPECT_EQ(statistics.steps_per_second(), 0.0);
  EXPECT_EQ(statistics.history().points_size(), 0);
}

TEST(TrainingStatsTest, RestoreTakesACheckpointsCurveOrCutsTheCurrentOne) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  for (int64_t step = 1; step <= 6; ++step) stats.RecordStep(StepAt(step, start));
  const v1::TrainingHistory at_six = stats.History();
  for (int64_t step = 7; step <= 9; ++step) stats.RecordStep(StepAt(step, start));
  stats.Restore(&at_six, 6);
  EXPECT_EQ(Steps(stats.History()), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(stats.History().samples(), 48);
  stats.Restore(nullptr, 4);  // a checkpoint of an older server: no curve of its own
  EXPECT_EQ(Steps(stats.History()), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(TrainingStatsTest, CheckHistoryNamesWhatIsWrong) {
  const Clock::time_point start = Clock::now();
  TrainingStats stats(start);
  for (int64_t step = 1; step <= 5; ++step) stats.RecordStep(StepAt(step, start));
  const v1::TrainingHistory good = stats.History();
  EXPECT_TRUE(TrainingStats::CheckHistory(good, 5, 1).ok());
  EXPECT_FALSE(TrainingStats::CheckHistory(v1::TrainingHistory(), 0, 1).ok()) << "stride 0";

  const auto expect_invalid = [](const v1::TrainingHistory& history, int64_t step, int metrics,
                                 const std::string& words) {
    const Status status = TrainingStats::CheckHistory(history, step, metrics);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_NE(status.message().find(words), std::string::npos) << status.message();
  };
  expect_invalid(good, 4, 1, "step 5 after step 4");  // beyond the checkpoint's step
  expect_invalid(good, 5, 2, "has 1 metrics, the model 2");
  v1::TrainingHistory unordered = good;
  unordered.mutable_points(2)->set_step(2);
  expect_invalid(unordered, 5, 1, "step 2 after step 2");
  v1::TrainingHistory negative = good;
  negative.set_samples(-1);
  expect_invalid(negative, 5, 1, "samples -1");
  v1::TrainingHistory huge;
  huge.set_stride(1);
  for (int i = 1; i <= kHistoryCapacity + 2; ++i) huge.add_points()->set_step(i);
  expect_invalid(huge, kHistoryCapacity + 2, 0, "1026 points, more than 1025");
}

}  // namespace
}  // namespace backflow::server
