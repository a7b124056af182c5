#include "server/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace backflow::server {
namespace {

// Jobs posted to one queue run one at a time, in the order posted.
TEST(SerialQueueTest, RunsJobsInOrderOneAtATime) {
  ComputePool pool(2);
  auto queue = std::make_shared<SerialQueue>(&pool);
  std::vector<int> order;  // only touched by the queue's jobs, which never overlap
  std::atomic<int> running{0};
  std::atomic<int> overlaps{0};
  for (int i = 0; i < 200; ++i) {
    queue->Post([&, i] {
      if (running.fetch_add(1) != 0) overlaps.fetch_add(1);
      order.push_back(i);
      running.fetch_sub(1);
    });
  }
  pool.WaitIdle();
  EXPECT_EQ(overlaps.load(), 0);
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  EXPECT_EQ(queue->pending(), 0);
}

// Two queues drain at the same time: each job waits (bounded) until the other queue's job has
// started, which only works if they run in parallel.
TEST(SerialQueueTest, DifferentQueuesRunInParallel) {
  ComputePool pool(2);
  auto a = std::make_shared<SerialQueue>(&pool);
  auto b = std::make_shared<SerialQueue>(&pool);
  std::atomic<int> started{0};
  std::atomic<bool> met_a{false}, met_b{false};
  auto rendezvous = [&started](std::atomic<bool>* met) {
    started.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    met->store(started.load() == 2);
  };
  a->Post([&] { rendezvous(&met_a); });
  b->Post([&] { rendezvous(&met_b); });
  pool.WaitIdle();
  EXPECT_TRUE(met_a.load());
  EXPECT_TRUE(met_b.load());
}

TEST(ComputePoolTest, WaitIdleCoversJobsThatSubmitJobs) {
  ComputePool pool(2);
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i) {
    pool.Submit([&] {
      pool.Submit([&] { done.fetch_add(1); });
      done.fetch_add(1);
    });
  }
  pool.WaitIdle();
  EXPECT_EQ(done.load(), 20);
  EXPECT_EQ(pool.threads(), 2);
}

}  // namespace
}  // namespace backflow::server
