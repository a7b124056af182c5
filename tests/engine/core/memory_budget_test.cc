// MemoryBudget (Note [Memory budget]): reservations add up, refuse past the capacity with a
// message saying what was needed and what is in use, give their bytes back when destroyed, and
// hold under concurrent use; a Program run reserves its plan's working set before it allocates.
#include "engine/core/memory_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "engine/exec/program.h"
#include "engine/gates/builtin.h"

namespace backflow {
namespace {

using ::testing::HasSubstr;

TEST(MemoryBudgetTest, ReservationsAddUpAndRefusePastTheCapacity) {
  MemoryBudget budget(1000);
  StatusOr<MemoryBudget::Hold> a = budget.Reserve(600, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->bytes(), 600);
  EXPECT_EQ(budget.used(), 600);
  StatusOr<MemoryBudget::Hold> b = budget.Reserve(401, "the thing");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b.status().message(),
            "the thing needs 401 bytes (401 bytes), but only 400 bytes of the memory ceiling of "
            "1000 bytes are free (600 bytes in use)");
  EXPECT_EQ(budget.used(), 600);  // a refusal reserves nothing
  ASSERT_TRUE(budget.Reserve(400, "c").ok());  // and is destroyed at once
  EXPECT_EQ(budget.used(), 600);
  MemoryBudget::Hold moved = std::move(*a);
  EXPECT_EQ(budget.used(), 600);
  moved.Release();
  EXPECT_EQ(budget.used(), 0);
  EXPECT_FALSE(budget.Reserve(int64_t{1} << 62, "huge").ok());

  MemoryBudget::Hold forced = budget.Force(1500);  // counted past the capacity
  EXPECT_EQ(budget.used(), 1500);
  EXPECT_THAT(budget.Reserve(1, "one").status().message(),
              HasSubstr("only 0 bytes of the memory ceiling of 1000 bytes are free"));
}

TEST(MemoryBudgetTest, NoCapacityMeansNoCeilingButCounts) {
  MemoryBudget budget(0);
  StatusOr<MemoryBudget::Hold> hold = budget.Reserve(int64_t{1} << 50, "a lot");
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(budget.used(), int64_t{1} << 50);
}

TEST(MemoryBudgetTest, ConcurrentReservationsNeverOvershoot) {
  MemoryBudget budget(100 * 64);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::vector<MemoryBudget::Hold> held;
      for (int i = 0; i < 50; ++i) {
        StatusOr<MemoryBudget::Hold> hold = budget.Reserve(64, "x");
        if (hold.ok()) {
          held.push_back(std::move(*hold));
          granted.fetch_add(1);
        }
        EXPECT_LE(budget.used(), 100 * 64);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_GE(granted.load(), 100);  // each thread holds what it got until it ends
  EXPECT_EQ(budget.used(), 0);
}

TEST(MemoryBudgetTest, ByteSizesReadLikePeopleWriteThem) {
  EXPECT_EQ(ByteSize(512), "512 bytes");
  EXPECT_EQ(ByteSize(1536), "1.50 KiB");
  EXPECT_EQ(ByteSize(int64_t{3} << 30), "3.00 GiB");
  EXPECT_EQ(ByteSize(int64_t{100} << 20), "100.0 MiB");
}

// y = tanh(a + b) for a [N, 1] and b [1, N]: the broadcast makes two [N, N] intermediates.
TEST(MemoryBudgetTest, ARunReservesItsPlansWorkingSetFirst) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId a = *graph->AddPlaceholder("a", Shape{512, 1});
  const ValueId b = *graph->AddPlaceholder("b", Shape{1, 512});
  const ValueId s = *graph->AddNode("s", "add", {a, b});
  const ValueId y = *graph->AddNode("y", "tanh", {s});
  (void)y;
  Program program(graph);
  const Tensor ta(DType::kFloat32, Shape{512, 1});
  const Tensor tb(DType::kFloat32, Shape{1, 512});
  const FeedMap feeds = {{"a", &ta}, {"b", &tb}};
  const std::string fetch[] = {"y"};
  const int64_t working = 2 * 512 * 512 * 4;  // s and y
  MemoryBudget small(working - 1);
  RunOptions options;
  options.memory = &small;
  StatusOr<std::vector<Tensor>> refused = program.Run(feeds, fetch, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("the run's intermediates and gradients needs 2097152 bytes (2.00 MiB)"));
  MemoryBudget enough(working);
  options.memory = &enough;
  StatusOr<std::vector<Tensor>> ran = program.Run(feeds, fetch, options);
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(enough.used(), 0);  // given back when the run ended
}

}  // namespace
}  // namespace backflow
