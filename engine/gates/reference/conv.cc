#include "engine/gates/reference/conv.h"

#include <algorithm>

namespace backflow::reference {
namespace {

// Calls f(a, e, offset) for each tap (a, e) of the window at output position (i, j) that lands
// on the h x w input plane, in window order (row by row, then column); `offset` is the tap's
// row-major position in the plane. Taps in the padding are skipped: they read zero in a
// convolution and do not count in pooling.
template <typename F>
void ForEachTap(const Window2d& win, int64_t h, int64_t w, int64_t i, int64_t j, F&& f) {
  for (int64_t a = 0; a < win.kernel_h; ++a) {
    const int64_t ih = i * win.stride_h - win.pad_top + a * win.dilation_h;
    if (ih < 0 || ih >= h) continue;
    for (int64_t e = 0; e < win.kernel_w; ++e) {
      const int64_t iw = j * win.stride_w - win.pad_left + e * win.dilation_w;
      if (iw < 0 || iw >= w) continue;
      f(a, e, ih * w + iw);
    }
  }
}

// Calls f(plane, i, j, out) for every output element (i, j) of a pooling: `plane` indexes the
// (n, c) plane, `out` is the element's row-major index in y.
template <typename F>
void ForEachPoolOutput(const Pool2dShape& s, F&& f) {
  const int64_t oh = s.out_h();
  const int64_t ow = s.out_w();
  for (int64_t plane = 0; plane < s.n * s.c; ++plane) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) f(plane, i, j, (plane * oh + i) * ow + j);
    }
  }
}

// The offset in its plane `xp` of the first maximum of the window at (i, j). Strictly greater
// replaces, so on a tie the earlier tap wins (see the header).
template <typename T>
int64_t ArgMaxInWindow(const Pool2dShape& s, const T* xp, int64_t i, int64_t j) {
  int64_t best = -1;
  ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t, int64_t, int64_t off) {
    if (best < 0 || xp[off] > xp[best]) best = off;
  });
  return best;
}

// The divisor of the average-pooling window at (i, j): its real taps, or, with
// count_include_pad, its taps inside the padded input (PyTorch's rule).
int64_t AvgPoolCount(const Pool2dShape& s, int64_t i, int64_t j) {
  const Window2d& win = s.window;
  if (s.count_include_pad) {
    const int64_t top = i * win.stride_h - win.pad_top;
    const int64_t left = j * win.stride_w - win.pad_left;
    const int64_t bottom = std::min(top + win.kernel_h, s.h + win.pad_bottom);
    const int64_t right = std::min(left + win.kernel_w, s.w + win.pad_right);
    return (bottom - top) * (right - left);
  }
  int64_t count = 0;
  ForEachTap(win, s.h, s.w, i, j, [&](int64_t, int64_t, int64_t) { ++count; });
  return count;
}

}  // namespace

template <typename T>
void Conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  const int64_t oh = s.out_h();
  const int64_t ow = s.out_w();
  const int64_t plane = s.h * s.w;
  const int64_t taps = s.window.kernel_h * s.window.kernel_w;
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t o = 0; o < s.o; ++o) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          T acc = b != nullptr ? b[o] : T(0);
          const int64_t first = o / s.group_o() * s.group_c();  // the group's first channel
          for (int64_t c = 0; c < s.group_c(); ++c) {
            const T* xp = x + (n * s.c + first + c) * plane;
            const T* wp = w + (o * s.group_c() + c) * taps;
            ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t a, int64_t e, int64_t off) {
              acc += xp[off] * wp[a * s.window.kernel_w + e];
            });
          }
          y[((n * s.o + o) * oh + i) * ow + j] = acc;
        }
      }
    }
  }
}

template <typename T>
void Conv2dBackwardData(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int64_t oh = s.out_h();
  const int64_t ow = s.out_w();
  const int64_t plane = s.h * s.w;
  const int64_t taps = s.window.kernel_h * s.window.kernel_w;
  std::fill(dx, dx + s.n * s.c * plane, T(0));
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t o = 0; o < s.o; ++o) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          const T g = dy[((n * s.o + o) * oh + i) * ow + j];
          const int64_t first = o / s.group_o() * s.group_c();
          for (int64_t c = 0; c < s.group_c(); ++c) {
            T* dxp = dx + (n * s.c + first + c) * plane;
            const T* wp = w + (o * s.group_c() + c) * taps;
            ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t a, int64_t e, int64_t off) {
              dxp[off] += g * wp[a * s.window.kernel_w + e];
            });
          }
        }
      }
    }
  }
}

template <typename T>
void Conv2dBackwardWeights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  const int64_t oh = s.out_h();
  const int64_t ow = s.out_w();
  const int64_t plane = s.h * s.w;
  const int64_t taps = s.window.kernel_h * s.window.kernel_w;
  std::fill(dw, dw + s.o * s.group_c() * taps, T(0));
  if (db != nullptr) std::fill(db, db + s.o, T(0));
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t o = 0; o < s.o; ++o) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          const T g = dy[((n * s.o + o) * oh + i) * ow + j];
          if (db != nullptr) db[o] += g;
          const int64_t first = o / s.group_o() * s.group_c();
          for (int64_t c = 0; c < s.group_c(); ++c) {
            const T* xp = x + (n * s.c + first + c) * plane;
            T* dwp = dw + (o * s.group_c() + c) * taps;
            ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t a, int64_t e, int64_t off) {
              dwp[a * s.window.kernel_w + e] += g * xp[off];
            });
          }
        }
      }
    }
  }
}

template <typename T>
void MaxPool2dForward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  const int64_t plane_size = s.h * s.w;
  ForEachPoolOutput(s, [&](int64_t plane, int64_t i, int64_t j, int64_t out) {
    const T* xp = x + plane * plane_size;
    const int64_t best = ArgMaxInWindow(s, xp, i, j);
    y[out] = xp[best];
    if (argmax != nullptr) argmax[out] = plane * plane_size + best;
  });
}

template <typename T>
void MaxPool2dBackward(const Pool2dShape& s, const T* x, const T* dy, T* dx) {
  const int64_t plane_size = s.h * s.w;
  std::fill(dx, dx + s.n * s.c * plane_size, T(0));
  ForEachPoolOutput(s, [&](int64_t plane, int64_t i, int64_t j, int64_t out) {
    const int64_t offset = plane * plane_size;
    dx[offset + ArgMaxInWindow(s, x + offset, i, j)] += dy[out];
  });
}

template <typename T>
void AvgPool2dForward(const Pool2dShape& s, const T* x, T* y) {
  const int64_t plane_size = s.h * s.w;
  ForEachPoolOutput(s, [&](int64_t plane, int64_t i, int64_t j, int64_t out) {
    const T* xp = x + plane * plane_size;
    T sum = T(0);
    ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t, int64_t, int64_t off) { sum += xp[off]; });
    y[out] = sum / static_cast<T>(AvgPoolCount(s, i, j));
  });
}

template <typename T>
void AvgPool2dBackward(const Pool2dShape& s, const T* dy, T* dx) {
  const int64_t plane_size = s.h * s.w;
  std::fill(dx, dx + s.n * s.c * plane_size, T(0));
  ForEachPoolOutput(s, [&](int64_t plane, int64_t i, int64_t j, int64_t out) {
    T* dxp = dx + plane * plane_size;
    const T share = dy[out] / static_cast<T>(AvgPoolCount(s, i, j));
    ForEachTap(s.window, s.h, s.w, i, j, [&](int64_t, int64_t, int64_t off) { dxp[off] += share; });
  });
}

#define BF_INSTANTIATE_REFERENCE_CONV(T)                                                  \
  template void Conv2dForward<T>(const Conv2dShape&, const T*, const T*, const T*, T*);   \
  template void Conv2dBackwardData<T>(const Conv2dShape&, const T*, const T*, T*);        \
  template void Conv2dBackwardWeights<T>(const Conv2dShape&, const T*, const T*, T*, T*); \
  template void MaxPool2dForward<T>(const Pool2dShape&, const T*, T*, int64_t*);          \
  template void MaxPool2dBackward<T>(const Pool2dShape&, const T*, const T*, T*);         \
  template void AvgPool2dForward<T>(const Pool2dShape&, const T*, T*);                    \
  template void AvgPool2dBackward<T>(const Pool2dShape&, const T*, T*);

BF_INSTANTIATE_REFERENCE_CONV(float)
BF_INSTANTIATE_REFERENCE_CONV(double)

#undef BF_INSTANTIATE_REFERENCE_CONV

}  // namespace backflow::reference
