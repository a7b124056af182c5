// Shared between conv.cc (the conv2d gate) and conv_backward.cc (its internal backward gates).
// Not a public header: other gates use engine/gates/conv.h.
#ifndef BACKFLOW_ENGINE_GATES_CONV_INTERNAL_H_
#define BACKFLOW_ENGINE_GATES_CONV_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string_view>

#include "engine/core/status.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/reference/conv.h"
#include "engine/ir/gate.h"

namespace backflow::conv_internal {

// Plain NCHW layouts for x / dx and y / dy of the convolution `s`.
// The activation layouts of a conv2d kernel: x's from input `src_input`, dy's from input
// `dst_input` (-1: plain).
ActivationLayouts Layouts(const CompileContext& ctx, const reference::Conv2dShape& s, int src_input,
                          int dst_input);

// The groups attribute (default 1), checked to divide the `c` input and `o` output channels.
StatusOr<int64_t> ParseGroups(const ShapeContext& ctx, int64_t c, int64_t o);

dnnl::memory::dims SrcDims(const reference::Conv2dShape& s);
dnnl::memory::dims WeightsDims(const reference::Conv2dShape& s);
dnnl::memory::dims DstDims(const reference::Conv2dShape& s);

// The forward_training primitive descriptor for `s`, with every layout left to oneDNN
// (format_tag::any) and PrimitiveAttributes(). The conv2d kernel runs it; the backward kernels
// recreate it from the same shape as the hint their own descriptors require.
StatusOr<dnnl::convolution_forward::primitive_desc> MakeForwardPd(const reference::Conv2dShape& s,
                                                                  bool with_bias,
                                                                  std::string_view what);

// The window as oneDNN wants it: strides, dilates (ours minus one: oneDNN counts extra gaps),
// and the low and high padding.
struct DnnlWindow {
  dnnl::memory::dims strides;
  dnnl::memory::dims dilates;
  dnnl::memory::dims padding_l;
  dnnl::memory::dims padding_r;
};
DnnlWindow ToDnnl(const reference::Window2d& win);

// The internal gates conv2d's Backward emits (engine/gates/conv_backward.cc).
// 2 * out_elements * C * KH * KW for weights `w` [O, C, KH, KW]: the arithmetic of a
// convolution producing `out_elements` outputs, and of each of its two backward passes.
int64_t ConvFlops(int64_t out_elements, const Shape& w);

std::unique_ptr<Gate> MakeConv2dBackwardDataGate();
std::unique_ptr<Gate> MakeConv2dBackwardWeightsGate();
std::unique_ptr<Gate> MakeConv2dBackwardBiasGate();

}  // namespace backflow::conv_internal

#endif  // BACKFLOW_ENGINE_GATES_CONV_INTERNAL_H_
