// Reference 2-D convolution and pooling: the oracle.
//
// Plain loops over plain row-major tensors (NCHW activations, OIHW weights), written to be read
// and trusted rather than to be fast. They are the float64 kernels of the conv2d and pooling
// gates (oneDNN on Debian computes float32 only) and what the tests hold the oneDNN float32
// kernels against. Everything accumulates in T, in a fixed loop order, so results are
// reproducible bit for bit.
//
// Conventions, shared with the gates (engine/gates/conv.h, engine/gates/pool.h):
//   - "convolution" is cross-correlation, as in every deep-learning framework:
//       y[n,o,i,j] = b[o] + sum_{c,a,e} x[n, c, i*sh - pt + a*dh, j*sw - pl + e*dw] * w[o,c,a,e]
//     with taps that fall into the padding reading zero;
//   - a dilation of 1 means adjacent taps (oneDNN counts the same as 0);
//   - output size = (in + pad_before + pad_after - ((k - 1) * d + 1)) / stride + 1, rounded down
//     (pooling's ceil_mode: up, see Window2d);
//   - pooling windows skip padded taps: max pooling never picks one; average pooling sums the
//     real taps and divides by their number (count_include_pad false: oneDNN's
//     pooling_avg_exclude_padding) or by the taps inside the padded input (count_include_pad
//     true, as PyTorch: oneDNN's pooling_avg_include_padding). Callers keep every padding
//     smaller than its kernel, so every window holds at least one real tap;
//   - max pooling ties: the first maximum in window order (row by row, then column) wins and
//     receives the whole gradient, as in oneDNN (which keeps a running max updated only on a
//     strictly greater value).
#ifndef BACKFLOW_ENGINE_GATES_REFERENCE_CONV_H_
#define BACKFLOW_ENGINE_GATES_REFERENCE_CONV_H_

#include <cstdint>

namespace backflow::reference {

// A window sliding over the two spatial dimensions.
struct Window2d {
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_top = 0;
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  int64_t dilation_h = 1;  // 1: adjacent taps
  int64_t dilation_w = 1;
  // Pooling only: output sizes round up, as PyTorch's ceil_mode, keeping each last window's
  // start inside the input or its top/left padding. A last window may then reach past the
  // bottom/right padding; taps there read nothing.
  bool ceil_mode = false;

  // The extent a kernel covers once dilated.
  int64_t span_h() const { return (kernel_h - 1) * dilation_h + 1; }
  int64_t span_w() const { return (kernel_w - 1) * dilation_w + 1; }
  // Output size for an input of `in_h` x `in_w`; meaningful only when the span fits the padded
  // input (the gates' shape rules check that first).
  int64_t out_h(int64_t in_h) const {
    return OutSize(in_h, pad_top, pad_bottom, span_h(), stride_h, ceil_mode);
  }
  int64_t out_w(int64_t in_w) const {
    return OutSize(in_w, pad_left, pad_right, span_w(), stride_w, ceil_mode);
  }
  // Written so that no step overflows where in + before + after and span fit in int64 (the
  // shape rules check that), whatever the stride: a huge stride leaves one window.
  static int64_t OutSize(int64_t in, int64_t before, int64_t after, int64_t span, int64_t stride,
                         bool ceil) {
    const int64_t room = in + before + after - span;
    int64_t out = room / stride + (ceil && room % stride != 0 ? 1 : 0) + 1;
    // PyTorch's rule: the last window must start before in + before, that is (out - 1) * stride
    // < in + before, which for in + before >= 1 is out - 1 <= (in + before - 1) / stride.
    if (ceil && out - 1 > (in + before - 1) / stride) --out;
    return out;
  }
};

// x: [n, c, h, w]; weights: [o, c / groups, window.kernel_h, window.kernel_w];
// y: [n, o, out_h, out_w]. With groups > 1 the channels split into `groups` equal runs: output
// channel o reads only input channels of its group, o / (o_total / groups).
struct Conv2dShape {
  int64_t n = 1;
  int64_t c = 1;
  int64_t h = 1;
  int64_t w = 1;
  int64_t o = 1;
  Window2d window;
  int64_t groups = 1;  // divides c and o
  int64_t group_c() const { return c / groups; }
  int64_t group_o() const { return o / groups; }
  int64_t out_h() const { return window.out_h(h); }
  int64_t out_w() const { return window.out_w(w); }
};

// x: [n, c, h, w]; y: [n, c, out_h, out_w].
struct Pool2dShape {
  int64_t n = 1;
  int64_t c = 1;
  int64_t h = 1;
  int64_t w = 1;
  Window2d window;
  // Average pooling only: whether padded taps count in the divisor.
  bool count_include_pad = false;
  int64_t out_h() const { return window.out_h(h); }
  int64_t out_w() const { return window.out_w(w); }
};

// y = conv(x, w) + b. `b` may be null (no bias).
template <typename T>
void Conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);

// dx = dL/dx given dy = dL/dy: each dy element scattered back through the taps that made it.
template <typename T>
void Conv2dBackwardData(const Conv2dShape& s, const T* dy, const T* w, T* dx);

// dw = dL/dw and, unless null, db = dL/db (dy summed over n and the spatial dimensions).
template <typename T>
void Conv2dBackwardWeights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db);

// y = the maximum of each window. If `argmax` is not null it receives, per output element, the
// row-major index into x of the winning tap.
template <typename T>
void MaxPool2dForward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax);

// dx: each dy element routed, whole, to the arg-max of its window (recomputed from x).
template <typename T>
void MaxPool2dBackward(const Pool2dShape& s, const T* x, const T* dy, T* dx);

// y = the sum of the real taps of each window over its count (see count_include_pad).
template <typename T>
void AvgPool2dForward(const Pool2dShape& s, const T* x, T* y);

// dx: each dy element, divided by its window's count, added to each real tap of the window.
template <typename T>
void AvgPool2dBackward(const Pool2dShape& s, const T* dy, T* dx);

}  // namespace backflow::reference

#endif  // BACKFLOW_ENGINE_GATES_REFERENCE_CONV_H_
