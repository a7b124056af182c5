// CheckpointSchedule: when an automatic checkpoint is due, by step count, by time, or both, and
// never under a disabled policy.
#include "server/checkpoint_schedule.h"

#include <gtest/gtest.h>

namespace backflow::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = CheckpointSchedule::Clock;

TEST(CheckpointScheduleTest, ByStepsIsDueEveryNSteps) {
  const AutoCheckpointPolicy policy{.every_steps = 5, .every_seconds = seconds(0)};
  CheckpointSchedule schedule;
  const Clock::time_point t0 = Clock::now();
  schedule.Restart(0, t0);
  EXPECT_FALSE(schedule.Due(policy, 4, t0 + seconds(3600)));  // time does not count
  EXPECT_TRUE(schedule.Due(policy, 5, t0));
  EXPECT_TRUE(schedule.Due(policy, 9, t0));  // a skipped one stays due
  schedule.Restart(9, t0);
  EXPECT_FALSE(schedule.Due(policy, 13, t0));
  EXPECT_TRUE(schedule.Due(policy, 14, t0));
  EXPECT_EQ(schedule.last_step(), 9);
}

TEST(CheckpointScheduleTest, ByTimeIsDueAfterTheIntervalWhateverTheSteps) {
  const AutoCheckpointPolicy policy{.every_steps = 0, .every_seconds = seconds(60)};
  CheckpointSchedule schedule;
  const Clock::time_point t0 = Clock::now();
  schedule.Restart(100, t0);
  EXPECT_FALSE(schedule.Due(policy, 1000000, t0 + seconds(59)));  // steps do not count
  EXPECT_TRUE(schedule.Due(policy, 101, t0 + seconds(60)));
  schedule.Restart(101, t0 + seconds(61));
  EXPECT_FALSE(schedule.Due(policy, 102, t0 + seconds(120)));
  EXPECT_TRUE(schedule.Due(policy, 102, t0 + seconds(121)));
}

TEST(CheckpointScheduleTest, BothIsDueAtWhicheverComesFirst) {
  const AutoCheckpointPolicy policy{.every_steps = 10, .every_seconds = seconds(1)};
  CheckpointSchedule schedule;
  const Clock::time_point t0 = Clock::now();
  schedule.Restart(0, t0);
  EXPECT_FALSE(schedule.Due(policy, 9, t0 + milliseconds(999)));
  EXPECT_TRUE(schedule.Due(policy, 10, t0 + milliseconds(1)));
  EXPECT_TRUE(schedule.Due(policy, 1, t0 + milliseconds(1000)));
}

TEST(CheckpointScheduleTest, DisabledIsNeverDue) {
  const AutoCheckpointPolicy off{};
  EXPECT_FALSE(off.enabled());
  CheckpointSchedule schedule;
  const Clock::time_point t0 = Clock::now();
  schedule.Restart(0, t0);
  EXPECT_FALSE(schedule.Due(off, 1 << 30, t0 + seconds(1 << 20)));
  EXPECT_TRUE((AutoCheckpointPolicy{.every_steps = 1}).enabled());
  EXPECT_TRUE((AutoCheckpointPolicy{.every_seconds = seconds(1)}).enabled());
}

TEST(CheckpointScheduleTest, AStepCountThatWentBackIsNotDueUntilItCatchesUp) {
  // A restore to an older checkpoint restarts the schedule there; before that, the step
  // count is behind the last checkpoint and the difference is negative, never "due".
  const AutoCheckpointPolicy policy{.every_steps = 5};
  CheckpointSchedule schedule;
  const Clock::time_point t0 = Clock::now();
  schedule.Restart(50, t0);
  EXPECT_FALSE(schedule.Due(policy, 20, t0));
  EXPECT_TRUE(schedule.Due(policy, 55, t0));
}

TEST(CheckpointScheduleTest, ANewScheduleCountsFromItsCreation) {
  const AutoCheckpointPolicy policy{.every_steps = 3, .every_seconds = seconds(60)};
  CheckpointSchedule schedule;  // a new model: step 0, now
  EXPECT_EQ(schedule.last_step(), 0);
  EXPECT_FALSE(schedule.Due(policy, 2, Clock::now()));
  EXPECT_TRUE(schedule.Due(policy, 3, Clock::now()));
  EXPECT_TRUE(schedule.Due(policy, 1, Clock::now() + seconds(61)));
}

}  // namespace
}  // namespace backflow::server
