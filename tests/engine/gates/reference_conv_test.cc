#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/gates/reference/conv.h"

namespace backflow::reference {
namespace {

using ::testing::ElementsAre;
using ::testing::Pointwise;
using Values = std::vector<double>;

Values Random(int64_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  Values v(static_cast<size_t>(n));
  for (double& x : v) x = dist(rng);
  return v;
}

Window2d Win(int64_t kh, int64_t kw) {
  Window2d w;
  w.kernel_h = kh;
  w.kernel_w = kw;
  return w;
}

// x = 1..9 as one 3x3 plane.
const Values kNine = {1, 2, 3, 4, 5, 6, 7, 8, 9};

TEST(ReferenceConvTest, ForwardIsCrossCorrelationWithBias) {
  // w = [[1, 0], [0, -1]]: y[i, j] = x[i, j] - x[i+1, j+1] = -4 everywhere, plus the bias.
  const Conv2dShape s{1, 1, 3, 3, 1, Win(2, 2)};
  const Values w = {1, 0, 0, -1};
  const Values b = {0.5};
  Values y(4);
  Conv2dForward(s, kNine.data(), w.data(), b.data(), y.data());
  EXPECT_THAT(y, ElementsAre(-3.5, -3.5, -3.5, -3.5));
}

TEST(ReferenceConvTest, ForwardStrideAndPaddingSkipPaddedTaps) {
  // A 2x2 all-ones kernel, stride 2, padding 1: window sums over the real taps only.
  Conv2dShape s{1, 1, 3, 3, 1, Win(2, 2)};
  s.window.stride_h = s.window.stride_w = 2;
  s.window.pad_top = s.window.pad_left = s.window.pad_bottom = s.window.pad_right = 1;
  ASSERT_EQ(s.out_h(), 2);
  ASSERT_EQ(s.out_w(), 2);
  const Values w = {1, 1, 1, 1};
  Values y(4);
  Conv2dForward(s, kNine.data(), w.data(), static_cast<const double*>(nullptr), y.data());
  EXPECT_THAT(y, ElementsAre(1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9));
}

TEST(ReferenceConvTest, ForwardDilationSpreadsTheTaps) {
  // Dilation 2 makes a 2x2 kernel span 3x3: it reads the four corners.
  Conv2dShape s{1, 1, 3, 3, 1, Win(2, 2)};
  s.window.dilation_h = s.window.dilation_w = 2;
  ASSERT_EQ(s.out_h(), 1);
  const Values w = {1, 10, 100, 1000};
  Values y(1);
  Conv2dForward(s, kNine.data(), w.data(), static_cast<const double*>(nullptr), y.data());
  EXPECT_THAT(y, ElementsAre(1 + 30 + 700 + 9000));
}

TEST(ReferenceConvTest, ForwardSumsOverInputChannels) {
  // x has channels [1, 2, 3, 4] and [10, 20, 30, 40]; w = [2, -1] as 1x1 kernels.
  const Conv2dShape s{1, 2, 2, 2, 1, Win(1, 1)};
  const Values x = {1, 2, 3, 4, 10, 20, 30, 40};
  const Values w = {2, -1};
  Values y(4);
  Conv2dForward(s, x.data(), w.data(), static_cast<const double*>(nullptr), y.data());
  EXPECT_THAT(y, ElementsAre(-8, -16, -24, -32));
}

TEST(ReferenceConvTest, OutputSizeRoundsDown) {
  Window2d w = Win(3, 2);
  w.stride_h = 2;
  w.stride_w = 3;
  w.pad_top = 1;
  w.dilation_w = 2;
  EXPECT_EQ(w.out_h(7), (7 + 1 - 3) / 2 + 1);  // 3
  EXPECT_EQ(w.out_w(8), (8 - 3) / 3 + 1);      // span 3: 2
}

// One plane of doubles, h x w, row-major; reads outside it are zero.
struct Plane {
  int64_t h = 0;
  int64_t w = 0;
  Values v;
  Plane(int64_t h_, int64_t w_) : h(h_), w(w_), v(static_cast<size_t>(h_ * w_), 0.0) {}
  double at(int64_t i, int64_t j) const {
    return i < 0 || j < 0 || i >= h || j >= w ? 0.0 : v[static_cast<size_t>(i * w + j)];
  }
  double& ref(int64_t i, int64_t j) { return v[static_cast<size_t>(i * w + j)]; }
};

Plane PlaneOf(const Values& all, int64_t index, int64_t h, int64_t w) {
  Plane p(h, w);
  for (int64_t k = 0; k < h * w; ++k)
    p.v[static_cast<size_t>(k)] = all[static_cast<size_t>(index * h * w + k)];
  return p;
}

// out[a, e] = sum_{i, j} img[a*step + i*gap, e*step + j*gap] * ker[i, j]: the seed's
// cross-correlation, with `gap` spacing the kernel's taps and `step` the output positions.
Plane Correlate(const Plane& img, const Plane& ker, int64_t step, int64_t gap, int64_t out_h,
                int64_t out_w) {
  Plane out(out_h, out_w);
  for (int64_t a = 0; a < out_h; ++a) {
    for (int64_t e = 0; e < out_w; ++e) {
      for (int64_t i = 0; i < ker.h; ++i) {
        for (int64_t j = 0; j < ker.w; ++j) {
          out.ref(a, e) += img.at(a * step + i * gap, e * step + j * gap) * ker.at(i, j);
        }
      }
    }
  }
  return out;
}

// x's plane with the convolution's padding around it.
Plane Padded(const Plane& x, const Window2d& win) {
  Plane p(x.h + win.pad_top + win.pad_bottom, x.w + win.pad_left + win.pad_right);
  for (int64_t i = 0; i < x.h; ++i) {
    for (int64_t j = 0; j < x.w; ++j) p.ref(i + win.pad_top, j + win.pad_left) = x.at(i, j);
  }
  return p;
}

// dy's plane with stride-1 zeros between its elements, padded so that a correlation with the
// (dilated) rotated kernel yields an h x w plane: the "dL/dY (padded)" of the seed.
Plane DilatedPaddedDy(const Plane& dy, const Window2d& win, int64_t h, int64_t w) {
  const int64_t top = win.span_h() - 1 - win.pad_top;
  const int64_t left = win.span_w() - 1 - win.pad_left;
  Plane p(h + win.span_h() - 1, w + win.span_w() - 1);
  for (int64_t i = 0; i < dy.h; ++i) {
    for (int64_t j = 0; j < dy.w; ++j) {
      const int64_t r = top + i * win.stride_h;
      const int64_t c = left + j * win.stride_w;
      if (r >= 0 && c >= 0 && r < p.h && c < p.w) p.ref(r, c) = dy.at(i, j);
    }
  }
  return p;
}

Plane Rotated180(const Plane& k) {
  Plane r(k.h, k.w);
  for (int64_t i = 0; i < k.h; ++i) {
    for (int64_t j = 0; j < k.w; ++j) r.ref(i, j) = k.at(k.h - 1 - i, k.w - 1 - j);
  }
  return r;
}

struct SeedCase {
  std::string name;
  Conv2dShape s;
};
void PrintTo(const SeedCase& c, std::ostream* os) { *os << c.name; }

class SeedClaimsTest : public ::testing::TestWithParam<SeedCase> {};

// Seed 000: dL/dW[a', b'] = sum_{i,j} dL/dY[i, j] X[i + a', j + b'], "a correlation of X with
// dL/dY", summed here over the batch; with stride and dilation the taps spread accordingly.
TEST_P(SeedClaimsTest, WeightGradientIsCorrelationOfXWithDy) {
  const Conv2dShape& s = GetParam().s;
  const int64_t kh = s.window.kernel_h;
  const int64_t kw = s.window.kernel_w;
  const Values x = Random(s.n * s.c * s.h * s.w, 1);
  const Values dy = Random(s.n * s.o * s.out_h() * s.out_w(), 2);
  Values dw(static_cast<size_t>(s.o * s.c * kh * kw));
  Conv2dBackwardWeights(s, x.data(), dy.data(), dw.data(), static_cast<double*>(nullptr));
  for (int64_t o = 0; o < s.o; ++o) {
    for (int64_t c = 0; c < s.c; ++c) {
      Plane want(kh, kw);
      for (int64_t n = 0; n < s.n; ++n) {
        const Plane xp = Padded(PlaneOf(x, n * s.c + c, s.h, s.w), s.window);
        const Plane dyp = PlaneOf(dy, n * s.o + o, s.out_h(), s.out_w());
        const Plane part = Correlate(xp, dyp, s.window.dilation_h, s.window.stride_h, kh, kw);
        for (size_t k = 0; k < want.v.size(); ++k) want.v[k] += part.v[k];
      }
      const Plane got = PlaneOf(dw, o * s.c + c, kh, kw);
      EXPECT_THAT(got.v, Pointwise(::testing::DoubleNear(1e-12), want.v))
          << "o=" << o << " c=" << c;
    }
  }
}

// Seed 000: dL/dX = dL/dY (padded) convolved with W rotated 180 degrees, summed over the output
// channels; with a stride, dL/dY first gets stride-1 zeros between its elements.
TEST_P(SeedClaimsTest, DataGradientIsPaddedDyCorrelatedWithRotatedW) {
  const Conv2dShape& s = GetParam().s;
  const int64_t kh = s.window.kernel_h;
  const int64_t kw = s.window.kernel_w;
  const Values w = Random(s.o * s.c * kh * kw, 3);
  const Values dy = Random(s.n * s.o * s.out_h() * s.out_w(), 4);
  Values dx(static_cast<size_t>(s.n * s.c * s.h * s.w));
  Conv2dBackwardData(s, dy.data(), w.data(), dx.data());
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t c = 0; c < s.c; ++c) {
      Plane want(s.h, s.w);
      for (int64_t o = 0; o < s.o; ++o) {
        const Plane dyp =
            DilatedPaddedDy(PlaneOf(dy, n * s.o + o, s.out_h(), s.out_w()), s.window, s.h, s.w);
        const Plane rot = Rotated180(PlaneOf(w, o * s.c + c, kh, kw));
        const Plane part = Correlate(dyp, rot, 1, s.window.dilation_h, s.h, s.w);
        for (size_t k = 0; k < want.v.size(); ++k) want.v[k] += part.v[k];
      }
      const Plane got = PlaneOf(dx, n * s.c + c, s.h, s.w);
      EXPECT_THAT(got.v, Pointwise(::testing::DoubleNear(1e-12), want.v))
          << "n=" << n << " c=" << c;
    }
  }
}

Conv2dShape Geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, Window2d win) {
  return Conv2dShape{n, c, h, w, o, win};
}

Window2d Strided(Window2d w, int64_t s) {
  w.stride_h = w.stride_w = s;
  return w;
}
Window2d PaddedBy(Window2d w, int64_t t, int64_t l, int64_t b, int64_t r) {
  w.pad_top = t;
  w.pad_left = l;
  w.pad_bottom = b;
  w.pad_right = r;
  return w;
}
Window2d Dilated(Window2d w, int64_t d) {
  w.dilation_h = w.dilation_w = d;
  return w;
}

// The Correlate helper spaces taps equally in both dimensions, so strides and dilations here are
// square; kernels and padding need not be.
INSTANTIATE_TEST_SUITE_P(
    Geometries, SeedClaimsTest,
    ::testing::Values(
        SeedCase{"seed_single_filter", Geometry(1, 1, 5, 5, 1, Win(3, 3))},
        SeedCase{"channels_3_to_5", Geometry(2, 3, 6, 5, 5, Win(3, 3))},
        SeedCase{"non_square_3x2", Geometry(1, 2, 6, 7, 3, Win(3, 2))},
        SeedCase{"stride_2", Geometry(2, 3, 7, 6, 2, Strided(Win(3, 3), 2))},
        SeedCase{"stride_2_uneven", Geometry(1, 2, 8, 8, 2, Strided(Win(3, 3), 2))},
        SeedCase{"padding_symmetric", Geometry(1, 3, 5, 5, 2, PaddedBy(Win(3, 3), 1, 1, 1, 1))},
        SeedCase{"padding_asymmetric", Geometry(2, 2, 5, 6, 3, PaddedBy(Win(3, 2), 2, 0, 1, 1))},
        SeedCase{"dilation_2", Geometry(1, 2, 7, 7, 2, Dilated(Win(3, 3), 2))},
        SeedCase{"all_together",
                 Geometry(2, 3, 9, 8, 4, Dilated(Strided(PaddedBy(Win(3, 2), 1, 2, 2, 0), 2), 2))}),
    [](const ::testing::TestParamInfo<SeedCase>& info) { return info.param.name; });

TEST(ReferencePoolTest, MaxPoolRoutesGradientToTheArgMaxOfEachWindow) {
  // Windows 2x2, stride 2; maxima 4, 5, 6, 7 at flat positions 4, 7, 12, 10.
  Pool2dShape tiled{1, 1, 4, 4, Win(2, 2)};
  tiled.window.stride_h = tiled.window.stride_w = 2;
  const Values x = {1, 3, 2, 0,  //
                    4, 2, 1, 5,  //
                    0, 1, 7, 2,  //
                    6, 2, 3, 3};
  Values y(4);
  std::vector<int64_t> argmax(4);
  MaxPool2dForward(tiled, x.data(), y.data(), argmax.data());
  EXPECT_THAT(y, ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(argmax, ElementsAre(4, 7, 12, 10));
  const Values dy = {1, 2, 3, 4};
  Values dx(16);
  MaxPool2dBackward(tiled, x.data(), dy.data(), dx.data());
  EXPECT_THAT(dx, ElementsAre(0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 4, 0, 3, 0, 0, 0));
}

TEST(ReferencePoolTest, MaxPoolSumsGradientsWhereWindowsShareTheirMax) {
  // Four overlapping 2x2 windows (stride 1) all have their maximum, 9, in the centre.
  const Pool2dShape s{1, 1, 3, 3, Win(2, 2)};
  const Values x = {1, 2, 3, 4, 9, 5, 6, 7, 8};
  const Values dy = {1, 2, 3, 4};
  Values dx(9);
  MaxPool2dBackward(s, x.data(), dy.data(), dx.data());
  EXPECT_THAT(dx, ElementsAre(0, 0, 0, 0, 10, 0, 0, 0, 0));
}

TEST(ReferencePoolTest, MaxPoolTiesGoToTheFirstMaximumInWindowOrder) {
  Pool2dShape s{1, 1, 2, 4, Win(2, 2)};
  s.window.stride_h = s.window.stride_w = 2;
  // Left window all equal: the top-left tap wins. Right window ties between its top-right and
  // bottom-left taps: the top row comes first.
  const Values x = {1, 1, 0, 5,  //
                    1, 1, 5, 2};
  const Values dy = {3, 7};
  Values dx(8);
  MaxPool2dBackward(s, x.data(), dy.data(), dx.data());
  EXPECT_THAT(dx, ElementsAre(3, 0, 0, 7, 0, 0, 0, 0));
}

TEST(ReferencePoolTest, MaxPoolNeverPicksPadding) {
  // All inputs negative: a padded zero would win if padding took part.
  Pool2dShape s{1, 1, 2, 2, Win(2, 2)};
  s.window.pad_top = s.window.pad_left = s.window.pad_bottom = s.window.pad_right = 1;
  s.window.stride_h = s.window.stride_w = 2;
  const Values x = {-4, -3, -2, -1};
  Values y(4);
  MaxPool2dForward(s, x.data(), y.data(), static_cast<int64_t*>(nullptr));
  EXPECT_THAT(y, ElementsAre(-4, -3, -2, -1));
}

TEST(ReferencePoolTest, MeanPoolSpreadsGradientEvenly) {
  Pool2dShape s{1, 1, 4, 4, Win(2, 2)};
  s.window.stride_h = s.window.stride_w = 2;
  Values x(16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  Values y(4);
  AvgPool2dForward(s, x.data(), y.data());
  EXPECT_THAT(y, ElementsAre(2.5, 4.5, 10.5, 12.5));
  const Values dy = {4, 8, 12, 16};
  Values dx(16);
  AvgPool2dBackward(s, dy.data(), dx.data());
  EXPECT_THAT(dx, ElementsAre(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4));
}

TEST(ReferencePoolTest, MeanPoolDividesByTheRealTapsOnly) {
  // 2x2 input, 2x2 windows, stride 1, padding 1: corner windows hold 1 real tap, edge windows
  // 2, the centre 4.
  Pool2dShape s{1, 1, 2, 2, Win(2, 2)};
  s.window.pad_top = s.window.pad_left = s.window.pad_bottom = s.window.pad_right = 1;
  const Values x = {1, 2, 3, 4};
  Values y(9);
  AvgPool2dForward(s, x.data(), y.data());
  EXPECT_THAT(y, ElementsAre(1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4));
  // With dy = 1 every input sits in one window of each size: 1/1 + 2 * 1/2 + 1/4.
  const Values dy(9, 1.0);
  Values dx(4);
  AvgPool2dBackward(s, dy.data(), dx.data());
  EXPECT_THAT(dx, ElementsAre(2.25, 2.25, 2.25, 2.25));
}

TEST(ReferenceConvTest, FloatAndDoubleAgree) {
  Conv2dShape s{2, 3, 6, 5, 4, Strided(PaddedBy(Win(3, 2), 1, 0, 1, 1), 2)};
  const Values xd = Random(s.n * s.c * s.h * s.w, 5);
  const Values wd = Random(s.o * s.c * 6, 6);
  std::vector<float> xf(xd.begin(), xd.end());
  std::vector<float> wf(wd.begin(), wd.end());
  const Values xr(xf.begin(), xf.end());
  const Values wr(wf.begin(), wf.end());
  const size_t ny = static_cast<size_t>(s.n * s.o * s.out_h() * s.out_w());
  Values yd(ny);
  std::vector<float> yf(ny);
  Conv2dForward(s, xr.data(), wr.data(), static_cast<const double*>(nullptr), yd.data());
  Conv2dForward(s, xf.data(), wf.data(), static_cast<const float*>(nullptr), yf.data());
  EXPECT_THAT(Values(yf.begin(), yf.end()), Pointwise(::testing::DoubleNear(1e-5), yd));
}

}  // namespace
}  // namespace backflow::reference
