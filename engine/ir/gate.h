// Gate: one differentiable operation (add, exp, matmul, ...).
//
// A gate has three parts, kept side by side in one file pair per family:
//   - a shape rule (InferShape), run when a node is added to a graph, on shapes that may hold the
//     open batch dimension, and again with concrete shapes when a plan is compiled;
//   - a forward kernel (Compile), built once per plan for concrete shapes and dtype, then run by
//     many concurrent runs: a Kernel is immutable and keeps no per-run state;
//   - a backward rule (Backward) that appends the vector-Jacobian product to the graph as
//     ordinary nodes (Note [Backward is graph nodes] in engine/autodiff/autodiff.h);
//   - its cost (Flops, compute_bound), which feeds the cost model (engine/ir/cost.h) and the
//     size of the oneDNN team its kernel gets (Note [Team size per primitive]).
//
// This header is the op interface: the layers above (gates, autodiff, exec) program against it;
// the implementations live in engine/gates/ and are registered by RegisterBuiltinGates.
//
// The public entry points (CheckAndInferShape) check arity and attribute types once, against
// what the gate declares, so the virtual hooks can assume well-formed nodes (Caffe's pattern).
#ifndef BACKFLOW_ENGINE_IR_GATE_H_
#define BACKFLOW_ENGINE_IR_GATE_H_

#include <any>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/attributes.h"
#include "engine/ir/graph.h"
#include "engine/runtime/core_budget.h"
#include "engine/runtime/layout.h"

namespace backflow {

// How a tensor's elements sit in its buffer when not plain row-major: a oneDNN memory
// descriptor (engine/runtime/dnnl_runtime.h). Null LayoutPtr means plain.
// See Note [Layouts between oneDNN gates] in engine/exec/plan.h.
struct TensorLayout;
using LayoutPtr = std::shared_ptr<const TensorLayout>;

struct AttrSpec {
  std::string_view name;
  AttrType type;
  bool required = false;
};

struct Arity {
  static constexpr int kVariadic = -1;
  int min;
  int max;  // kVariadic: no upper bound
};

struct ShapeContext {
  std::string_view node;
  std::span<const Shape> inputs;
  const Attributes& attrs;

  // InvalidArgument "node 'NAME': MESSAGE": how every shape rule reports a problem.
  Status Error(std::string_view message) const;
};

// The shapes and attributes of one application of a gate, for its cost rule. Shapes are fully
// defined: the cost model counts the open batch dimension as 1 (per-sample cost), the executor
// passes a plan's concrete shapes.
struct FlopsContext {
  std::span<const Shape> inputs;
  const Shape& output;
  const Attributes& attrs;

  // Elements of `shape`, saturating at INT64_MAX.
  static int64_t Elements(const Shape& shape);
};

// What one kernel invocation reads and writes. Inputs and output are allocated by the executor
// with the plan's concrete shapes; `saved` is this node's per-run slot for state its backward
// gate needs (a workspace), and `forward_saved` the slot of the forward node a backward gate
// reads (null for forward gates).
struct KernelContext {
  std::span<const Tensor* const> inputs;
  Tensor* output;
  std::any* saved;
  const std::any* forward_saved;
  // Cores lent to this invocation (see Note [Threads never exceed cores] in
  // engine/runtime/core_budget.h): a kernel that starts threads (an OpenMP team) starts this many.
  int threads = 1;
};

class Kernel {
 public:
  static constexpr int kAllCores = backflow::kAllCores;

  virtual ~Kernel() = default;
  // Cores this kernel keeps busy while it runs: 1 for kernels that compute on the calling
  // thread, kAllCores for kernels that run a parallel primitive (oneDNN).
  virtual int cores() const { return 1; }
  // True if Run writes every element of its output, so the executor may hand it a buffer that
  // still holds a previous run's values; false (the safe default) gets a zero-filled output.
  virtual bool overwrites_output() const { return false; }
  // The layout the kernel writes its output in; null (plain) unless CompileContext allowed one.
  virtual LayoutPtr output_layout() const { return nullptr; }
  // Must be safe to call from several threads at once on different contexts.
  virtual Status Run(KernelContext& ctx) const = 0;
};

struct CompileContext {
  std::string_view node;
  DType dtype;
  std::span<const Shape> inputs;  // fully defined
  const Shape& output;  // fully defined
  const Attributes& attrs;
  // The layouts the producers write the inputs in (empty or null entries: plain). Non-null only
  // at positions where the gate's accepts_layout() is true.
  std::span<const LayoutPtr> input_layouts = {};
  // True if every consumer of the output accepts a layout: the kernel may then keep the one its
  // primitive prefers and report it through Kernel::output_layout().
  bool output_layout_free = false;

  LayoutPtr input_layout(size_t i) const {
    return i < input_layouts.size() ? input_layouts[i] : nullptr;
  }
};

// The interface a gate's Backward uses to append gradient nodes. Implemented by autodiff.
class BackwardContext {
 public:
  virtual ~BackwardContext() = default;
  virtual const Graph& graph() const = 0;
  virtual const Node& node() const = 0;
  ValueId input(int i) const { return node().inputs[static_cast<size_t>(i)]; }
  const Shape& input_shape(int i) const { return graph().value(input(i)).shape; }
  ValueId output() const { return node().output; }
  // dL/d(output), already summed over the output's consumers.
  virtual ValueId output_grad() const = 0;
  // True if input i leads back to something a gradient was asked for.
  virtual bool needs_grad(int i) const = 0;
  // Appends a gradient node; `reads_saved` links it to this node's saved per-run state.
  virtual StatusOr<ValueId> Emit(std::string_view op, std::vector<ValueId> inputs,
                                 Attributes attrs = {}, bool reads_saved = false) = 0;
  // Records dL/d(input i). Call once per input that needs a gradient.
  virtual void SetGrad(int i, ValueId grad) = 0;
};

class Gate {
 public:
  virtual ~Gate() = default;

  virtual Arity arity() const = 0;
  virtual std::vector<AttrSpec> attr_specs() const { return {}; }
  // Gates only autodiff creates (relu_grad, reduce_like, ...): not accepted in client graphs.
  virtual bool internal() const { return false; }
  // Gates with no gradient (accuracy): Backward fails if a gradient must flow through them.
  virtual bool differentiable() const { return true; }
  // True if the float32 kernel reads input i in whatever layout CompileContext says it has
  // (oneDNN gates); false means the input must be plain.
  virtual bool accepts_layout(int input) const { return false; }

  // Checks arity and attributes against arity() and attr_specs(), then runs InferShape.
  StatusOr<Shape> CheckAndInferShape(std::string_view node, std::string_view op,
                                     std::span<const Shape> inputs,
                                     const Attributes& attrs) const;

  // Floating-point operations of one application, a multiply-add counting 2, saturating at
  // INT64_MAX. The default, one per output element, fits elementwise math, reductions and data
  // movement; gates that contract dimensions (matrix products, convolutions, pooling windows,
  // losses) override it.
  virtual int64_t Flops(const FlopsContext& ctx) const;
  // True for gates whose time is set by their arithmetic (matrix products, convolutions) rather
  // than by the elements they touch: their oneDNN team is sized by Flops, the others' by
  // elements (Note [Team size per primitive] in engine/runtime/dnnl_runtime.h).
  virtual bool compute_bound() const { return false; }

  virtual StatusOr<Shape> InferShape(const ShapeContext& ctx) const = 0;
  virtual StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const = 0;
  virtual Status Backward(BackwardContext& ctx) const;
};

// Builds Kernel<float> or Kernel<double> for `dtype`: the one place kernels meet dtypes.
template <template <typename> class KernelT, typename... Args>
std::unique_ptr<Kernel> MakeTypedKernel(DType dtype, Args&&... args) {
  if (dtype == DType::kFloat64) {
    return std::make_unique<KernelT<double>>(std::forward<Args>(args)...);
  }
  return std::make_unique<KernelT<float>>(std::forward<Args>(args)...);
}

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_GATE_H_
