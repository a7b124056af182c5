#include "engine/gates/conv.h"

#include <optional>
#include <string>
#include <vector>

#include "engine/core/checked.h"
#include "engine/core/saturating.h"
#include "engine/gates/conv_internal.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/spatial.h"
#include "engine/ir/gate_registry.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace conv_internal {

using reference::Conv2dShape;

ActivationLayouts Layouts(const CompileContext& ctx, const Conv2dShape& s, int src_input,
                          int dst_input) {
  return InputLayouts(ctx, Shape{s.n, s.c, s.h, s.w}, src_input,
                      Shape{s.n, s.o, s.out_h(), s.out_w()}, dst_input);
}

StatusOr<int64_t> ParseGroups(const ShapeContext& ctx, int64_t c, int64_t o) {
  const int64_t groups = ctx.attrs.GetInt("groups", 1);
  if (groups < 1 || c % groups != 0 || o % groups != 0) {
    return ctx.Error("groups " + std::to_string(groups) + " must be >= 1 and divide both the " +
                     std::to_string(c) + " input and the " + std::to_string(o) +
                     " output channels");
  }
  return groups;
}

dnnl::memory::dims SrcDims(const Conv2dShape& s) { return {s.n, s.c, s.h, s.w}; }
dnnl::memory::dims WeightsDims(const Conv2dShape& s) {
  // Grouped: oneDNN's 5-D goihw, whose plain layout is our [O, C / groups, KH, KW].
  if (s.groups > 1) {
    return {s.groups, s.group_o(), s.group_c(), s.window.kernel_h, s.window.kernel_w};
  }
  return {s.o, s.c, s.window.kernel_h, s.window.kernel_w};
}
dnnl::memory::dims DstDims(const Conv2dShape& s) { return {s.n, s.o, s.out_h(), s.out_w()}; }

DnnlWindow ToDnnl(const reference::Window2d& win) {
  return {{win.stride_h, win.stride_w},
          {win.dilation_h - 1, win.dilation_w - 1},
          {win.pad_top, win.pad_left},
          {win.pad_bottom, win.pad_right}};
}

StatusOr<dnnl::convolution_forward::primitive_desc> MakeForwardPd(const Conv2dShape& s,
                                                                  bool with_bias,
                                                                  std::string_view what) {
  return dnnl_rt::Build(what, [&] {
    using dnnl::memory;
    using Fwd = dnnl::convolution_forward;
    const memory::desc src_md(SrcDims(s), memory::data_type::f32, memory::format_tag::any);
    const memory::desc weights_md(WeightsDims(s), memory::data_type::f32, memory::format_tag::any);
    const memory::desc dst_md(DstDims(s), memory::data_type::f32, memory::format_tag::any);
    const DnnlWindow win = ToDnnl(s.window);
    const auto prop = dnnl::prop_kind::forward_training;
    const auto algo = dnnl::algorithm::convolution_direct;
    const Fwd::desc desc =
        with_bias ? Fwd::desc(prop, algo, src_md, weights_md, dnnl_rt::PlainDesc(Shape{s.o}),
                              dst_md, win.strides, win.dilates, win.padding_l, win.padding_r)
                  : Fwd::desc(prop, algo, src_md, weights_md, dst_md, win.strides, win.dilates,
                              win.padding_l, win.padding_r);
    return Fwd::primitive_desc(desc, PrimitiveAttributes(), dnnl_rt::CpuEngine());
  });
}

int64_t ConvFlops(int64_t out_elements, const Shape& w) {
  if (w.rank() != 4) return out_elements;
  const int64_t taps = SaturatingMul(w.dim(1), SaturatingMul(w.dim(2), w.dim(3)));
  return SaturatingMul(2, SaturatingMul(out_elements, taps));
}

}  // namespace conv_internal

namespace {

using reference::Conv2dShape;

// Checks x [N, C, H, W], w [O, C / groups, KH, KW], b [O] and the window attributes; returns
// the convolution's shape (n may be the open batch dimension).
StatusOr<Conv2dShape> ParseConv2d(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  const Shape& w = ctx.inputs[1];
  BF_RETURN_IF_ERROR(CheckNchw(ctx, x, "x"));
  BF_RETURN_IF_ERROR(CheckFixedShape(ctx, w, 4, "w [O, C / groups, KH, KW]"));
  BF_ASSIGN_OR_RETURN(int64_t groups, conv_internal::ParseGroups(ctx, x.dim(1), w.dim(0)));
  const std::optional<int64_t> channels = CheckedMul(w.dim(1), groups);
  if (channels != x.dim(1)) {
    return ctx.Error("x " + x.ToString() + " has " + std::to_string(x.dim(1)) +
                     " channels, but w " + w.ToString() + " expects " +
                     (channels ? std::to_string(*channels) : "more than INT64_MAX") +
                     " (w is [O, C / groups, KH, KW], groups " + std::to_string(groups) + ")");
  }
  if (ctx.inputs.size() == 3 && ctx.inputs[2] != Shape{w.dim(0)}) {
    return ctx.Error("b must be [O] = [" + std::to_string(w.dim(0)) + "], one bias per output " +
                     "channel, got " + ctx.inputs[2].ToString());
  }
  BF_ASSIGN_OR_RETURN(reference::Window2d win, ParseConvWindow(ctx, w.dim(2), w.dim(3)));
  BF_RETURN_IF_ERROR(CheckWindowFits(ctx, win, x.dim(2), x.dim(3)));
  ClampStrides(win, x.dim(2), x.dim(3));
  return Conv2dShape{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), win, groups};
}

// float32: oneDNN forward_training over tensors laid out as `layouts` says.
StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const Conv2dShape& s, bool with_bias,
                                                     const CompileContext& ctx) {
  constexpr std::string_view kOp = "conv2d forward";
  const std::string what = KernelLabel(ctx.node, kOp);
  const ActivationLayouts layouts = conv_internal::Layouts(ctx, s, /*src_input=*/0, -1);
  BF_ASSIGN_OR_RETURN(auto pd, conv_internal::MakeForwardPd(s, with_bias, what));
  std::vector<TensorArg> inputs = {
      {DNNL_ARG_SRC, layouts.src},
      {DNNL_ARG_WEIGHTS, dnnl_rt::PlainDesc(Shape(conv_internal::WeightsDims(s)))}};
  if (with_bias) inputs.push_back({DNNL_ARG_BIAS, dnnl_rt::PlainDesc(Shape{s.o})});
  const dnnl::memory::desc dst = OutputDesc(ctx, pd.dst_desc());
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, std::move(inputs), {DNNL_ARG_DST, dst}, what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(
      std::move(bound), std::string(kOp), dnnl_rt::LayoutOf(dst, ctx.output)));
}

// The op reference's entry: the formulas of conv.h.
OpDoc Conv2dDoc() {
  return {
      .summary = "2-D convolution (cross-correlation) of NCHW images with a bank of filters.",
      .inputs = {{"x", "[N, C, H, W]; N may be open"}, {"w", "[O, C / groups, KH, KW]"}, {"b", "[O]"}},
      .output = "[N, O, OH, OW]",
      .forward =
          "y[n,o,i,j] = b[o] + sum_{c,a,e} x[n, c, i*sh - pt + a*dh, j*sw - pl + e*dw]"
          " * w[o,c,a,e]\n"
          "(taps in the padding read zero); with groups G, c runs over the C / G channels\n"
          "of o's group, g = o / (O / G): x channel g * C / G + c, w[o, c, a, e]\n"
          "OH = floor((H + pt + pb - ((KH - 1) * dh + 1)) / sh) + 1, and likewise OW",
      .gradient =
          "dL/dx = dy, dilated by the stride and padded, convolved with w rotated 180 degrees:\n"
          "        each x element collects the dy of every output it fed, times the weight\n"
          "dL/dw[o,c,a,e] = sum_{n,i,j} dy[n,o,i,j] * x[n, c, i*sh - pt + a*dh, j*sw - pl + e*dw]\n"
          "dL/db[o] = sum_{n,i,j} dy[n,o,i,j]"};
}

class Conv2dGate : public Gate {
 public:
  Arity arity() const override { return {2, 3}; }
  bool accepts_layout(int input) const override { return input == 0; }  // x
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "stride",
             .type = AttrType::kInts,
             .default_value = "[1, 1]",
             .description = "[sh, sw], each > 0"},
            {.name = "padding",
             .type = AttrType::kInts,
             .default_value = "[0, 0]",
             .description = "[ph, pw] (both sides alike) or [pt, pl, pb, pr], each >= 0"},
            {.name = "dilation",
             .type = AttrType::kInts,
             .default_value = "[1, 1]",
             .description = "[dh, dw], each >= 1; 1 means adjacent taps"},
            {.name = "groups",
             .type = AttrType::kInt,
             .default_value = "1",
             .description = "channel groups, dividing C and O: w is [O, C / groups, KH, KW] and "
                            "each output channel reads its group's inputs only (C: depthwise)"}};
  }
  OpDoc doc() const override { return Conv2dDoc(); }
  bool compute_bound() const override { return true; }
  // 2 * out * C * KH * KW, plus out for the bias.
  int64_t Flops(const FlopsContext& ctx) const override {
    const int64_t out = FlopsContext::Elements(ctx.output);
    const int64_t bias = ctx.inputs.size() > 2 ? out : 0;
    return SaturatingAdd(conv_internal::ConvFlops(out, ctx.inputs[1]), bias);
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s, ParseConv2d(ctx));
    return Shape{s.n, s.o, s.out_h(), s.out_w()};
  }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.FirstInputRows(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s, ParseConv2d(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}));
    const bool with_bias = ctx.inputs.size() == 3;
    if (ctx.dtype == DType::kFloat32) {
      return CompileDnnlForward(s, with_bias, ctx);
    }
    return std::unique_ptr<Kernel>(std::make_unique<ReferenceLoopKernel>(
        [s, with_bias](std::span<const Tensor* const> in, Tensor& y) {
          reference::Conv2dForward<double>(s, in[0]->data<double>(), in[1]->data<double>(),
                                           with_bias ? in[2]->data<double>() : nullptr,
                                           y.data<double>());
        }));
  }
  Status Backward(BackwardContext& ctx) const override;
};

Status Conv2dGate::Backward(BackwardContext& ctx) const {
  const Node& node = ctx.node();
  std::vector<Shape> shapes;
  for (int i = 0; i < static_cast<int>(node.inputs.size()); ++i) {
    shapes.push_back(ctx.input_shape(i));
  }
  BF_ASSIGN_OR_RETURN(Conv2dShape s, ParseConv2d(ShapeContext{node.name, shapes, node.attrs}));
  if (ctx.needs_grad(0)) {
    Attributes attrs = ConvWindowAttributes(s.window);
    attrs.Set("groups", s.groups);
    attrs.Set("input_size", std::vector<int64_t>{s.h, s.w});
    BF_ASSIGN_OR_RETURN(ValueId dx,
                        ctx.Emit("conv2d_backward_data", {ctx.output_grad(), ctx.input(1)}, attrs));
    ctx.SetGrad(0, dx);
  }
  if (ctx.needs_grad(1)) {
    Attributes attrs = ConvWindowAttributes(s.window);
    attrs.Set("groups", s.groups);
    attrs.Set("kernel_size", std::vector<int64_t>{s.window.kernel_h, s.window.kernel_w});
    BF_ASSIGN_OR_RETURN(
        ValueId dw, ctx.Emit("conv2d_backward_weights", {ctx.input(0), ctx.output_grad()}, attrs));
    ctx.SetGrad(1, dw);
  }
  if (shapes.size() == 3 && ctx.needs_grad(2)) {
    BF_ASSIGN_OR_RETURN(ValueId db, ctx.Emit("conv2d_backward_bias", {ctx.output_grad()}));
    ctx.SetGrad(2, db);
  }
  return Status::Ok();
}

}  // namespace

void RegisterConvGates(GateRegistry& registry) {
  (void)registry.Register("conv2d", std::make_unique<Conv2dGate>());
  (void)registry.Register("conv2d_backward_data", conv_internal::MakeConv2dBackwardDataGate());
  (void)registry.Register("conv2d_backward_weights",
                          conv_internal::MakeConv2dBackwardWeightsGate());
  (void)registry.Register("conv2d_backward_bias", conv_internal::MakeConv2dBackwardBiasGate());
}

}  // namespace backflow
