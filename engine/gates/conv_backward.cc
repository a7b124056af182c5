// The internal gates conv2d's Backward emits: dL/dx (conv2d_backward_data) and dL/dw
// (conv2d_backward_weights). See engine/gates/conv.h for the formulas.
#include <optional>
#include <string>
#include <vector>

#include "engine/core/checked.h"
#include "engine/core/saturating.h"
#include "engine/gates/conv_internal.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/spatial.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::conv_internal {
namespace {

using reference::Conv2dShape;

// Checks that dy is what the forward convolution of shape `s` outputs.
Status CheckDy(const ShapeContext& ctx, const Shape& dy, const Conv2dShape& s) {
  if (dy.dim(1) == s.o && dy.dim(2) == s.out_h() && dy.dim(3) == s.out_w()) return Status::Ok();
  return ctx.Error("dy is " + dy.ToString() + ", but the convolution outputs " +
                   Shape{s.n, s.o, s.out_h(), s.out_w()}.ToString());
}

std::vector<AttrSpec> WindowSpecs(std::string_view size_attr) {
  return {{"stride", AttrType::kInts},
          {"padding", AttrType::kInts},
          {"dilation", AttrType::kInts},
          {"groups", AttrType::kInt},
          {size_attr, AttrType::kInts, /*required=*/true}};
}

// dy [N, O, OH, OW], w [O, C, KH, KW] and input_size [H, W]: the forward convolution's shape.
StatusOr<Conv2dShape> ParseBackwardData(const ShapeContext& ctx) {
  const Shape& dy = ctx.inputs[0];
  const Shape& w = ctx.inputs[1];
  BF_RETURN_IF_ERROR(CheckNchw(ctx, dy, "dy"));
  BF_RETURN_IF_ERROR(CheckFixedShape(ctx, w, 4, "w [O, C, KH, KW]"));
  BF_ASSIGN_OR_RETURN(auto size, ParseSize2(ctx, "input_size"));
  BF_ASSIGN_OR_RETURN(reference::Window2d win, ParseConvWindow(ctx, w.dim(2), w.dim(3)));
  BF_RETURN_IF_ERROR(CheckWindowFits(ctx, win, size.first, size.second));
  ClampStrides(win, size.first, size.second);
  const int64_t groups = ctx.attrs.GetInt("groups", 1);
  const std::optional<int64_t> c = CheckedMul(w.dim(1), groups);
  if (!c) {
    return ctx.Error("groups " + std::to_string(groups) + " times the " + std::to_string(w.dim(1)) +
                     " channels of each group overflows");
  }
  BF_RETURN_IF_ERROR(ParseGroups(ctx, *c, w.dim(0)).status());
  const Conv2dShape s{dy.dim(0), *c, size.first, size.second, w.dim(0), win, groups};
  BF_RETURN_IF_ERROR(CheckDy(ctx, dy, s));
  return s;
}

// x [N, C, H, W], dy [N, O, OH, OW] and kernel_size [KH, KW]: the forward convolution's shape.
StatusOr<Conv2dShape> ParseBackwardWeights(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  const Shape& dy = ctx.inputs[1];
  BF_RETURN_IF_ERROR(CheckNchw(ctx, x, "x"));
  BF_RETURN_IF_ERROR(CheckNchw(ctx, dy, "dy"));
  if (!SameBatch(x.dim(0), dy.dim(0))) {
    return ctx.Error("x " + x.ToString() + " and dy " + dy.ToString() + " differ in batch size");
  }
  BF_ASSIGN_OR_RETURN(auto size, ParseSize2(ctx, "kernel_size"));
  BF_ASSIGN_OR_RETURN(reference::Window2d win, ParseConvWindow(ctx, size.first, size.second));
  BF_RETURN_IF_ERROR(CheckWindowFits(ctx, win, x.dim(2), x.dim(3)));
  ClampStrides(win, x.dim(2), x.dim(3));
  const int64_t n = x.dim(0) == kBatchDim ? dy.dim(0) : x.dim(0);
  BF_ASSIGN_OR_RETURN(int64_t groups, ParseGroups(ctx, x.dim(1), dy.dim(1)));
  const Conv2dShape s{n, x.dim(1), x.dim(2), x.dim(3), dy.dim(1), win, groups};
  BF_RETURN_IF_ERROR(CheckDy(ctx, dy, s));
  return s;
}

// Both backward primitives: descriptors with every layout left to oneDNN, hinted by the forward
// descriptor recreated from the same shape (oneDNN requires the hint, and uses it to pick
// implementations and layouts that match the forward pass).
using dnnl::memory;
memory::desc AnyDesc(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlBackwardData(const Conv2dShape& s,
                                                          const CompileContext& ctx) {
  constexpr std::string_view kOp = "conv2d backward data";
  const std::string what = KernelLabel(ctx.node, kOp);
  const ActivationLayouts layouts = Layouts(ctx, s, -1, /*dst_input=*/0);
  BF_ASSIGN_OR_RETURN(auto fwd_pd, MakeForwardPd(s, /*with_bias=*/false, what));
  BF_ASSIGN_OR_RETURN(
      auto pd, dnnl_rt::Build(what, [&] {
        using Bwd = dnnl::convolution_backward_data;
        const DnnlWindow win = ToDnnl(s.window);
        const Bwd::desc desc(dnnl::algorithm::convolution_direct, AnyDesc(SrcDims(s)),
                             AnyDesc(WeightsDims(s)), AnyDesc(DstDims(s)), win.strides, win.dilates,
                             win.padding_l, win.padding_r);
        return Bwd::primitive_desc(desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd_pd);
      }));
  const memory::desc dx = OutputDesc(ctx, pd.diff_src_desc());
  BF_ASSIGN_OR_RETURN(
      BoundPrimitive bound,
      BoundPrimitive::Make(pd,
                           {{DNNL_ARG_DIFF_DST, layouts.dst},
                            {DNNL_ARG_WEIGHTS, dnnl_rt::PlainDesc(Shape(WeightsDims(s)))}},
                           {DNNL_ARG_DIFF_SRC, dx}, what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(std::move(bound), std::string(kOp),
                                                              dnnl_rt::LayoutOf(dx, ctx.output)));
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlBackwardWeights(const Conv2dShape& s,
                                                             const CompileContext& ctx) {
  constexpr std::string_view kOp = "conv2d backward weights";
  const std::string what = KernelLabel(ctx.node, kOp);
  const ActivationLayouts layouts = Layouts(ctx, s, /*src_input=*/0, /*dst_input=*/1);
  BF_ASSIGN_OR_RETURN(auto fwd_pd, MakeForwardPd(s, /*with_bias=*/false, what));
  BF_ASSIGN_OR_RETURN(
      auto pd, dnnl_rt::Build(what, [&] {
        using Bwd = dnnl::convolution_backward_weights;
        const DnnlWindow win = ToDnnl(s.window);
        const Bwd::desc desc(dnnl::algorithm::convolution_direct, AnyDesc(SrcDims(s)),
                             AnyDesc(WeightsDims(s)), AnyDesc(DstDims(s)), win.strides, win.dilates,
                             win.padding_l, win.padding_r);
        return Bwd::primitive_desc(desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd_pd);
      }));
  BF_ASSIGN_OR_RETURN(
      BoundPrimitive bound,
      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, layouts.src}, {DNNL_ARG_DIFF_DST, layouts.dst}},
                           {DNNL_ARG_DIFF_WEIGHTS, dnnl_rt::PlainDesc(Shape(WeightsDims(s)))},
                           what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(std::move(bound), std::string(kOp)));
}

// Internal: dL/dx of conv2d. Inputs dy, w; attributes the window and input_size [H, W].
class Conv2dBackwardDataGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  bool accepts_layout(int input) const override { return input == 0; }  // dy
  std::vector<AttrSpec> attr_specs() const override { return WindowSpecs("input_size"); }
  bool compute_bound() const override { return true; }
  // The forward pass's work: 2 * |dy| * C * KH * KW (inputs dy, w).
  int64_t Flops(const FlopsContext& ctx) const override {
    return ConvFlops(FlopsContext::Elements(ctx.inputs[0]), ctx.inputs[1]);
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s, ParseBackwardData(ctx));
    return Shape{s.n, s.c, s.h, s.w};
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s,
                        ParseBackwardData(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}));
    if (ctx.dtype == DType::kFloat32) {
      return CompileDnnlBackwardData(s, ctx);
    }
    return std::unique_ptr<Kernel>(
        std::make_unique<ReferenceLoopKernel>([s](std::span<const Tensor* const> in, Tensor& dx) {
          reference::Conv2dBackwardData<double>(s, in[0]->data<double>(), in[1]->data<double>(),
                                                dx.data<double>());
        }));
  }
};

// Internal: dL/dw of conv2d. Inputs x, dy; attributes the window and kernel_size [KH, KW].
class Conv2dBackwardWeightsGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  bool accepts_layout(int input) const override { return true; }  // x and dy
  std::vector<AttrSpec> attr_specs() const override { return WindowSpecs("kernel_size"); }
  bool compute_bound() const override { return true; }
  // The forward pass's work: 2 * |dy| * C * KH * KW (inputs x, dy; output dw).
  int64_t Flops(const FlopsContext& ctx) const override {
    return ConvFlops(FlopsContext::Elements(ctx.inputs[1]), ctx.output);
  }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s, ParseBackwardWeights(ctx));
    return Shape{s.o, s.group_c(), s.window.kernel_h, s.window.kernel_w};
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    BF_ASSIGN_OR_RETURN(Conv2dShape s,
                        ParseBackwardWeights(ShapeContext{ctx.node, ctx.inputs, ctx.attrs}));
    if (ctx.dtype == DType::kFloat32) {
      return CompileDnnlBackwardWeights(s, ctx);
    }
    return std::unique_ptr<Kernel>(
        std::make_unique<ReferenceLoopKernel>([s](std::span<const Tensor* const> in, Tensor& dw) {
          reference::Conv2dBackwardWeights<double>(s, in[0]->data<double>(), in[1]->data<double>(),
                                                   dw.data<double>(),
                                                   /*db=*/nullptr);
        }));
  }
};

}  // namespace

std::unique_ptr<Gate> MakeConv2dBackwardDataGate() {
  return std::make_unique<Conv2dBackwardDataGate>();
}
std::unique_ptr<Gate> MakeConv2dBackwardWeightsGate() {
  return std::make_unique<Conv2dBackwardWeightsGate>();
}

}  // namespace backflow::conv_internal
