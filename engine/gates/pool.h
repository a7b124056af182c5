// 2-D max and average pooling over each channel of x [N, C, H, W] (N may be the open batch
// dimension); output y [N, C, OH, OW].
//
//   max_pool2d  y[n,c,i,j] = max of the window's taps
//               dL/dx: each dy element goes, whole, to the arg-max of its window (summed where
//               windows overlap). Ties: the first maximum in window order (row by row, then
//               column) wins, as in oneDNN; inputs are kept away from ties in gradient checks.
//   avg_pool2d  y[n,c,i,j] = sum of the window's real taps / count
//               dL/dx: dy / count added to each real tap of the window.
//
//   global_avg_pool2d  y[n,c,0,0] = mean of the whole H x W plane: avg_pool2d with kernel
//               [H, W] (no attributes); dL/dx = dy / (H * W) everywhere, through
//               avg_pool2d_grad.
//
// Max pooling never picks a padded tap. Average pooling's count is KH * KW, padding counted,
// with count_include_pad 1 (the default, as PyTorch; oneDNN's pooling_avg_include_padding), or
// the number of real taps with count_include_pad 0 (pooling_avg_exclude_padding).
//
// Attributes (see engine/gates/spatial.h): kernel [KH, KW] (required), stride (default: the
// kernel), padding ([ph, pw] or [top, left, bottom, right], default 0; each side smaller than
// the kernel), ceil_mode (0 or 1, default 0), for avg_pool2d count_include_pad (0 or 1, default
// 1), for max_pool2d dilation ([dh, dw], default [1, 1]: adjacent taps, as PyTorch; oneDNN is
// given d - 1). OH = (H + pt + pb - (KH - 1) * dh - 1) / sh + 1, rounded down, or with
// ceil_mode up and then one less if that last window would start at or past H + pt (PyTorch's
// rule); likewise OW. A ceil_mode window may reach past the bottom/right padding: oneDNN is
// given that much more padding, which max pooling never picks.
//
// avg_pool2d ceil_mode: with count_include_pad, PyTorch's divisor stops at the padded input's
// edge, while oneDNN's include-padding divisor is always KH * KW; so float32 runs those windows
// on the reference loops (pool_internal.h, DnnlAvgDivisorDiffers), the rest on oneDNN.
//
// Backward, as graph nodes:
//   max_pool2d_grad  (internal) inputs x, dy; the window attributes (with dilation and
//                    ceil_mode); output dx. Reads the
//                    forward node's saved state: in float32 the oneDNN workspace that recorded
//                    each arg-max; in float64 the reference recomputes the arg-max from x.
//   avg_pool2d_grad  (internal) input dy; the window attributes plus input_size [H, W] and
//                    count_include_pad.
//
// Kernels: float32 runs oneDNN pooling primitives; float64 the loops of
// engine/gates/reference/conv.h.
#ifndef BACKFLOW_ENGINE_GATES_POOL_H_
#define BACKFLOW_ENGINE_GATES_POOL_H_

namespace backflow {

class GateRegistry;
void RegisterPoolGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_POOL_H_
