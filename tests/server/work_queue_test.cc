#include "server/work_queue.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <string>
#include <set>
#include <future>

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
// The arena's threads are named "bf-compute" (what bench/run's thread sampler and top -H go by).
TEST(ComputePoolTest, JobsRunOnThreadsNamedBfCompute) {
  ComputePool pool(2);
  std::mutex mu;
  std::set<std::string> names;
  for (int i = 0; i < 8; ++i) {
    pool.Submit([&] {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      std::lock_guard<std::mutex> lock(mu);
      names.insert(name);
    });
  }
  pool.WaitIdle();
  EXPECT_EQ(names, std::set<std::string>{"bf-compute"});
}

// RunHereIfIdle runs on the calling thread only when nothing is queued or running, and a job
// posted meanwhile still runs after it.
TEST(SerialQueueTest, RunHereIfIdleKeepsArrivalOrder) {
  ComputePool pool(2);
  auto queue = std::make_shared<SerialQueue>(&pool);
  std::vector<int> order;  // touched only by the queue's jobs, one at a time
  const std::thread::id caller = std::this_thread::get_id();
  bool ran_here = false;
  EXPECT_TRUE(queue->RunHereIfIdle([&] {
    ran_here = std::this_thread::get_id() == caller;
    order.push_back(1);
    queue->Post([&] { order.push_back(2); });  // arrives while the first runs
  }));
  EXPECT_TRUE(ran_here);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  queue->Post([&, released] {
    released.wait();
    order.push_back(3);
  });
  EXPECT_FALSE(queue->RunHereIfIdle([&] { order.push_back(99); })) << "the queue was busy";
  release.set_value();
  pool.WaitIdle();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

}  // namespace backflow::server
