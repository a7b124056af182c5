// The internal gates the pooling gates' Backward emits: max_pool2d_grad (inputs x, dy) and
// avg_pool2d_grad (input dy, attribute input_size). See engine/gates/pool.h for the formulas.
#include <any>
#include <string>
#include <vector>

#include "engine/gates/pool_internal.h"
#include "engine/gates/spatial.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::pool_internal {
namespace {

using reference::Pool2dShape;

// The pooling shape a gradient gate's inputs describe, with dy checked against it.
StatusOr<Pool2dShape> ParseGrad(const ShapeContext& ctx, PoolKind kind) {
  const Shape& dy = ctx.inputs[kind == PoolKind::kMax ? 1 : 0];
  BF_RETURN_IF_ERROR(CheckNchw(ctx, dy, "dy"));
  Shape x;
  if (kind == PoolKind::kMax) {
    x = ctx.inputs[0];
  } else {
    BF_ASSIGN_OR_RETURN(auto size, ParseSize2(ctx, "input_size"));
    x = Shape{dy.dim(0), dy.dim(1), size.first, size.second};
  }
  BF_ASSIGN_OR_RETURN(Pool2dShape s, ParsePool2d(ctx, x, kind));
  const Shape y = OutputShape(s);
  if (!SameBatch(dy.dim(0), y.dim(0)) || dy.dim(1) != y.dim(1) || dy.dim(2) != y.dim(2) ||
      dy.dim(3) != y.dim(3)) {
    return ctx.Error("dy is " + dy.ToString() + ", but pooling " + x.ToString() + " gives " +
                     y.ToString());
  }
  if (s.n == kBatchDim) s.n = dy.dim(0);
  return s;
}

// float32 max pooling backward: routes dy through the workspace the forward kernel saved.
class MaxPoolGradKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  MaxPoolGradKernel(BoundPrimitive forward, BoundPrimitive backward,
                    dnnl::memory::desc workspace_md, Shape y_shape, std::string what,
                    LayoutPtr output_layout)
      : forward_(std::move(forward)),
        backward_(std::move(backward)),
        workspace_md_(workspace_md),
        y_shape_(std::move(y_shape)),
        what_(std::move(what)),
        output_layout_(std::move(output_layout)) {}
  // The team of the plan node it was compiled for (Note [Team size per primitive]).
  int cores() const override { return cores_; }
  LayoutPtr output_layout() const override { return output_layout_; }
  Status Run(KernelContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(dnnl::memory workspace, Workspace(ctx));
    return backward_.Run(ctx.inputs.subspan(1), *ctx.output, {{DNNL_ARG_WORKSPACE, workspace}},
                         ctx.threads, what_);
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  StatusOr<dnnl::memory> Workspace(KernelContext& ctx) const {
    if (ctx.forward_saved == nullptr) {
      // Not linked to a forward node (a graph built by hand, not by autodiff): run the forward
      // primitive again for its workspace.
      Tensor y(DType::kFloat32, y_shape_);
      dnnl::memory workspace(workspace_md_, dnnl_rt::CpuEngine());
      BF_RETURN_IF_ERROR(forward_.Run(ctx.inputs.first(1), y, {{DNNL_ARG_WORKSPACE, workspace}},
                                      ctx.threads, what_));
      return workspace;
    }
    const auto* saved = std::any_cast<dnnl::memory>(ctx.forward_saved);
    // Both kernels build the same forward descriptor, so the layouts agree; checked because a
    // mismatch would silently route gradients to the wrong taps.
    if (saved == nullptr || saved->get_desc() != workspace_md_) {
      return InternalError(what_ + ": the forward node saved no workspace of the expected layout");
    }
    return *saved;
  }

  BoundPrimitive forward_;
  BoundPrimitive backward_;
  dnnl::memory::desc workspace_md_;
  Shape y_shape_;
  std::string what_;
  LayoutPtr output_layout_;
};

StatusOr<std::unique_ptr<Kernel>> CompileDnnlGrad(const Pool2dShape& s, PoolKind kind,
                                                  const CompileContext& ctx) {
  const bool max = kind == PoolKind::kMax;
  const std::string_view op = max ? "max_pool2d backward" : "avg_pool2d backward";
  const std::string what = KernelLabel(ctx.node, op);
  // x (max pooling's input 0) in its layout: the forward descriptor, and so the workspace
  // layout, must be the forward node's. y stays plain: only a re-run forward writes it here.
  const ActivationLayouts layouts =
      InputLayouts(ctx, InputShape(s), max ? 0 : -1, OutputShape(s), -1);
  const dnnl::memory::desc dy = dnnl_rt::DescOf(ctx.input_layout(max ? 1 : 0), OutputShape(s));
  BF_ASSIGN_OR_RETURN(auto fwd_pd, MakeForwardPd(s, kind, layouts, what));
  // diff_src and diff_dst take the forward's layouts, which the workspace's layout follows.
  BF_ASSIGN_OR_RETURN(
      auto pd, dnnl_rt::Build(what, [&] {
        using Bwd = dnnl::pooling_v2_backward;
        const reference::Window2d& w = s.window;
        const Bwd::desc desc(Algorithm(s, kind), fwd_pd.src_desc(), fwd_pd.dst_desc(),
                             {w.stride_h, w.stride_w}, {w.kernel_h, w.kernel_w}, Dilation(s),
                             {w.pad_top, w.pad_left}, PadEnd(s));
        return Bwd::primitive_desc(desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd_pd);
      }));
  const dnnl::memory::desc dx = OutputDesc(ctx, pd.diff_src_desc());
  LayoutPtr dx_layout = dnnl_rt::LayoutOf(dx, ctx.output);
  BF_ASSIGN_OR_RETURN(BoundPrimitive backward,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_DIFF_DST, dy}}, {DNNL_ARG_DIFF_SRC, dx},
                                           what));
  if (!max) {
    return std::unique_ptr<Kernel>(
        std::make_unique<DnnlKernel>(std::move(backward), std::string(op), dx_layout));
  }
  BF_ASSIGN_OR_RETURN(BoundPrimitive forward, BindForward(fwd_pd, layouts, what));
  return std::unique_ptr<Kernel>(
      std::make_unique<MaxPoolGradKernel>(std::move(forward), std::move(backward),
                                          pd.workspace_desc(), OutputShape(s), std::string(op),
                                          std::move(dx_layout)));
}

std::unique_ptr<Kernel> ReferenceGrad(const Pool2dShape& s, PoolKind kind) {
  return std::make_unique<ReferenceLoopKernel>(
      [s, kind](std::span<const Tensor* const> in, Tensor& dx) {
        if (kind == PoolKind::kMax) {
          reference::MaxPool2dBackward<double>(s, in[0]->data<double>(), in[1]->data<double>(),
                                               dx.data<double>());
        } else {
          reference::AvgPool2dBackward<double>(s, in[0]->data<double>(), dx.data<double>());
        }
      });
}

class PoolGradGate : public Gate {
 public:
  explicit PoolGradGate(PoolKind kind) : kind_(kind) {}
  Arity arity() const override {
    const int n = kind_ == PoolKind::kMax ? 2 : 1;
    return {n, n};
  }
  std::vector<AttrSpec> attr_specs() const override {
    std::vector<AttrSpec> specs = {{"kernel", AttrType::kInts, /*required=*/true},
                                   {"stride", AttrType::kInts},
                                   {"padding", AttrType::kInts}};
    specs.push_back({"ceil_mode", AttrType::kInt});
    if (kind_ == PoolKind::kMax) specs.push_back({"dilation", AttrType::kInts});
    if (kind_ == PoolKind::kAvg) {
      specs.push_back({"input_size", AttrType::kInts, true});
      specs.push_back({"count_include_pad", AttrType::kInt});
    }
    return specs;
  }
  bool internal() const override { return true; }
  bool accepts_layout(int input) const override { return true; }  // x and dy
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Pool2dShape s, ParseGrad(ctx, kind_));
    return InputShape(s);
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Pool2dShape s,
                        ParseGrad(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}, kind_));
    if (ctx.dtype == DType::kFloat64) return ReferenceGrad(s, kind_);
    if (kind_ == PoolKind::kAvg && DnnlAvgDivisorDiffers(s)) {
      return CompileFloatAvgReference(s, /*backward=*/true, ctx);
    }
    return CompileDnnlGrad(s, kind_, ctx);
  }

 private:
  PoolKind kind_;
};

}  // namespace

std::unique_ptr<Gate> MakePoolGradGate(PoolKind kind) {
  return std::make_unique<PoolGradGate>(kind);
}

}  // namespace backflow::pool_internal
