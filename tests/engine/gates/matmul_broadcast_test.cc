// matmul with broadcast batch dimensions and linear over any leading dimensions: exact values
// (from torch 1.13, script below), finite differences, and oneDNN against a reference loop.
//
// Expected values were generated with:
//   a = (torch.arange(12, dtype=torch.float64) * 0.5 - 3).reshape(2, 1, 2, 3)
//   b = (torch.arange(18, dtype=torch.float64) * 0.25 - 2).reshape(3, 3, 2)
//   a @ b
//   x = (torch.arange(12, dtype=torch.float64) * 0.5 - 2).reshape(2, 2, 3)
//   w = (torch.arange(6, dtype=torch.float64) - 2.5).reshape(3, 2)
//   x @ w + torch.tensor([0.5, -1.0], dtype=torch.float64)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;

std::vector<double> Ramp(int64_t n, double step, double start) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + step * static_cast<double>(i);
  return v;
}

Attributes Transposes(bool ta, bool tb) {
  return {{"transpose_a", int64_t{ta}}, {"transpose_b", int64_t{tb}}};
}

TEST(MatMulBroadcastTest, FourDTimesThreeDMatchesTorch) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor a = Tensor::FromValues(dtype, Shape{2, 1, 2, 3}, Ramp(12, 0.5, -3));
    const Tensor b = Tensor::FromValues(dtype, Shape{3, 3, 2}, Ramp(18, 0.25, -2));
    StatusOr<Tensor> y = RunGate("matmul", {a, b});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), (Shape{2, 3, 2, 2}));
    const std::vector<double> want = {11.75,  9.875,   5.0,  4.25,  0.5,   -1.375, 0.5,  -0.25,
                                      -10.75, -12.625, -4.0, -4.75, -1.75, -1.375, -8.5, -7.0,
                                      0.5,    0.875,   0.5,  2.0,   2.75,  3.125,  9.5,  11.0};
    EXPECT_EQ(y->ToDoubles(), want);  // dyadic values: exact in both dtypes
  }
}

TEST(LinearLeadingDimsTest, ThreeDMatchesTorch) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = Tensor::FromValues(dtype, Shape{2, 2, 3}, Ramp(12, 0.5, -2));
    const Tensor w = Tensor::FromValues(dtype, Shape{3, 2}, Ramp(6, 1, -2.5));
    const Tensor bias = Tensor::FromValues(dtype, Shape{2}, std::vector<double>{0.5, -1.0});
    StatusOr<Tensor> y = RunGate("linear", {x, w, bias});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), (Shape{2, 2, 2}));
    EXPECT_EQ(y->ToDoubles(), (std::vector<double>{4.75, -1.25, 2.5, 1.0, 0.25, 3.25, -2.0, 5.5}));
  }
}

// The result of a broadcast product computed element by element from its definition.
std::vector<double> Definition(const Tensor& a, const Tensor& b, bool ta, bool tb,
                               const Shape& out) {
  const int r = out.rank();
  const int64_t m = out.dim(r - 2), n = out.dim(r - 1);
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const int64_t k = sa.dim(ta ? sa.rank() - 2 : sa.rank() - 1);
  const std::vector<double> va = a.ToDoubles(), vb = b.ToDoubles();
  std::vector<double> y;
  const int64_t batches = out.num_elements() / (m * n);
  for (int64_t p = 0; p < batches; ++p) {
    // The batch index of p in out, then the matrices of a and b it reads (1s broadcast).
    int64_t rest = p, oa = 0, ob = 0, stride_a = 1, stride_b = 1;
    for (int d = r - 3; d >= 0; --d) {
      const int64_t at = rest % out.dim(d);
      rest /= out.dim(d);
      const int da = sa.rank() - r + d, db = sb.rank() - r + d;
      if (da >= 0) {
        if (sa.dim(da) != 1) oa += at * stride_a;
        stride_a *= sa.dim(da);
      }
      if (db >= 0) {
        if (sb.dim(db) != 1) ob += at * stride_b;
        stride_b *= sb.dim(db);
      }
    }
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q) {
          s += va[static_cast<size_t>(oa * m * k + (ta ? q * m + i : i * k + q))] *
               vb[static_cast<size_t>(ob * k * n + (tb ? j * k + q : q * n + j))];
        }
        y.push_back(s);
      }
    }
  }
  return y;
}

struct BroadcastCase {
  std::string name;
  Shape a, b, out;
  bool ta = false, tb = false;
};

class MatMulBroadcastFloat32Test : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(MatMulBroadcastFloat32Test, OneDnnAndReferenceMatchTheDefinition) {
  const BroadcastCase& c = GetParam();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  auto random = [&](const Shape& s) {
    std::vector<double> v(static_cast<size_t>(s.num_elements()));
    for (double& x : v) x = uniform(rng);
    return v;
  };
  const std::vector<double> va = random(c.a), vb = random(c.b);
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const Tensor a = Tensor::FromValues(dtype, c.a, va);
    const Tensor b = Tensor::FromValues(dtype, c.b, vb);
    StatusOr<Tensor> y = RunGate("matmul", {a, b}, Transposes(c.ta, c.tb));
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    ASSERT_EQ(y->shape(), c.out);
    const std::vector<double> want = Definition(a, b, c.ta, c.tb, c.out);
    const std::vector<double> got = y->ToDoubles();
    ASSERT_EQ(got.size(), want.size());
    const double tol = dtype == DType::kFloat32 ? 1e-5 : 1e-13;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Gates, MatMulBroadcastFloat32Test,
    ::testing::Values(BroadcastCase{"a4d_b3d", {3, 1, 5, 7}, {4, 7, 6}, {3, 4, 5, 6}},
                      BroadcastCase{"a4d_b2d", {2, 3, 5, 7}, {7, 1}, {2, 3, 5, 1}},
                      BroadcastCase{"a2d_b3d", {5, 7}, {3, 7, 6}, {3, 5, 6}},
                      BroadcastCase{"both_ones", {1, 3, 1, 2, 9}, {4, 1, 5, 9, 3}, {4, 3, 5, 2, 3}},
                      BroadcastCase{
                          "transposed", {3, 1, 7, 5}, {4, 6, 7}, {3, 4, 5, 6}, true, true},
                      BroadcastCase{"batch_one", {1, 1, 13}, {1, 13, 1}, {1, 1, 1}}),
    [](const ::testing::TestParamInfo<BroadcastCase>& info) { return info.param.name; });

// Seeds 3 and 5 keep every gradient element clear of the near-cancellation that puts the finite
// difference's rounding above 1e-7 relative (see MatMulGradientTest in matmul_test.cc).
TEST(MatMulBroadcastGradientTest, MatchesFiniteDifferences) {
  const GateCase cases[] = {
      {.op = "matmul", .shapes = {{2, 3, 4}, {4, 5}}},
      {.op = "matmul", .shapes = {{3, 4}, {2, 4, 5}}},
      {.op = "matmul", .shapes = {{2, 1, 3, 4}, {3, 4, 2}}, .seed = 3},
      {.op = "matmul",
       .shapes = {{2, 1, 4, 3}, {3, 2, 4}},
       .attrs = Transposes(true, true),
       .seed = 5},
      {.op = "linear", .shapes = {{2, 3, 4}, {4, 5}, {5}}},
      {.op = "linear", .shapes = {{2, 1, 3, 4}, {4, 2}}},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    testing::ExpectGradientsMatchFiniteDifferences(cases[i]);
  }
}

TEST(MatMulBroadcastShapeTest, OpenBatchAndErrors) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 5, 7});
  const ValueId w = *g.AddPlaceholder("w", Shape{7, 3});
  const ValueId v = *g.AddPlaceholder("v", Shape{1, 7, 3});
  EXPECT_EQ(g.value(*g.AddNode("m", "matmul", {x, w})).shape, (Shape{kBatchDim, 5, 3}));
  EXPECT_EQ(g.value(*g.AddNode("mv", "matmul", {x, v})).shape, (Shape{kBatchDim, 5, 3}));
  EXPECT_EQ(g.value(*g.AddNode("l", "linear", {x, w})).shape, (Shape{kBatchDim, 5, 3}));
  const ValueId u = *g.AddPlaceholder("u", Shape{4, 7, 3});
  StatusOr<ValueId> bad = g.AddNode("bad", "matmul", {x, u});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "node 'bad': batch dimensions do not broadcast: [N, 5, 7] x [4, 7, 3]");
}

}  // namespace
}  // namespace backflow
