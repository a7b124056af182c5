// 2-D convolution (cross-correlation, as in every deep-learning framework).
//
//   conv2d  inputs x [N, C, H, W], w [O, C, KH, KW], optional b [O]; output y [N, O, OH, OW]
//     y[n,o,i,j] = b[o] + sum_{c,a,e} x[n, c, i*sh - pt + a*dh, j*sw - pl + e*dw] * w[o,c,a,e]
//     (taps in the padding read zero)
//     dL/dx = dL/dy, dilated by the stride and padded, convolved with w rotated 180 degrees
//             (channels swapped): every x element collects the dy of each output it fed, times
//             the weight that carried it;
//     dL/dw = the correlation of x with dL/dy:
//             dL/dw[o,c,a,e] = sum_{n,i,j} dy[n,o,i,j] * x[n, c, i*sh-pt + a*dh, j*sw-pl + e*dw]
//     dL/db = dL/dy summed over n, i and j.
//   N may be the open batch dimension.
//
// Attributes (see engine/gates/spatial.h): stride (default [1, 1]), padding ([ph, pw] or
// [top, left, bottom, right], default 0), dilation (default [1, 1], 1 = adjacent taps), groups
// (default 1; dividing C and O, w is then [O, C / groups, KH, KW] and output channel o reads
// only the C / groups input channels of its group o / (O / groups); groups = C is depthwise;
// oneDNN takes w as 5-D goihw, the same bytes).
// OH = (H + pt + pb - ((KH - 1) * dh + 1)) / sh + 1, rounded down, and likewise OW. The shape
// rule rejects, naming the node, groups that do not divide C and O, a channel mismatch between
// x and w, a bias that is not [O], and
// a kernel larger than the padded input.
//
// Backward, as graph nodes:
//   conv2d_backward_data     (internal) inputs dy, w; attributes the window plus
//                            input_size [H, W] and groups; output dx [N, C, H, W]
//   conv2d_backward_weights  (internal) inputs x, dy; attributes the window plus
//                            kernel_size [KH, KW] and groups; output dw [O, C / groups, KH, KW]
//   sum (axes [0, 2, 3])     dL/db
//
// Kernels: float32 runs oneDNN primitives (forward_training, backward data, backward weights;
// layouts chosen by oneDNN, reordered from and to our plain tensors where they differ);
// float64 runs the reference loops of engine/gates/reference/conv.h.
#ifndef BACKFLOW_ENGINE_GATES_CONV_H_
#define BACKFLOW_ENGINE_GATES_CONV_H_

namespace backflow {

class GateRegistry;
void RegisterConvGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_CONV_H_
