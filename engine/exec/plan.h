// Plan: one graph compiled for one dtype, one set of feed shapes and one set of fetches.
// See Note [Plans and runs] in engine/exec/program.h.
#ifndef BACKFLOW_ENGINE_EXEC_PLAN_H_
#define BACKFLOW_ENGINE_EXEC_PLAN_H_

#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/flow_pool.h"
#include "engine/exec/program.h"
#include "engine/ir/gate.h"
#include "engine/ir/graph.h"

namespace backflow {

struct RunState;

// One node of the plan: what it reads, what it writes, and the kernel that does it.
struct PlanStep {
  NodeId node = kNoId;
  std::string name;
  std::string op;
  std::vector<ValueId> inputs;
  ValueId output = kNoId;
  Shape output_shape;
  size_t output_bytes = 0;  // the buffer the output's layout needs (0: plain)
  std::unique_ptr<Kernel> kernel;
  int forward_step = -1;  // the step whose saved state this one reads
  std::vector<int> successors;  // steps that must wait for this one
  int num_predecessors = 0;
};

// Note [Layouts between oneDNN gates]
// oneDNN primitives prefer blocked layouts (nChw16c, ...). A value may stay in the layout its
// producer's primitive chose when every step that reads it accepts a layout there
// (Gate::accepts_layout) and it is not fetched; its consumers then build their primitives on
// that layout, so consecutive oneDNN gates (pool -> conv, conv backward -> pool backward) pass
// blocked tensors with no reorder between them. Everywhere else tensors are plain row-major, and
// a oneDNN gate reorders at its own boundary. Layouts are decided once, when a plan compiles.
class Plan {
 public:
  // Compiles the part of `graph` that `fetches` depend on. `feeds` holds the tensor for every
  // placeholder and parameter the caller supplies, indexed by value id (null where none).
  static StatusOr<std::shared_ptr<const Plan>> Compile(const Graph& graph, DType dtype,
                                                       std::span<const Tensor* const> feeds,
                                                       std::span<const ValueId> fetches);
  ~Plan();

  // Runs the plan against `feeds` (the same layout as at compile time, same shapes).
  StatusOr<std::vector<Tensor>> Execute(std::span<const Tensor* const> feeds,
                                        const RunOptions& options) const;

  DType dtype() const { return dtype_; }
  size_t num_steps() const { return steps_.size(); }
  // Values the plan keeps in a non-plain layout between steps.
  size_t num_layout_values() const { return num_layout_values_; }
  // The bytes of every step's output buffer together (Note [Memory budget] in
  // engine/core/memory_budget.h): what one run may hold at once, intermediates and gradients.
  int64_t working_bytes() const { return working_bytes_; }
  // True if Execute runs the steps one after another on the calling thread (Note [Tiny plans
  // run inline]).
  bool runs_inline() const { return runs_inline_; }

 private:
  Plan() = default;
  Status CompileSteps(const Graph& graph, std::span<const Tensor* const> feeds,
                      const std::vector<bool>& included);
  // `saved_read`: a step of this plan reads the node's saved state (CompileContext).
  Status CompileStep(const Graph& graph, NodeId id, std::vector<Shape>& shapes,
                     std::vector<LayoutPtr>& layouts, const std::vector<bool>& layout_free,
                     bool saved_read);
  void LinkSteps(const Graph& graph);
  void PlanFetchMoves();
  void RunStep(size_t i, RunState& state, bool inline_run = false) const;
  // Adds the profile of every step that ran to the run's RunProfile (Note [Run profiles]).
  void CollectProfile(RunState& state) const;
  Tensor& OutputBuffer(size_t i, RunState& state) const;
  StatusOr<std::vector<Tensor>> CollectFetches(RunState& state) const;
  std::unique_ptr<FlowInstance> BuildFlowInstance() const;

  DType dtype_ = DType::kFloat32;
  int64_t working_bytes_ = 0;
  int num_values_ = 0;
  std::vector<PlanStep> steps_;
  size_t num_layout_values_ = 0;
  // Note [Tiny plans run inline]
  // A plan whose steps touch at most kInlineElements elements in all (the seeds' scalar
  // circuits, say) is run by Execute on the calling thread, step by step in order (steps are
  // compiled in topological order), without the flow graph and without CoreBudget leases: its
  // whole run costs a few microseconds, less than waking one oneTBB worker, and it never waits
  // for a lease held by big kernels. So such a run never blocks on other work; the server relies
  // on that to answer tiny requests on the thread that received them (server/work_queue.h).
  static constexpr int64_t kInlineElements = 4096;
  bool runs_inline_ = false;
  std::vector<ValueId> fetches_;
  // For each fetch, the step whose output may be moved out of the run (-1: copy it, because it
  // is a feed, a constant, or fetched twice).
  std::vector<int> fetch_moves_;
  std::vector<bool> step_returned_;  // by step: its output is moved out to the caller
  // By step: the indices into fetches_ of its output (RunOptions::on_fetch_ready).
  std::vector<std::vector<size_t>> fetches_of_step_;
  std::unordered_map<ValueId, Tensor> constants_;  // converted to dtype_ at compile time

  // The only mutable part of a Plan: flow graphs kept for the next runs (Note [Flow-graph
  // pool] in engine/exec/flow_pool.h); thread-safe.
  mutable FlowPool pool_{[this] { return BuildFlowInstance(); }};
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_PLAN_H_
