// BoundPrimitive: a oneDNN primitive tied to the tensors of one kernel.
//
// Primitives are created with format_tag::any and so pick their own memory layouts (blocked
// ones such as nChw16c for convolutions); our tensors hold whatever layout the gate declares
// for them (plain row-major today). For each tensor argument a BoundPrimitive compares the two
// and, only where they differ, builds a reorder at Compile that moves the data through a scratch
// buffer allocated per run: into the primitive's layout for inputs, back out for the output.
// This is the oneDNN training example's pattern (create once, reorder only where needed).
//
// Every primitive and reorder uses a user-managed scratchpad (PrimitiveAttributes), allocated
// per run like the scratch buffers, so a BoundPrimitive is immutable after Make and may run on
// several threads at once.
#ifndef BACKFLOW_ENGINE_GATES_DNNL_PRIMITIVE_H_
#define BACKFLOW_ENGINE_GATES_DNNL_PRIMITIVE_H_

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/gate.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {

// The attributes every backflow primitive is created with: a user-managed scratchpad.
dnnl::primitive_attr PrimitiveAttributes();

// The layouts the activation tensors at a oneDNN gate's boundary hold: `src` for its input
// activation (x, and dx in backward) and `dst` for its output (y, and dy): plain row-major, or a
// blocked layout kept between consecutive oneDNN gates (Note [Layouts between oneDNN gates] in
// engine/exec/plan.h). Weights and biases always stay plain: optimizers and checkpoints read them.
struct ActivationLayouts {
  dnnl::memory::desc src;
  dnnl::memory::desc dst;
  static ActivationLayouts Plain(const Shape& src, const Shape& dst) {
    return {dnnl_rt::PlainDesc(src), dnnl_rt::PlainDesc(dst)};
  }
};

// One tensor argument of a primitive: its DNNL_ARG_* and the layout the tensor holds.
struct TensorArg {
  int arg;
  dnnl::memory::desc md;
};

class BoundPrimitive {
 public:
  // The primitive of `pd` (created with PrimitiveAttributes()), reading `inputs` and writing
  // `output`, with the reorders their layouts need. Errors are InvalidArgument naming `what`.
  static StatusOr<BoundPrimitive> Make(const dnnl::primitive_desc& pd,
                                       std::vector<TensorArg> inputs, TensorArg output,
                                       std::string_view what);

  // Runs the primitive on `inputs` (in the order given to Make) into `output`, with `extra`
  // arguments (a workspace, say) that need no layout conversion, on an OpenMP team of `threads`.
  Status Run(std::span<const Tensor* const> inputs, Tensor& output, dnnl_rt::Args extra,
             int threads, std::string_view what) const;

  // How many tensor arguments go through a reorder (for tests and diagnostics).
  int num_reorders() const;

 private:
  // A primitive and the scratchpad it asks for per execution (possibly empty).
  struct Step {
    dnnl::primitive primitive;
    dnnl::memory::desc scratchpad_md;
  };
  struct Binding {
    int arg = 0;
    dnnl::memory::desc tensor_md;
    dnnl::memory::desc primitive_md;
    std::optional<Step> reorder;  // tensor -> primitive for inputs, primitive -> tensor for output
  };

  static Binding Bind(const dnnl::primitive_desc& pd, const TensorArg& t, bool is_output);
  static Status RunStep(const Step& step, dnnl_rt::Args args, int threads, std::string_view what);

  Step primitive_;
  std::vector<Binding> inputs_;
  Binding output_;
};

// A kernel that runs one BoundPrimitive over all its inputs and its output: the float32 kernel
// of gates whose oneDNN primitive needs nothing else. `what` names the operation in run-time
// errors, which the executor prefixes with the node.
class DnnlKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  DnnlKernel(BoundPrimitive primitive, std::string what, LayoutPtr output_layout = nullptr)
      : primitive_(std::move(primitive)),
        what_(std::move(what)),
        output_layout_(std::move(output_layout)) {}
  // The team of the plan node it was compiled for (Note [Team size per primitive]).
  int cores() const override { return cores_; }
  LayoutPtr output_layout() const override { return output_layout_; }
  Status Run(KernelContext& ctx) const override {
    return primitive_.Run(ctx.inputs, *ctx.output, {}, ctx.threads, what_);
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  BoundPrimitive primitive_;
  std::string what_;
  LayoutPtr output_layout_;
};

// The layouts of a oneDNN gate's activation inputs as the plan gives them: `src` is input
// `src_input`'s layout and `dst` input `dst_input`'s (plain where the index is -1).
inline ActivationLayouts InputLayouts(const CompileContext& ctx, const Shape& src, int src_input,
                                      const Shape& dst, int dst_input) {
  auto desc = [&](const Shape& shape, int input) {
    return input >= 0 ? dnnl_rt::DescOf(ctx.input_layout(static_cast<size_t>(input)), shape)
                      : dnnl_rt::PlainDesc(shape);
  };
  return {desc(src, src_input), desc(dst, dst_input)};
}

// The layout a oneDNN gate's output tensor is written in: the primitive's own choice `chosen`
// when the plan allows it (CompileContext::output_layout_free), else plain.
inline dnnl::memory::desc OutputDesc(const CompileContext& ctx, const dnnl::memory::desc& chosen) {
  return ctx.output_layout_free ? chosen : dnnl_rt::PlainDesc(ctx.output);
}

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_DNNL_PRIMITIVE_H_
