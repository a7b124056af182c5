#include "engine/gates/pool.h"

#include <algorithm>
#include <string>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/pool_internal.h"
#include "engine/gates/spatial.h"
#include "engine/ir/gate_registry.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace pool_internal {

using reference::Pool2dShape;

StatusOr<Pool2dShape> ParsePool2d(const ShapeContext& ctx, const Shape& x, PoolKind kind) {
  BF_RETURN_IF_ERROR(CheckNchw(ctx, x, "x"));
  BF_ASSIGN_OR_RETURN(reference::Window2d win, ParsePoolWindow(ctx));
  if (kind == PoolKind::kMax) {
    const std::vector<int64_t> d = ctx.attrs.GetInts("dilation", {1, 1});
    if (d.size() != 2 || d[0] < 1 || d[1] < 1) {
      std::string got;
      for (int64_t v : d) got += (got.empty() ? "" : ", ") + std::to_string(v);
      return ctx.Error("dilation must be 2 ints, each >= 1, got [" + got + "]");
    }
    win.dilation_h = d[0];
    win.dilation_w = d[1];
  }
  const int64_t ceil = ctx.attrs.GetInt("ceil_mode", 0);
  if (ceil != 0 && ceil != 1) {
    return ctx.Error("ceil_mode must be 0 or 1, got " + std::to_string(ceil));
  }
  win.ceil_mode = ceil == 1;
  BF_RETURN_IF_ERROR(CheckWindowFits(ctx, win, x.dim(2), x.dim(3)));
  ClampStrides(win, x.dim(2), x.dim(3));
  Pool2dShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), win};
  if (kind == PoolKind::kAvg) {
    const int64_t include = ctx.attrs.GetInt("count_include_pad", 1);
    if (include != 0 && include != 1) {
      return ctx.Error("count_include_pad must be 0 or 1, got " + std::to_string(include));
    }
    s.count_include_pad = include == 1;
  }
  return s;
}

dnnl::memory::dims PadEnd(const Pool2dShape& s) {
  // With ceil_mode the last window may reach past the bottom/right padding: oneDNN pads that far
  // (max pooling never picks a padded tap). The last window starts at (out - 1) * stride, within
  // the padded input: subtracting the input and leading padding before adding the span keeps
  // every step in int64.
  const reference::Window2d& w = s.window;
  const int64_t bottom = ((s.out_h() - 1) * w.stride_h - s.h - w.pad_top) + w.span_h();
  const int64_t right = ((s.out_w() - 1) * w.stride_w - s.w - w.pad_left) + w.span_w();
  return {std::max(bottom, w.pad_bottom), std::max(right, w.pad_right)};
}

bool DnnlAvgDivisorDiffers(const Pool2dShape& s) {
  const dnnl::memory::dims end = PadEnd(s);
  return s.count_include_pad && (end[0] > s.window.pad_bottom || end[1] > s.window.pad_right);
}

dnnl::memory::dims Dilation(const Pool2dShape& s) {
  return {s.window.dilation_h - 1, s.window.dilation_w - 1};  // oneDNN counts from 0
}

dnnl::algorithm Algorithm(const Pool2dShape& s, PoolKind kind) {
  if (kind == PoolKind::kMax) return dnnl::algorithm::pooling_max;
  return s.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
}

Shape InputShape(const Pool2dShape& s) { return Shape{s.n, s.c, s.h, s.w}; }
Shape OutputShape(const Pool2dShape& s) { return Shape{s.n, s.c, s.out_h(), s.out_w()}; }

StatusOr<dnnl::pooling_v2_forward::primitive_desc> MakeForwardPd(const Pool2dShape& s,
                                                                 PoolKind kind,
                                                                 const ActivationLayouts& layouts,
                                                                 std::string_view what,
                                                                 dnnl::prop_kind prop) {
  return dnnl_rt::Build(what, [&] {
    using dnnl::memory;
    using Fwd = dnnl::pooling_v2_forward;
    const reference::Window2d& win = s.window;
    const memory::desc dst_md(dnnl_rt::Dims(OutputShape(s)), memory::data_type::f32,
                              memory::format_tag::any);
    const Fwd::desc desc(prop, Algorithm(s, kind), layouts.src, dst_md,
                         {win.stride_h, win.stride_w}, {win.kernel_h, win.kernel_w}, Dilation(s),
                         {win.pad_top, win.pad_left}, PadEnd(s));
    return Fwd::primitive_desc(desc, PrimitiveAttributes(), dnnl_rt::CpuEngine());
  });
}

StatusOr<BoundPrimitive> BindForward(const dnnl::pooling_v2_forward::primitive_desc& pd,
                                     const ActivationLayouts& layouts, std::string_view what) {
  return BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, layouts.src}}, {DNNL_ARG_DST, layouts.dst}, what);
}

}  // namespace pool_internal

namespace {

using pool_internal::PoolKind;
using reference::Pool2dShape;

// float32 max pooling that keeps oneDNN's workspace (which tap of each window was the maximum)
// in the node's saved slot, for max_pool2d_grad to read instead of searching the windows again.
class MaxPoolForwardKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  MaxPoolForwardKernel(BoundPrimitive forward, dnnl::memory::desc workspace_md, std::string what,
                       LayoutPtr output_layout)
      : forward_(std::move(forward)),
        workspace_md_(workspace_md),
        what_(std::move(what)),
        output_layout_(std::move(output_layout)) {}
  // The team of the plan node it was compiled for (Note [Team size per primitive]).
  int cores() const override { return cores_; }
  LayoutPtr output_layout() const override { return output_layout_; }
  Status Run(KernelContext& ctx) const override {
    dnnl::memory workspace(workspace_md_, dnnl_rt::CpuEngine());
    BF_RETURN_IF_ERROR(forward_.Run(ctx.inputs, *ctx.output, {{DNNL_ARG_WORKSPACE, workspace}},
                                    ctx.threads, what_));
    if (ctx.saved != nullptr) *ctx.saved = workspace;
    return Status::Ok();
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  BoundPrimitive forward_;
  dnnl::memory::desc workspace_md_;
  std::string what_;
  LayoutPtr output_layout_;
};

// Note [Max pooling without its workspace]
// Max pooling's forward_training primitive also writes a workspace (which tap of each window
// was the maximum) that max_pool2d_grad reads, so the backward does not search the windows
// again. Writing it costs: on an AVX2 machine, 64 x 6 x 28 x 28 (LeNet-5's first pooling at
// batch 64) took 3.65 ms with it and 0.56 ms as forward_inference, which writes none; the
// training pooling was two-thirds of LeNet-5's inference. So a plan in which no step reads the
// node's saved state (CompileContext::saved_state_read: a forward-only plan, such as every Infer)
// gets the forward_inference primitive; the outputs are the same maxima.
StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const Pool2dShape& s, PoolKind kind,
                                                     const CompileContext& ctx) {
  const std::string_view op = kind == PoolKind::kMax ? "max_pool2d forward" : "avg_pool2d forward";
  const std::string what = KernelLabel(ctx.node, op);
  ActivationLayouts layouts = InputLayouts(ctx, pool_internal::InputShape(s), /*src_input=*/0,
                                           pool_internal::OutputShape(s), -1);
  // Average pooling has no workspace: it keeps forward_training either way.
  const bool workspace = kind == PoolKind::kMax && ctx.saved_state_read;
  const bool inference = kind == PoolKind::kMax && !ctx.saved_state_read;
  BF_ASSIGN_OR_RETURN(auto pd,
                      pool_internal::MakeForwardPd(s, kind, layouts, what,
                                                   inference ? dnnl::prop_kind::forward_inference
                                                             : dnnl::prop_kind::forward_training));
  layouts.dst = OutputDesc(ctx, pd.dst_desc());
  LayoutPtr output_layout = dnnl_rt::LayoutOf(layouts.dst, ctx.output);
  BF_ASSIGN_OR_RETURN(BoundPrimitive forward, pool_internal::BindForward(pd, layouts, what));
  if (!workspace) {
    return std::unique_ptr<Kernel>(
        std::make_unique<DnnlKernel>(std::move(forward), std::string(op), output_layout));
  }
  return std::unique_ptr<Kernel>(std::make_unique<MaxPoolForwardKernel>(
      std::move(forward), pd.workspace_desc(), std::string(op), output_layout));
}

std::unique_ptr<Kernel> ReferenceForward(const Pool2dShape& s, PoolKind kind) {
  return std::make_unique<ReferenceLoopKernel>(
      [s, kind](std::span<const Tensor* const> in, Tensor& y) {
        if (kind == PoolKind::kMax) {
          reference::MaxPool2dForward<double>(s, in[0]->data<double>(), y.data<double>(),
                                              /*argmax=*/nullptr);
        } else {
          reference::AvgPool2dForward<double>(s, in[0]->data<double>(), y.data<double>());
        }
      });
}

// The op reference's entries: the formulas of pool.h.
OpDoc Pool2dDoc(PoolKind kind) {
  OpDoc doc{.inputs = {{"x", "[N, C, H, W]; N may be open"}}, .output = "[N, C, OH, OW]"};
  if (kind == PoolKind::kMax) {
    doc.summary = "2-D max pooling over each channel.";
    doc.forward =
        "y[n,c,i,j] = max of x[n, c, i*sh - pt + a*dh, j*sw - pl + e*dw]\n"
        "             over the taps 0 <= a < KH, 0 <= e < KW inside x\n"
        "OH = floor((H + pt + pb - (KH - 1) * dh - 1) / sh) + 1, and likewise OW;\n"
        "ceil_mode 1: ceil instead of floor, less 1 if the last window would\n"
        "start at or past row H + pt (PyTorch's rule)";
    doc.gradient =
        "dL/dx: each dy element goes, whole, to the arg-max of its window\n"
        "(summed where windows overlap; a tie goes to the first maximum,\n"
        "row by row, then column)";
  } else {
    doc.summary = "2-D average pooling over each channel.";
    doc.forward =
        "y[n,c,i,j] = sum of x[n, c, i*sh - pt + a, j*sw - pl + e] / count\n"
        "             over the taps 0 <= a < KH, 0 <= e < KW inside x\n"
        "count = the taps inside the padded input with count_include_pad 1\n"
        "        (KH * KW but where a ceil_mode window hangs past it),\n"
        "        the number of taps inside x with count_include_pad 0\n"
        "OH = floor((H + pt + pb - KH) / sh) + 1, and likewise OW;\n"
        "ceil_mode 1: ceil instead of floor, less 1 if the last window would\n"
        "start at or past row H + pt (PyTorch's rule)";
    doc.gradient =
        "dL/dx: each dy element spread evenly, dy / count, over its window's taps\n"
        "(summed where windows overlap)";
  }
  return doc;
}

class Pool2dGate : public Gate {
 public:
  explicit Pool2dGate(PoolKind kind) : kind_(kind) {}
  Arity arity() const override { return {1, 1}; }
  bool accepts_layout(int input) const override { return true; }  // x
  std::vector<AttrSpec> attr_specs() const override {
    std::vector<AttrSpec> specs = {
        {.name = "kernel",
         .type = AttrType::kInts,
         .required = true,
         .description = "the window, [KH, KW], each > 0"},
        {.name = "stride",
         .type = AttrType::kInts,
         .description = "[sh, sw], each > 0; absent: the kernel, so windows tile the input"},
        {.name = "padding",
         .type = AttrType::kInts,
         .default_value = "[0, 0]",
         .description = "[ph, pw] (both sides alike) or [pt, pl, pb, pr], each >= 0 and "
                        "smaller than the kernel"}};
    if (kind_ == PoolKind::kMax) {
      specs.push_back({.name = "dilation",
                       .type = AttrType::kInts,
                       .default_value = "[1, 1]",
                       .description = "[dh, dw], each >= 1: taps dh rows and dw columns apart "
                                      "(1: adjacent, as PyTorch)"});
    }
    specs.push_back({.name = "ceil_mode",
                     .type = AttrType::kInt,
                     .default_value = "0",
                     .description = "1 rounds OH and OW up, as PyTorch's ceil_mode (a last "
                                    "window must start inside x or its top/left padding); "
                                    "0 rounds down"});
    if (kind_ == PoolKind::kAvg) {
      specs.push_back({.name = "count_include_pad",
                       .type = AttrType::kInt,
                       .default_value = "1",
                       .description = "1 divides by the taps inside the padded input, padding "
                                      "counted (PyTorch's default); 0 by the real taps only"});
    }
    return specs;
  }
  OpDoc doc() const override { return Pool2dDoc(kind_); }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  // out * KH * KW: one comparison or addition per tap.
  int64_t Flops(const FlopsContext& ctx) const override {
    int64_t flops = FlopsContext::Elements(ctx.output);
    for (int64_t k : ctx.attrs.GetInts("kernel", {})) flops = SaturatingMul(flops, k < 0 ? 0 : k);
    return flops;
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Pool2dShape s, pool_internal::ParsePool2d(ctx, ctx.inputs[0], kind_));
    return pool_internal::OutputShape(s);
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Pool2dShape s,
                        pool_internal::ParsePool2d(ShapeContext{ctx.node, ctx.inputs, ctx.attrs},
                                                   ctx.inputs[0], kind_));
    if (ctx.dtype == DType::kFloat64) return ReferenceForward(s, kind_);
    if (kind_ == PoolKind::kAvg && pool_internal::DnnlAvgDivisorDiffers(s)) {
      return pool_internal::CompileFloatAvgReference(s, /*backward=*/false, ctx);
    }
    return CompileDnnlForward(s, kind_, ctx);
  }
  Status Backward(BackwardContext& ctx) const override;

 private:
  PoolKind kind_;
};

Status Pool2dGate::Backward(BackwardContext& ctx) const {
  if (!ctx.needs_grad(0)) return Status::Ok();
  const Node& node = ctx.node();
  const Shape& x = ctx.input_shape(0);
  BF_ASSIGN_OR_RETURN(Pool2dShape s, pool_internal::ParsePool2d(
                                         ShapeContext{node.name, {&x, 1}, node.attrs}, x, kind_));
  Attributes attrs = PoolWindowAttributes(s.window);
  attrs.Set("ceil_mode", int64_t{s.window.ceil_mode ? 1 : 0});
  ValueId dx;
  if (kind_ == PoolKind::kMax) {
    // x rides along so the float64 kernel, which has no workspace, can find the arg-max again.
    attrs.Set("dilation", std::vector<int64_t>{s.window.dilation_h, s.window.dilation_w});
    BF_ASSIGN_OR_RETURN(dx, ctx.Emit("max_pool2d_grad", {ctx.input(0), ctx.output_grad()},
                                     std::move(attrs), /*reads_saved=*/true));
  } else {
    attrs.Set("input_size", std::vector<int64_t>{s.h, s.w});
    attrs.Set("count_include_pad", int64_t{s.count_include_pad ? 1 : 0});
    BF_ASSIGN_OR_RETURN(dx, ctx.Emit("avg_pool2d_grad", {ctx.output_grad()}, std::move(attrs)));
  }
  ctx.SetGrad(0, dx);
  return Status::Ok();
}

// The average pooling global_avg_pool2d is: one window, the whole plane. It holds no padding,
// so count_include_pad does not matter.
Pool2dShape GlobalShape(const Shape& x) {
  reference::Window2d win;
  win.kernel_h = win.stride_h = x.dim(2);
  win.kernel_w = win.stride_w = x.dim(3);
  return Pool2dShape{x.dim(0), x.dim(1), x.dim(2), x.dim(3), win};
}

class GlobalAvgPoolGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  bool accepts_layout(int input) const override { return true; }  // x
  OpDoc doc() const override {
    return {.summary = "Mean of each channel's H x W plane (PyTorch's adaptive_avg_pool2d(x, 1)).",
            .inputs = {{"x", "[N, C, H, W]; N may be open"}},
            .output = "[N, C, 1, 1]",
            .forward = "y[n,c,0,0] = sum over i < H, j < W of x[n,c,i,j] / (H * W)",
            .gradient = "dL/dx[n,c,i,j] = dy[n,c,0,0] / (H * W)"};
  }
  // One addition per input element.
  int64_t Flops(const FlopsContext& ctx) const override {
    return FlopsContext::Elements(ctx.inputs[0]);
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(CheckNchw(ctx, ctx.inputs[0], "x"));
    return Shape{ctx.inputs[0].dim(0), ctx.inputs[0].dim(1), 1, 1};
  }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const Pool2dShape s = GlobalShape(ctx.inputs[0]);
    if (ctx.dtype == DType::kFloat32) return CompileDnnlForward(s, PoolKind::kAvg, ctx);
    return ReferenceForward(s, PoolKind::kAvg);
  }
  // avg_pool2d_grad over the one window: dy / (H * W) to every element.
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    const Pool2dShape s = GlobalShape(ctx.input_shape(0));
    Attributes attrs = PoolWindowAttributes(s.window);
    attrs.Set("input_size", std::vector<int64_t>{s.h, s.w});
    BF_ASSIGN_OR_RETURN(ValueId dx,
                        ctx.Emit("avg_pool2d_grad", {ctx.output_grad()}, std::move(attrs)));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

}  // namespace

void RegisterPoolGates(GateRegistry& registry) {
  (void)registry.Register("global_avg_pool2d", std::make_unique<GlobalAvgPoolGate>());
  (void)registry.Register("max_pool2d", std::make_unique<Pool2dGate>(PoolKind::kMax));
  (void)registry.Register("avg_pool2d", std::make_unique<Pool2dGate>(PoolKind::kAvg));
  (void)registry.Register("max_pool2d_grad", pool_internal::MakePoolGradGate(PoolKind::kMax));
  (void)registry.Register("avg_pool2d_grad", pool_internal::MakePoolGradGate(PoolKind::kAvg));
}

}  // namespace backflow
