#include "engine/exec/plan.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>

#include "engine/core/checked.h"
#include "engine/core/saturating.h"
#include "engine/core/tsan.h"
#include "engine/exec/run_state.h"
#include "engine/exec/team.h"
#include "engine/runtime/core_budget.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {

namespace {

// The one address the TSAN annotations synchronise on (see engine/core/tsan.h). It must be
// reachable without reading the node body's captures, which are themselves what the annotation
// orders. Coarse: it also orders bodies of different runs that happened one after the other, so
// TSAN only reports cross-run races whose accesses truly overlapped.
char tsan_flow_sync;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Times one step of a profiled run (Note [Run profiles]); without a profile it reads no clock.
class StepClock {
 public:
  using Clock = RunProfile::Clock;
  explicit StepClock(const RunProfile* profile) : profile_(profile) {
    if (profile_ != nullptr) began_ = Clock::now();
  }
  // The step holds its cores and starts its kernel.
  void Leased() {
    if (profile_ == nullptr) return;
    leased_ = Clock::now();
    primitives_ = dnnl_rt::PrimitivesExecutedHere();
  }
  void Finish(const PlanStep& step, const Tensor& out, int cores, NodeProfile* slot) const {
    if (profile_ == nullptr) return;
    const Clock::time_point ended = Clock::now();
    *slot = NodeProfile{
        .name = step.name,
        .op = step.op,
        .node = step.node,
        .start_ns = profile_->Since(began_),
        .duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(ended - began_).count(),
        .wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(leased_ - began_).count(),
        .output_bytes = static_cast<int64_t>(out.capacity()),
        .onednn_primitives = static_cast<int>(dnnl_rt::PrimitivesExecutedHere() - primitives_),
        .cores = cores};
  }

 private:
  const RunProfile* profile_;
  Clock::time_point began_;
  Clock::time_point leased_;
  uint64_t primitives_ = 0;
};

// Checks a fed tensor against its declared shape; the open dimension takes the batch size,
// which must be the same for every feed of the run.
Status CheckFeedShape(const Value& value, const Tensor& tensor, std::optional<int64_t>& batch) {
  const Shape& declared = value.shape;
  const Shape& got = tensor.shape();
  const std::string where = std::string(ValueKindName(value.kind)) + " " + Quote(value.name);
  bool ok = declared.rank() == got.rank();
  for (int i = 0; ok && i < declared.rank(); ++i) {
    if (declared.dim(i) != kBatchDim) {
      ok = declared.dim(i) == got.dim(i);
    } else if (batch && *batch != got.dim(i)) {
      return InvalidArgumentError(where + ": batch size " + std::to_string(got.dim(i)) +
                                  " differs from the run's batch size " + std::to_string(*batch));
    } else {
      batch = got.dim(i);
      ok = got.dim(i) > 0;
    }
  }
  if (!ok) {
    return InvalidArgumentError(where + ": fed shape " + got.ToString() + ", expected " +
                                declared.ToString());
  }
  return Status::Ok();
}

// The most elements of one tensor a plan allocates: its bytes, at 8 per element and rounded up to
// the allocator's alignment, must fit in int64.
constexpr int64_t kMaxTensorElements = std::numeric_limits<int64_t>::max() / 16;

// Concrete shapes grow with the batch size, and a graph may multiply it with itself ([N, 1] x
// [1, N] is [N, N]), so a shape that was within the limits per sample can be past what int64
// counts once the batch is known. Checked before the output is sized, or any stride computed.
Status CheckOutputSize(const Node& node, const Shape& out) {
  const std::optional<int64_t> extent = CheckedExtent(out.dims());
  if (extent && *extent <= kMaxTensorElements) return Status::Ok();
  return ResourceExhaustedError("node " + Quote(node.name) + ": output " + out.ToString() +
                                " has more than " + std::to_string(kMaxTensorElements) +
                                " elements at this batch size");
}

// layout_free[v]: every included node reading v accepts a layout at that input, and v is not
// fetched. See Note [Layouts between oneDNN gates].
std::vector<bool> LayoutFreeValues(const Graph& graph, const std::vector<bool>& included,
                                   std::span<const ValueId> fetches) {
  std::vector<bool> free(static_cast<size_t>(graph.num_values()), true);
  for (ValueId v : fetches) free[static_cast<size_t>(v)] = false;
  for (const Node& node : graph.nodes()) {
    if (!included[static_cast<size_t>(node.output)]) continue;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (!node.gate->accepts_layout(static_cast<int>(k))) {
        free[static_cast<size_t>(node.inputs[k])] = false;
      }
    }
  }
  return free;
}

}  // namespace

Plan::~Plan() = default;

StatusOr<std::shared_ptr<const Plan>> Plan::Compile(const Graph& graph, DType dtype,
                                                    std::span<const Tensor* const> feeds,
                                                    std::span<const ValueId> fetches) {
  std::shared_ptr<Plan> plan(new Plan());
  plan->dtype_ = dtype;
  plan->num_values_ = graph.num_values();
  plan->fetches_.assign(fetches.begin(), fetches.end());
  BF_RETURN_IF_ERROR(plan->CompileSteps(graph, feeds, ValuesNeededFor(graph, fetches)));
  plan->LinkSteps(graph);
  plan->PlanFetchMoves();
  int64_t touched = 0;  // every step's output, and what was fed
  for (const PlanStep& step : plan->steps_) {
    touched = SaturatingAdd(touched, step.output_shape.num_elements());
    const int64_t plain =
        SaturatingMul(step.output_shape.num_elements(), static_cast<int64_t>(SizeOf(dtype)));
    plan->working_bytes_ = SaturatingAdd(
        plan->working_bytes_, std::max(plain, static_cast<int64_t>(step.output_bytes)));
  }
  for (const Tensor* fed : feeds) touched = SaturatingAdd(touched, fed ? fed->num_elements() : 0);
  plan->runs_inline_ = touched <= kInlineElements;
  return std::shared_ptr<const Plan>(std::move(plan));
}

Status Plan::CompileSteps(const Graph& graph, std::span<const Tensor* const> feeds,
                          const std::vector<bool>& included) {
  std::vector<Shape> shapes(static_cast<size_t>(graph.num_values()));
  std::optional<int64_t> batch;
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (!included[static_cast<size_t>(v)] || value.kind == ValueKind::kNode) continue;
    if (value.kind == ValueKind::kConstant) {
      shapes[static_cast<size_t>(v)] = value.shape;
      constants_.emplace(v, value.constant->CastTo(dtype_));
      continue;
    }
    const Tensor* fed = feeds[static_cast<size_t>(v)];
    if (fed == nullptr) {
      return InvalidArgumentError(std::string(ValueKindName(value.kind)) + " " +
                                  Quote(value.name) + " is needed but was not fed");
    }
    BF_RETURN_IF_ERROR(CheckFeedShape(value, *fed, batch));
    shapes[static_cast<size_t>(v)] = fed->shape();
  }
  const std::vector<bool> layout_free = LayoutFreeValues(graph, included, fetches_);
  // The nodes whose saved state a step of this plan reads (their backward is in it).
  std::vector<bool> saved_read(static_cast<size_t>(graph.num_nodes()), false);
  for (NodeId id = 0; id < graph.num_nodes(); ++id) {
    const NodeId forward = graph.node(id).forward_node;
    if (forward != kNoId && included[static_cast<size_t>(graph.node(id).output)]) {
      saved_read[static_cast<size_t>(forward)] = true;
    }
  }
  std::vector<LayoutPtr> layouts(static_cast<size_t>(graph.num_values()));
  for (NodeId id = 0; id < graph.num_nodes(); ++id) {
    if (!included[static_cast<size_t>(graph.node(id).output)]) continue;
    BF_RETURN_IF_ERROR(
        CompileStep(graph, id, shapes, layouts, layout_free, saved_read[static_cast<size_t>(id)]));
  }
  return Status::Ok();
}

Status Plan::CompileStep(const Graph& graph, NodeId id, std::vector<Shape>& shapes,
                         std::vector<LayoutPtr>& layouts, const std::vector<bool>& layout_free,
                         bool saved_read) {
  const Node& node = graph.node(id);
  std::vector<Shape> in;
  std::vector<LayoutPtr> in_layouts;
  for (ValueId v : node.inputs) {
    in.push_back(shapes[static_cast<size_t>(v)]);
    in_layouts.push_back(layouts[static_cast<size_t>(v)]);
  }
  BF_ASSIGN_OR_RETURN(Shape out, node.gate->CheckAndInferShape(node.name, node.op, in, node.attrs));
  BF_RETURN_IF_ERROR(CheckOutputSize(node, out));
  const bool free = layout_free[static_cast<size_t>(node.output)];
  // Primitives created in Compile are partitioned for this team (Note [Team size per
  // primitive] in engine/runtime/dnnl_runtime.h).
  const dnnl_rt::TeamScope team(TeamForNode(*node.gate, in, out, node.attrs));
  BF_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel,
                      node.gate->Compile(CompileContext{node.name, dtype_, in, out, node.attrs,
                                                        in_layouts, free, saved_read}));
  LayoutPtr layout = kernel->output_layout();
  if (layout && !free) {
    return InternalError("node " + Quote(node.name) + ": kernel chose a layout it was not allowed");
  }
  size_t bytes = 0;
  if (layout) {
    bytes = layout->md.get_size();
    ++num_layout_values_;
  }
  shapes[static_cast<size_t>(node.output)] = out;
  layouts[static_cast<size_t>(node.output)] = std::move(layout);
  steps_.push_back(PlanStep{.node = id,
                            .name = node.name,
                            .op = node.op,
                            .inputs = node.inputs,
                            .output = node.output,
                            .output_shape = std::move(out),
                            .output_bytes = bytes,
                            .kernel = std::move(kernel)});
  return Status::Ok();
}

void Plan::LinkSteps(const Graph& graph) {
  std::vector<int> step_of_node(static_cast<size_t>(graph.num_nodes()), -1);
  for (size_t i = 0; i < steps_.size(); ++i) step_of_node[steps_[i].node] = static_cast<int>(i);
  for (size_t i = 0; i < steps_.size(); ++i) {
    PlanStep& step = steps_[i];
    std::vector<int> preds;
    for (ValueId v : step.inputs) {
      const NodeId producer = graph.value(v).producer;
      if (producer != kNoId) preds.push_back(step_of_node[static_cast<size_t>(producer)]);
    }
    const NodeId fwd = graph.node(step.node).forward_node;
    if (fwd != kNoId) {
      step.forward_step = step_of_node[static_cast<size_t>(fwd)];
      preds.push_back(step.forward_step);
    }
    std::sort(preds.begin(), preds.end());
    preds.erase(std::unique(preds.begin(), preds.end()), preds.end());
    step.num_predecessors = static_cast<int>(preds.size());
    for (int p : preds) steps_[static_cast<size_t>(p)].successors.push_back(static_cast<int>(i));
  }
}

void Plan::PlanFetchMoves() {
  std::unordered_map<ValueId, int> step_of_value;
  for (size_t i = 0; i < steps_.size(); ++i) step_of_value[steps_[i].output] = static_cast<int>(i);
  std::unordered_map<ValueId, int> times_fetched;
  for (ValueId v : fetches_) ++times_fetched[v];
  for (ValueId v : fetches_) {
    auto it = step_of_value.find(v);
    fetch_moves_.push_back(it != step_of_value.end() && times_fetched[v] == 1 ? it->second : -1);
  }
  step_returned_.assign(steps_.size(), false);
  for (int step : fetch_moves_) {
    if (step >= 0) step_returned_[static_cast<size_t>(step)] = true;
  }
  fetches_of_step_.resize(steps_.size());
  for (size_t k = 0; k < fetches_.size(); ++k) {
    auto it = step_of_value.find(fetches_[k]);
    if (it != step_of_value.end()) fetches_of_step_[static_cast<size_t>(it->second)].push_back(k);
  }
}

std::unique_ptr<FlowInstance> Plan::BuildFlowInstance() const {
  auto instance = std::make_unique<FlowInstance>();
  FlowInstance* self = instance.get();
  self->buffers.resize(steps_.size());
  if (runs_inline_) return instance;  // only its buffers are used (Note [Tiny plans run inline])
  for (size_t i = 0; i < steps_.size(); ++i) {
    self->nodes.push_back(std::make_unique<FlowInstance::ContinueNode>(
        self->graph, [this, self, i](const tbb::flow::continue_msg&) {
          BF_TSAN_ACQUIRE(&tsan_flow_sync);
          RunStep(i, *self->state);
          BF_TSAN_RELEASE(&tsan_flow_sync);
        }));
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].num_predecessors == 0) tbb::flow::make_edge(self->start, *self->nodes[i]);
    for (int s : steps_[i].successors) {
      tbb::flow::make_edge(*self->nodes[i], *self->nodes[static_cast<size_t>(s)]);
    }
  }
  return instance;
}

StatusOr<std::vector<Tensor>> Plan::Execute(std::span<const Tensor* const> feeds,
                                            const RunOptions& options) const {
  RunState state(num_values_, steps_.size(), options);
  for (size_t v = 0; v < feeds.size(); ++v) state.values[v] = feeds[v];
  for (const auto& [v, tensor] : constants_) state.values[static_cast<size_t>(v)] = &tensor;

  if (!steps_.empty()) {
    state.flow = pool_.Take(state);
    if (runs_inline_) {
      for (size_t i = 0; i < steps_.size(); ++i) RunStep(i, state, /*inline_run=*/true);
    } else {
      BF_TSAN_RELEASE(&tsan_flow_sync);
      state.flow->start.try_put(tbb::flow::continue_msg());
      state.flow->graph.wait_for_all();
      BF_TSAN_ACQUIRE(&tsan_flow_sync);
    }
  }
  if (options.profile != nullptr) CollectProfile(state);
  // The flow instance goes back to the pool with `state`, after the fetches are out of it.
  return CollectFetches(state);
}

StatusOr<std::vector<Tensor>> Plan::CollectFetches(RunState& state) const {
  if (state.stop.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(state.mu);
    return state.error;
  }
  std::vector<Tensor> fetched;
  fetched.reserve(fetches_.size());
  for (size_t k = 0; k < fetches_.size(); ++k) {
    if (fetch_moves_[k] >= 0) {
      fetched.push_back(std::move(state.outputs[static_cast<size_t>(fetch_moves_[k])]));
    } else {
      fetched.push_back(*state.values[static_cast<size_t>(fetches_[k])]);
    }
  }
  return fetched;
}

void Plan::CollectProfile(RunState& state) const {
  for (NodeProfile& step : state.profile) {
    if (step.node >= 0) state.options.profile->nodes.push_back(std::move(step));
  }
}

Tensor& Plan::OutputBuffer(size_t i, RunState& state) const {
  const PlanStep& step = steps_[i];
  if (step_returned_[i]) {
    return state.outputs[i] = Tensor(dtype_, step.output_shape, step.output_bytes);
  }
  Tensor& buffer = state.flow->buffers[i];
  if (buffer.raw() == nullptr) {
    buffer = Tensor(dtype_, step.output_shape, step.output_bytes);  // zero-filled
  } else if (!step.kernel->overwrites_output()) {
    std::memset(buffer.raw(), 0, buffer.capacity());
  }
  return buffer;
}

void Plan::RunStep(size_t i, RunState& state, bool inline_run) const {
  if (state.stop.load(std::memory_order_acquire)) return;
  const PlanStep& step = steps_[i];
  const RunOptions& options = state.options;
  if (options.cancelled && options.cancelled->load(std::memory_order_relaxed)) {
    state.Fail(CancelledError("run cancelled before node " + Quote(step.name)));
    return;
  }
  if (options.deadline && std::chrono::steady_clock::now() > *options.deadline) {
    state.Fail(DeadlineExceededError("deadline passed before node " + Quote(step.name)));
    return;
  }
  StepClock clock(options.profile);
  try {
    Tensor& out = OutputBuffer(i, state);
    std::vector<const Tensor*> inputs;
    inputs.reserve(step.inputs.size());
    for (ValueId v : step.inputs) inputs.push_back(state.values[static_cast<size_t>(v)]);
    // A tiny plan run inline takes no lease (Note [Tiny plans run inline]).
    const int wanted = step.kernel->cores();
    std::optional<CoreBudget::Lease> lease;
    if (!inline_run) {
      lease.emplace(wanted == Kernel::kAllCores ? CoreBudget::Global().AcquireAll()
                                                : CoreBudget::Global().Acquire(wanted));
    }
    clock.Leased();
    KernelContext ctx{inputs, &out, &state.saved[i],
                      step.forward_step >= 0 ? &state.saved[static_cast<size_t>(step.forward_step)]
                                             : nullptr,
                      lease ? lease->cores() : 1, options.info};
    Status status = step.kernel->Run(ctx);
    if (!status.ok()) {
      state.Fail(status.WithPrefix("node " + Quote(step.name)));
      return;
    }
    state.values[static_cast<size_t>(step.output)] = &out;
    if (options.profile != nullptr) clock.Finish(step, out, ctx.threads, &state.profile[i]);
    if (options.on_fetch_ready) {
      for (size_t k : fetches_of_step_[i]) options.on_fetch_ready(k, out);
    }
  } catch (const std::bad_alloc&) {
    state.Fail(ResourceExhaustedError("node " + Quote(step.name) + ": out of memory"));
  } catch (const std::exception& e) {
    state.Fail(InternalError("node " + Quote(step.name) + ": " + e.what()));
  } catch (...) {
    state.Fail(InternalError("node " + Quote(step.name) + ": unknown exception"));
  }
}

}  // namespace backflow
