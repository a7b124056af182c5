// Program: a graph ready to run, with its compiled plans.
//
// Run() compiles (or takes from the cache) a Plan for the feeds' concrete shapes and dtype and
// the requested fetches, then runs it on a oneTBB flow graph: each node becomes a flow-graph node
// that fires when its inputs are ready, so independent branches run concurrently.
//
// Note [Plans and runs]
// A Plan is immutable once compiled: the pruned schedule, concrete shapes, and one Kernel per
// node (oneDNN primitives are built there, never per step). Everything a run mutates (tensors,
// saved state, the first error, the cancellation flag) lives in one per-run RunState, so any
// number of threads may run the same Plan at once. Plans are cached per (dtype, feed shapes,
// fetches) in an LRU PlanCache. Inference runs of many batch sizes share plans of a few padded
// sizes (Note [Batch-size buckets] in engine/exec/batch_buckets.h).
//
// Thread safety: all const methods may be called concurrently.
#ifndef BACKFLOW_ENGINE_EXEC_PROGRAM_H_
#define BACKFLOW_ENGINE_EXEC_PROGRAM_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/memory_budget.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/run_profile.h"
#include "engine/ir/graph.h"
#include "engine/ir/rows.h"
#include "engine/ir/run_info.h"

namespace backflow {

class BatchBuckets;
class Plan;
class PlanCache;

// Tensors for a run, by value name: every placeholder and parameter the fetched nodes read.
// The tensors are borrowed for the duration of the run.
using FeedMap = std::unordered_map<std::string, const Tensor*>;

struct RunOptions {
  // Checked between nodes: once set, the run stops and returns CANCELLED.
  const std::atomic<bool>* cancelled = nullptr;
  // Checked between nodes: past it, the run stops and returns DEADLINE_EXCEEDED.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Training or inference mode, and the seed and step random gates draw from (Note [Training
  // and inference mode] in engine/ir/gate.h). The default is inference.
  RunInfo info;
  // When set, the run reserves its plan's working set here before it allocates anything, and
  // fails with ResourceExhausted if it does not fit (Note [Memory budget]).
  MemoryBudget* memory = nullptr;
  // When set, the run records where its time goes here, node by node (Note [Run profiles] in
  // engine/exec/run_profile.h).
  RunProfile* profile = nullptr;
  // When set, called for each fetch that a step of the plan computes, as soon as that step has
  // finished: the fetch's index in `fetches` and its final value (plain layout, valid until the
  // run returns), on the thread that ran the step, so it must be thread-safe and brief. A
  // data-parallel step starts summing gradients across processes with it while backward still
  // runs (Note [Data-parallel steps] in engine/api/gradient_reducer.h). Fetches that no step
  // computes (a feed, a constant) are not reported, nor anything after a step failed; an
  // inference run on padded rows (Note [Batch-size buckets]) reports the padded values.
  std::function<void(size_t fetch, const Tensor& value)> on_fetch_ready;
};

struct ProgramOptions {
  size_t plan_cache_capacity = 16;
};

class Program {
 public:
  explicit Program(std::shared_ptr<const Graph> graph, ProgramOptions options = {});
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  const Graph& graph() const { return *graph_; }

  // Computes `fetches` (value ids of the graph). Feeds must all have one dtype, which the run
  // computes in; placeholders must match their declared shapes (the open batch dimension takes
  // the run's batch size, the same for all). Errors: InvalidArgument naming the tensor or node,
  // Cancelled, DeadlineExceeded, ResourceExhausted (RunOptions::memory), or Internal for a
  // kernel that failed unexpectedly. An inference run may compute on a padded batch (Note
  // [Batch-size buckets]); what it returns has the feeds' rows.
  StatusOr<std::vector<Tensor>> Run(const FeedMap& feeds, std::span<const ValueId> fetches,
                                    const RunOptions& options = {}) const;
  // The same, fetching by name.
  StatusOr<std::vector<Tensor>> Run(const FeedMap& feeds, std::span<const std::string> fetches,
                                    const RunOptions& options = {}) const;

  // What the plan for these feeds and fetches looks like (compiling it if needed): for
  // diagnostics and tests.
  struct PlanInfo {
    size_t steps = 0;
    size_t layout_values = 0;  // values kept in a oneDNN layout between steps
    bool runs_inline = false;  // Note [Tiny plans run inline] in engine/exec/plan.h
  };
  StatusOr<PlanInfo> Explain(const FeedMap& feeds, std::span<const ValueId> fetches) const;

  struct CacheStats {
    size_t plans = 0;
    size_t hits = 0;
    size_t misses = 0;
  };
  CacheStats cache_stats() const;

  // How each value depends on the batch's rows in inference mode (Note [Independent rows]).
  Rows rows(ValueId v) const { return rows_[static_cast<size_t>(v)]; }

 private:
  // `compiled`, when given, tells whether the plan was compiled for this call.
  StatusOr<std::shared_ptr<const Plan>> PlanFor(const FeedMap& feeds,
                                                std::span<const ValueId> fetches,
                                                std::vector<const Tensor*>* by_id,
                                                bool* compiled = nullptr) const;
  StatusOr<std::vector<Tensor>> RunExact(const FeedMap& feeds, std::span<const ValueId> fetches,
                                         const RunOptions& options) const;
  // The batch size to pad this run to, if it is an inference run that may be padded and its
  // size is not one to compile exactly (Note [Batch-size buckets]); -1 otherwise.
  int64_t PaddedRows(const FeedMap& feeds, std::span<const ValueId> fetches,
                     const RunOptions& options) const;
  StatusOr<std::vector<Tensor>> RunPadded(const FeedMap& feeds, std::span<const ValueId> fetches,
                                          const RunOptions& options, int64_t padded_rows) const;

  std::shared_ptr<const Graph> graph_;
  std::vector<Rows> rows_;  // by value id
  std::unique_ptr<PlanCache> cache_;
  std::unique_ptr<BatchBuckets> buckets_;
};

// The most bytes the flow graphs that plans keep between runs may hold in buffers while idle,
// over all programs of the process (Note [Idle buffers] in engine/exec/flow_pool.h); the
// default is 1 GiB. Lowering it frees buffers at once. Thread-safe.
void SetIdleBufferCapacity(int64_t bytes);
// What they hold now.
int64_t IdleBufferBytes();

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_PROGRAM_H_
