// RunState: everything one run of a Plan mutates, in one object. See Note [Plans and runs].
#ifndef BACKFLOW_ENGINE_EXEC_RUN_STATE_H_
#define BACKFLOW_ENGINE_EXEC_RUN_STATE_H_

#include <any>
#include <atomic>
#include <mutex>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/flow_pool.h"
#include "engine/exec/program.h"

namespace backflow {

struct RunState {
  RunState(int num_values, size_t num_steps, const RunOptions& run_options)
      : values(static_cast<size_t>(num_values), nullptr),
        outputs(num_steps),
        saved(num_steps),
        options(run_options),
        profile(run_options.profile != nullptr ? num_steps : 0) {}

  // Records the first error and tells the remaining steps to skip their work.
  void Fail(Status status) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.ok()) error = std::move(status);
    stop.store(true, std::memory_order_release);
  }

  // Written by the step that produces a value before its successors start: the flow graph's
  // edges order those accesses.
  std::vector<const Tensor*> values;  // by value id
  std::vector<Tensor> outputs;  // by step: the outputs handed to the caller
  std::vector<std::any> saved;  // by step
  const RunOptions& options;
  // By step, when the run is profiled: each step writes only its own (node -1: did not run).
  std::vector<NodeProfile> profile;
  std::atomic<bool> stop{false};

  std::mutex mu;
  Status error;  // GUARDED_BY(mu)

  // The flow graph this run executes on, and its buffers for the outputs not handed to the
  // caller (Note [Flow-graph pool] in flow_pool.h). Declared last: given back to the pool only
  // after everything above, which may point into its buffers, is gone.
  FlowPool::Checkout flow;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_RUN_STATE_H_
