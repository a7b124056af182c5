// Shared between pool.cc (the pooling gates) and pool_backward.cc (their internal gradient
// gates). Not a public header: other gates use engine/gates/pool.h.
#ifndef BACKFLOW_ENGINE_GATES_POOL_INTERNAL_H_
#define BACKFLOW_ENGINE_GATES_POOL_INTERNAL_H_

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string_view>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/reference/conv.h"
#include "engine/ir/gate.h"

namespace backflow::pool_internal {

enum class PoolKind { kMax, kAvg };

// Checks x [N, C, H, W] and the window attributes (with average pooling's count_include_pad,
// 0 or 1, default 1); returns the pooling's shape (n may be the open batch dimension).
StatusOr<reference::Pool2dShape> ParsePool2d(const ShapeContext& ctx, const Shape& x,
                                             PoolKind kind);

// oneDNN's bottom and right padding (with ceil_mode, as far as the last window reaches) and
// its dilation (counted from 0).
dnnl::memory::dims PadEnd(const reference::Pool2dShape& s);
dnnl::memory::dims Dilation(const reference::Pool2dShape& s);

// True where oneDNN's average pooling would divide otherwise than PyTorch: with
// count_include_pad, a ceil_mode window reaching past the padded input. PyTorch counts only the
// taps inside the padded input; oneDNN, given the extra bottom/right padding that window needs,
// counts all KH * KW (pooling_avg_include_padding knows one kind of padding). Without
// count_include_pad both count the real taps only, so only this case leaves oneDNN.
bool DnnlAvgDivisorDiffers(const reference::Pool2dShape& s);

// The float32 average pooling (forward: input x) or its gradient (input dy) on the reference
// loops, for the case above. An input in a oneDNN layout is reordered to plain first; the
// output is plain (pool_reference.cc).
StatusOr<std::unique_ptr<Kernel>> CompileFloatAvgReference(const reference::Pool2dShape& s,
                                                           bool backward,
                                                           const CompileContext& ctx);

// The oneDNN algorithm of a pooling: max, or average with or without the padding counted.
dnnl::algorithm Algorithm(const reference::Pool2dShape& s, PoolKind kind);

Shape InputShape(const reference::Pool2dShape& s);   // [N, C, H, W]
Shape OutputShape(const reference::Pool2dShape& s);  // [N, C, OH, OW]

// The pooling descriptor reading x laid out as `layouts.src` (oneDNN pooling takes its source
// layout as given) and writing a destination layout oneDNN chooses: forward_training (max
// pooling then has a workspace, for its backward), or forward_inference, which has none and runs
// several times faster (Note [Max pooling without its workspace] in pool.cc).
StatusOr<dnnl::pooling_v2_forward::primitive_desc> MakeForwardPd(
    const reference::Pool2dShape& s, PoolKind kind, const ActivationLayouts& layouts,
    std::string_view what, dnnl::prop_kind prop = dnnl::prop_kind::forward_training);

// The forward primitive of `pd` bound to x and y.
StatusOr<BoundPrimitive> BindForward(const dnnl::pooling_v2_forward::primitive_desc& pd,
                                     const ActivationLayouts& layouts, std::string_view what);

// The internal gates max_pool2d_grad and avg_pool2d_grad (engine/gates/pool_backward.cc).
std::unique_ptr<Gate> MakePoolGradGate(PoolKind kind);

}  // namespace backflow::pool_internal

#endif  // BACKFLOW_ENGINE_GATES_POOL_INTERNAL_H_
