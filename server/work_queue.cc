#include "server/work_queue.h"

#include <oneapi/tbb/info.h>
#include <pthread.h>


namespace backflow::server {

// No slot reserved for an external thread: nobody joins the arena, jobs only arrive by
// enqueue, so every slot goes to a worker (with the default of one reserved slot, a 2-core
// server would run its compute on one thread).
namespace {
int ThreadsOrCores(int threads) { return threads > 0 ? threads : tbb::info::default_concurrency(); }
}  // namespace

ComputePool::ComputePool(int threads)
    : workers_(tbb::global_control::max_allowed_parallelism, ThreadsOrCores(threads) + 1),
      arena_(ThreadsOrCores(threads), /*reserved_for_masters=*/0) {
  arena_.initialize();
}

ComputePool::~ComputePool() { WaitIdle(); }

namespace {
void NameComputeThread() {
  thread_local bool named = false;
  if (named) return;
  pthread_setname_np(pthread_self(), "bf-compute");
  named = true;
}
}  // namespace

void ComputePool::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++running_;
    jobs_.push_back(std::move(job));
  }
  // The job itself travels through jobs_, under mu_, not inside TBB's task: libtbb is not
  // instrumented, so ThreadSanitizer could not see the hand-over of a task's captures, but it
  // sees the mutex. One task per job, so each task takes one (FIFO).
  arena_.enqueue([this] { RunOne(); });
}

void ComputePool::RunOne() {
  std::function<void()> job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job = std::move(jobs_.front());
    jobs_.pop_front();
  }
  NameComputeThread();
  tbb::this_task_arena::isolate([&job] { job(); });
  std::lock_guard<std::mutex> lock(mu_);
  if (--running_ == 0) idle_.notify_all();
}

void ComputePool::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
}

void SerialQueue::Post(std::function<void()> job) {
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
    start = !running_;
    running_ = true;
  }
  if (start) pool_->Submit([self = shared_from_this()] { self->RunOne(); });
}

bool SerialQueue::RunHereIfIdle(const std::function<void()>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return false;  // not running: nothing is queued either
    running_ = true;
  }
  job();
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    more = !jobs_.empty();
    running_ = more;
  }
  if (more) pool_->Submit([self = shared_from_this()] { self->RunOne(); });
  return true;
}

int64_t SerialQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(jobs_.size());
}

void SerialQueue::RunOne() {
  std::function<void()> job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job = std::move(jobs_.front());
  }
  job();
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.pop_front();
    more = !jobs_.empty();
    running_ = more;
  }
  // One job per arena task: the next one queues behind other models' work.
  if (more) pool_->Submit([self = shared_from_this()] { self->RunOne(); });
}

}  // namespace backflow::server
