// FlowPool: the flow-graph instances of one Plan, kept between runs.
//
// Note [Flow-graph pool]
// A tbb::flow::graph counts the messages each node has received, so one instance can serve
// only one run at a time. Building one costs an allocation per node, so instances are kept in
// a pool: a run checks one out (the pool builds one if none is free) and the checkout gives it
// back when the run ends. An instance also keeps the buffers of the outputs a run does not hand
// to its caller, so steady-state runs allocate (and page-fault) only for what they return; a
// kernel that does not overwrite its whole output (Kernel::overwrites_output) gets its reused
// buffer zero-filled. The price is memory: each pooled instance holds one run's intermediates.
//
// Note [Idle buffers]
// A process with many plans (models, batch sizes, fetch sets) would keep every plan's
// intermediates for good: one LeNet-5 model given Infer batches of 60 sizes near 10,000 rows
// held 12.9 GB. So the buffers of idle instances are counted process-wide and bounded
// (SetIdleBufferCapacity): when a run gives its instance back and the idle total passes the
// capacity, the pools used longest ago lose the buffers of all their idle instances (the flow
// graphs, which are small, stay) until the total fits, the pool just used last of all. A run
// that checks out an instance whose buffers went allocates them again, as a first run does.
// Buffers count as idle from the run's end to the next checkout; while a run holds them they
// are its working set (RunOptions::memory).
//
// Thread safety: Checkout may be called from any number of threads at once.
#ifndef BACKFLOW_ENGINE_EXEC_FLOW_POOL_H_
#define BACKFLOW_ENGINE_EXEC_FLOW_POOL_H_

#include <tbb/flow_graph.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/core/tensor.h"

namespace backflow {

struct RunState;

// One flow graph wired like its plan, and the buffers its runs reuse.
struct FlowInstance {
  using ContinueNode = tbb::flow::continue_node<tbb::flow::continue_msg>;
  tbb::flow::graph graph;
  tbb::flow::broadcast_node<tbb::flow::continue_msg> start{graph};
  std::vector<std::unique_ptr<ContinueNode>> nodes;  // by step
  std::vector<Tensor> buffers;  // by step
  RunState* state = nullptr;  // the run that has it checked out (the nodes' bodies read it)
  int64_t idle_bytes = 0;     // its buffers' bytes, while it is in the pool (Note [Idle buffers])
};

class FlowPool {
 public:
  // `build` makes a new instance when none is free.
  explicit FlowPool(std::function<std::unique_ptr<FlowInstance>()> build)
      : build_(std::move(build)) {}
  ~FlowPool();
  FlowPool(const FlowPool&) = delete;
  FlowPool& operator=(const FlowPool&) = delete;

  // An instance bound to one run; destroying the checkout unbinds it and gives it back.
  class Checkout {
   public:
    Checkout() = default;
    Checkout(Checkout&& other) noexcept = default;
    Checkout& operator=(Checkout&& other) noexcept;
    ~Checkout() { GiveBack(); }
    FlowInstance* operator->() const { return instance_.get(); }
    explicit operator bool() const { return instance_ != nullptr; }

   private:
    friend class FlowPool;
    void GiveBack();
    Checkout(FlowPool* pool, std::unique_ptr<FlowInstance> instance)
        : pool_(pool), instance_(std::move(instance)) {}
    FlowPool* pool_ = nullptr;
    std::unique_ptr<FlowInstance> instance_;
  };

  // A free instance, or a new one, bound to `state` until the checkout is destroyed.
  Checkout Take(RunState& state);

  // Bytes of buffers its idle instances hold.
  int64_t idle_bytes() const;

 private:
  friend class IdleBufferRegistry;
  void GiveBack(std::unique_ptr<FlowInstance> instance);
  // Moves every idle instance's buffers to `freed`; returns their bytes.
  int64_t DropIdleBuffers(std::vector<Tensor>& freed);

  const std::function<std::unique_ptr<FlowInstance>()> build_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FlowInstance>> free_;  // GUARDED_BY(mu_)
  int64_t idle_bytes_ = 0;                           // GUARDED_BY(mu_)
};
// SetIdleBufferCapacity and IdleBufferBytes, the public side of Note [Idle buffers], are
// declared in engine/exec/program.h.

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_FLOW_POOL_H_
