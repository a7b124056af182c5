// Where the server's compute runs: a oneTBB arena, never a gRPC thread.
//
// Note [Serving threads]
// gRPC's callback API runs handlers on gRPC's own threads, which must never block. A handler
// decodes nothing heavy: it hands the request to ComputePool::Submit (inference, gradients,
// evaluation: any number at once) or to its model's SerialQueue (training steps, parameter
// writes, checkpoints: one at a time per model, in arrival order), and returns. The job runs
// on the arena's threads, where the engine's flow graph runs the plan, and finishes the RPC
// itself. Each job runs under tbb::this_task_arena::isolate, so while it waits for its flow
// graph a thread never picks up another request and stacks it on top of this one.
// Different models' queues drain in parallel; a queue drains one job per arena task, so one
// busy model cannot starve the others.
//
// Note [Tiny requests run where they arrive]
// Handing a request to the arena costs a wake-up of a oneTBB worker, and its reply a wake-up of
// a gRPC thread: tens of microseconds each on a virtual machine, which is most of a round trip
// for a model as small as the seeds' circuits (a training step of the staged circuit takes
// 4 us in the engine). So a compute request whose estimated work (the model's forward FLOPs
// per sample times the batch rows) is at most kInlineFlops runs on the gRPC thread that
// received it, when the model's queue is idle (so steps still apply in arrival order). Such a
// request cannot block that thread: the engine runs a plan that small inline, with no flow
// graph and no core lease (Note [Tiny plans run inline] in engine/exec/plan.h), and the model's
// step lock is free because its queue is idle. Everything else, and anything touching the data
// directory, goes to the arena as above.
#ifndef BACKFLOW_SERVER_WORK_QUEUE_H_
#define BACKFLOW_SERVER_WORK_QUEUE_H_

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace backflow::server {

class ComputePool {
 public:
  explicit ComputePool(int threads);  // 0: one per core
  ~ComputePool();  // waits for every submitted job

  // Runs `job` on the arena, later, on another thread.
  void Submit(std::function<void()> job);
  // Blocks until every job submitted so far (and those they submit) has finished.
  void WaitIdle();
  int threads() const { return arena_.max_concurrency(); }

 private:
  void RunOne();

  // oneTBB starts P - 1 workers for P cores, counting on the thread that waits to join in;
  // here nobody joins (gRPC threads only enqueue), so allow one more: P workers.
  // RunOne names the thread that runs a job "bf-compute" (as top -H and /proc show it; OpenMP
  // threads a job starts inherit the name), so operators and bench/run can tell compute from
  // gRPC. Not with a task_scheduler_observer on the arena: oneTBB 2021.8 leaks the observer's
  // proxy (40 bytes, reported by LeakSanitizer) when a sleeping worker still references it as
  // the arena is destroyed.
  tbb::global_control workers_;
  tbb::task_arena arena_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_): submitted, not yet started
  int64_t running_ = 0;  // GUARDED_BY(mu_): submitted, not yet finished
};

// Jobs that must not overlap and must run in the order they were posted.
class SerialQueue : public std::enable_shared_from_this<SerialQueue> {
 public:
  explicit SerialQueue(ComputePool* pool) : pool_(pool) {}

  void Post(std::function<void()> job);
  // If nothing is queued or running, runs `job` on the calling thread, in order with later
  // Posts, and returns true; otherwise returns false and leaves `job` alone. For jobs too small
  // to be worth a hand-over (Note [Tiny requests run where they arrive]).
  bool RunHereIfIdle(const std::function<void()>& job);
  int64_t pending() const;  // posted and not finished

 private:
  void RunOne();

  ComputePool* const pool_;
  mutable std::mutex mu_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_); front is running when running_
  bool running_ = false;  // GUARDED_BY(mu_)
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_WORK_QUEUE_H_
