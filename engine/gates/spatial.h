// What the 2-D spatial gate families (engine/gates/conv.h, engine/gates/pool.h) share: reading
// their window attributes, checking NCHW shapes against them with errors that name the node,
// and the adapter that runs a reference function as a float64 kernel.
//
// Window attributes (all ints):
//   stride    [sh, sw], each > 0
//   padding   [ph, pw] (both sides alike) or [top, left, bottom, right], each >= 0
//   dilation  [dh, dw], each >= 1; 1 means adjacent taps (conv2d only)
//   kernel    [kh, kw], each > 0 (pooling only; conv2d takes it from the weights)
#ifndef BACKFLOW_ENGINE_GATES_SPATIAL_H_
#define BACKFLOW_ENGINE_GATES_SPATIAL_H_

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/gates/reference/conv.h"
#include "engine/ir/attributes.h"
#include "engine/ir/gate.h"

namespace backflow {

// stride (default [1, 1]), padding (default 0) and dilation (default [1, 1]) around a kernel of
// kernel_h x kernel_w.
StatusOr<reference::Window2d> ParseConvWindow(const ShapeContext& ctx, int64_t kernel_h,
                                              int64_t kernel_w);

// kernel (required), stride (default: the kernel, so windows tile the input) and padding
// (default 0, and smaller than the kernel on each side, so no window holds only padding).
StatusOr<reference::Window2d> ParsePoolWindow(const ShapeContext& ctx);

// The window as the attributes ParseConvWindow / ParsePoolWindow read back, with padding in its
// four-value form: how a gate hands its window to its backward gates.
Attributes ConvWindowAttributes(const reference::Window2d& win);
Attributes PoolWindowAttributes(const reference::Window2d& win);

// Checks that `shape` is [N, C, H, W] with N > 0 or the open batch dimension and C, H, W > 0.
// `what` names the operand in the error ("x", "dy").
Status CheckNchw(const ShapeContext& ctx, const Shape& shape, std::string_view what);

// Checks that `shape` has rank `rank` and only positive dimensions.
Status CheckFixedShape(const ShapeContext& ctx, const Shape& shape, int rank,
                       std::string_view what);

// Checks that the (dilated) window fits the padded h x w input, which is exactly when the output
// has at least one element.
Status CheckWindowFits(const ShapeContext& ctx, const reference::Window2d& win, int64_t h,
                       int64_t w);

// Lowers each stride past the padded input to the padded input's size (for a window that
// passed CheckWindowFits): either way the output has one window per axis, at the start, with
// ceil_mode or without, and oneDNN refuses strides that do not fit its int.
void ClampStrides(reference::Window2d& win, int64_t h, int64_t w);

// Reads attribute `name` as exactly two positive ints (an [h, w] size).
StatusOr<std::pair<int64_t, int64_t>> ParseSize2(const ShapeContext& ctx, std::string_view name);

// True if two batch sizes may be the same run's (equal, or either open).
inline bool SameBatch(int64_t a, int64_t b) { return a == b || a == kBatchDim || b == kBatchDim; }

// "node 'NAME' (WHAT)": how a spatial kernel names itself in errors.
std::string KernelLabel(std::string_view node, std::string_view what);

// Runs a reference function (engine/gates/reference/conv.h) as a kernel on the calling thread:
// the float64 kernels of the spatial gates.
class ReferenceLoopKernel : public Kernel {
 public:
  using Fn = std::function<void(std::span<const Tensor* const> inputs, Tensor& output)>;
  explicit ReferenceLoopKernel(Fn fn) : fn_(std::move(fn)) {}
  Status Run(KernelContext& ctx) const override {
    fn_(ctx.inputs, *ctx.output);
    return Status::Ok();
  }

 private:
  Fn fn_;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_SPATIAL_H_
