#include "engine/gates/matmul.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/gates/reference/dense.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using reference::MatMulDims;

Attributes Transposes(bool ta, bool tb) {
  return {{"transpose_a", int64_t{ta}}, {"transpose_b", int64_t{tb}}};
}

// The stored shape of an operand whose logical shape is [rows, cols] (after a leading batch).
Shape Stored(int64_t batch, int64_t rows, int64_t cols, bool transposed) {
  const int64_t r = transposed ? cols : rows;
  const int64_t c = transposed ? rows : cols;
  return batch > 0 ? Shape{batch, r, c} : Shape{r, c};
}

Tensor Random(DType dtype, Shape shape, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double& x : v) x = uniform(rng);
  return Tensor::FromValues(dtype, std::move(shape), v);
}

// The float32 result `got` against the reference `want`, where `scale` holds the same products
// over absolute values: a float32 dot product of K terms is off by up to about K * 6e-8 times
// that sum, so the bound is 1e-5 relative plus a small multiple of it.
void ExpectNearReference(const std::vector<double>& got, const std::vector<double>& want,
                         const std::vector<double>& scale) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5 * std::abs(want[i]) + 1e-6 * scale[i]) << "element " << i;
  }
}

std::vector<double> Abs(std::vector<double> v) {
  for (double& x : v) x = std::abs(x);
  return v;
}

// The reference product of the float operands (widened to double), and of their magnitudes.
void ReferenceOf(const MatMulDims& d, const Tensor& a, const Tensor& b, std::vector<double>* want,
                 std::vector<double>* scale) {
  const size_t n = static_cast<size_t>(d.batch * d.m * d.n);
  want->assign(n, 0);
  scale->assign(n, 0);
  reference::MatMul(d, a.ToDoubles().data(), b.ToDoubles().data(), want->data());
  reference::MatMul(d, Abs(a.ToDoubles()).data(), Abs(b.ToDoubles()).data(), scale->data());
}

// ---- forward values ------------------------------------------------------------------------

TEST(MatMulForwardTest, MatchesHandComputedValues) {
  // [[1, 2, 3], [4, 5, 6]] [[1, -1], [0, 2], [3, 1]] = [[10, 6], [22, 12]].
  const Tensor a = T64({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = T64({3, 2}, {1, -1, 0, 2, 3, 1});
  StatusOr<Tensor> y = RunGate("matmul", {a, b});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape(), (Shape{2, 2}));
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{10, 6, 22, 12}));
  // b^T a^T = (a b)^T, reading both operands transposed in place.
  StatusOr<Tensor> yt = RunGate("matmul", {b, a}, Transposes(true, true));
  ASSERT_TRUE(yt.ok()) << yt.status().ToString();
  EXPECT_EQ(yt->ToDoubles(), (std::vector<double>{10, 22, 6, 12}));
}

TEST(LinearForwardTest, AddsTheBiasToEveryRowInBothDtypes) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const std::vector<double> x = {1, 2, 3, 4, 5, 6}, w = {1, -1, 0, 2, 3, 1}, b = {100, 200};
    StatusOr<Tensor> y = RunGate(
        "linear", {Tensor::FromValues(dtype, {2, 3}, x), Tensor::FromValues(dtype, {3, 2}, w),
                   Tensor::FromValues(dtype, {2}, b)});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->dtype(), dtype);
    EXPECT_EQ(y->ToDoubles(), (std::vector<double>{110, 206, 122, 212}));
  }
}

TEST(LinearForwardTest, EmptyInnerDimensionGivesTheBias) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    auto g = std::make_shared<Graph>(BuiltinGates());
    const ValueId x = *g->AddConstant("x", Tensor(dtype, Shape{2, 0}));
    const ValueId w = *g->AddConstant("w", Tensor(dtype, Shape{0, 3}));
    const ValueId b =
        *g->AddConstant("b", Tensor::FromValues(dtype, {3}, std::vector<double>{1, 2, 3}));
    StatusOr<ValueId> y = g->AddNode("y", "linear", {x, w, b});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    const ValueId fetch[] = {*y};
    StatusOr<std::vector<Tensor>> out = Program(g).Run({}, fetch);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ((*out)[0].ToDoubles(), (std::vector<double>{1, 2, 3, 1, 2, 3}));
  }
}

// ---- gradients (float64, finite differences) -------------------------------------------------

class MatMulGradientTest : public ::testing::TestWithParam<std::tuple<bool, bool, int64_t>> {};

// Each gradient element is a short sum of products with random signs, so some seeds make one
// nearly cancel (the default seed gives an element of 6e-3 for at_b_batch2), and there the
// finite difference's absolute rounding error, about 1e-9, exceeds 1e-7 relative. Seed 3 keeps
// every element of every case clear of zero.
TEST_P(MatMulGradientTest, MatchesFiniteDifferences) {
  const auto [ta, tb, batch] = GetParam();  // batch 0: 2-D operands
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "matmul",
               .shapes = {Stored(batch, 3, 4, ta), Stored(batch, 4, 5, tb)},
               .attrs = Transposes(ta, tb),
               .seed = 3});
}

std::string CaseName(bool ta, bool tb, int64_t batch) {
  return std::string(ta ? "at" : "a") + "_" + (tb ? "bt" : "b") +
         (batch == 0 ? "_2d" : "_batch" + std::to_string(batch));
}

std::string GradientCaseName(
    const ::testing::TestParamInfo<std::tuple<bool, bool, int64_t>>& info) {
  const auto [ta, tb, batch] = info.param;
  return CaseName(ta, tb, batch);
}

INSTANTIATE_TEST_SUITE_P(Gates, MatMulGradientTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(0, 1, 2)),
                         GradientCaseName);

TEST(LinearGradientTest, WithBiasMatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "linear", .shapes = {{3, 4}, {4, 5}, {5}}});
}

TEST(LinearGradientTest, WithoutBiasMatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "linear", .shapes = {{1, 7}, {7, 3}}});
}

// ---- float32 oneDNN kernels against the reference ------------------------------------------

struct Sizes {
  int64_t m, k, n;
};
void PrintTo(const Sizes& s, std::ostream* os) { *os << s.m << "x" << s.k << "x" << s.n; }

const auto kAwkwardSizes = ::testing::Values(Sizes{1, 1, 1}, Sizes{7, 13, 5}, Sizes{33, 65, 17},
                                             Sizes{1, 100, 3}, Sizes{9, 3, 1}, Sizes{2, 1, 11});

class MatMulFloat32Test : public ::testing::TestWithParam<std::tuple<Sizes, bool, bool, int64_t>> {
};

TEST_P(MatMulFloat32Test, OneDnnMatchesTheReference) {
  const auto [s, ta, tb, batch] = GetParam();
  std::mt19937_64 rng(s.m * 10007 + s.k * 101 + s.n);
  const Tensor a = Random(DType::kFloat32, Stored(batch, s.m, s.k, ta), rng);
  const Tensor b = Random(DType::kFloat32, Stored(batch, s.k, s.n, tb), rng);
  StatusOr<Tensor> y = RunGate("matmul", {a, b}, Transposes(ta, tb));
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dtype(), DType::kFloat32);
  EXPECT_EQ(y->shape(), batch > 0 ? Shape({batch, s.m, s.n}) : Shape({s.m, s.n}));
  std::vector<double> want, scale;
  ReferenceOf({std::max<int64_t>(batch, 1), s.m, s.k, s.n, ta, tb}, a, b, &want, &scale);
  ExpectNearReference(y->ToDoubles(), want, scale);
}

std::string SizesName(const Sizes& s) {
  return std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n);
}

std::string Float32CaseName(
    const ::testing::TestParamInfo<std::tuple<Sizes, bool, bool, int64_t>>& info) {
  const auto [s, ta, tb, batch] = info.param;
  return SizesName(s) + "_" + CaseName(ta, tb, batch);
}

INSTANTIATE_TEST_SUITE_P(Gates, MatMulFloat32Test,
                         ::testing::Combine(kAwkwardSizes, ::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(0, 1, 3)),
                         Float32CaseName);

class LinearFloat32Test : public ::testing::TestWithParam<std::tuple<Sizes, bool>> {};

TEST_P(LinearFloat32Test, OneDnnMatchesTheReference) {
  const auto [s, with_bias] = GetParam();
  std::mt19937_64 rng(s.m * 31 + s.k * 7 + s.n);
  std::vector<Tensor> in = {Random(DType::kFloat32, {s.m, s.k}, rng),
                            Random(DType::kFloat32, {s.k, s.n}, rng)};
  if (with_bias) in.push_back(Random(DType::kFloat32, {s.n}, rng));
  StatusOr<Tensor> y = RunGate("linear", in);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  std::vector<double> want, scale;
  ReferenceOf({.m = s.m, .k = s.k, .n = s.n}, in[0], in[1], &want, &scale);
  for (size_t i = 0; with_bias && i < want.size(); ++i) {
    const double bias = in[2].at(static_cast<int64_t>(i) % s.n);
    want[i] += bias;
    scale[i] += std::abs(bias);
  }
  ExpectNearReference(y->ToDoubles(), want, scale);
}

std::string LinearCaseName(const ::testing::TestParamInfo<std::tuple<Sizes, bool>>& info) {
  const auto [s, with_bias] = info.param;
  return SizesName(s) + (with_bias ? "_bias" : "_no_bias");
}

INSTANTIATE_TEST_SUITE_P(Gates, LinearFloat32Test,
                         ::testing::Combine(kAwkwardSizes, ::testing::Bool()), LinearCaseName);

// ---- the open batch dimension and concurrent runs ------------------------------------------

TEST(LinearBatchTest, OpenBatchRunsForwardAndBackwardAtAnyBatchSize) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 13});
  const ValueId w = *g->AddPlaceholder("w", Shape{13, 7});
  const ValueId b = *g->AddPlaceholder("b", Shape{7});
  StatusOr<ValueId> y = g->AddNode("y", "linear", {x, w, b});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(g->value(*y).shape, (Shape{kBatchDim, 7}));
  const ValueId loss = *g->AddNode("L", "sum", {*y});
  const ValueId wrt[] = {w, b};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(g);
  for (int64_t batch : {1, 6}) {
    std::mt19937_64 rng(static_cast<unsigned>(batch));
    const Tensor xs = Random(DType::kFloat32, {batch, 13}, rng);
    const Tensor ws = Random(DType::kFloat32, {13, 7}, rng);
    const Tensor bs = Random(DType::kFloat32, {7}, rng);
    const ValueId fetch[] = {*y, (*grads)[0], (*grads)[1]};
    StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xs}, {"w", &ws}, {"b", &bs}}, fetch);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    std::vector<double> want(static_cast<size_t>(batch * 7)), dw(13 * 7);
    reference::Linear(batch, 13, 7, xs.ToDoubles().data(), ws.ToDoubles().data(),
                      bs.ToDoubles().data(), want.data());
    // With L = sum(y), dy is all ones: dW[i][j] = sum over rows of x[n][i], db[j] = batch.
    for (int64_t n = 0; n < batch; ++n) {
      for (size_t i = 0; i < 13 * 7; ++i) dw[i] += xs.at(n * 13 + static_cast<int64_t>(i) / 7);
    }
    EXPECT_THAT((*out)[0].ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-5), want));
    EXPECT_THAT((*out)[1].ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-5), dw));
    EXPECT_THAT((*out)[2].ToDoubles(), ::testing::Each(static_cast<double>(batch)));
  }
}

TEST(MatMulConcurrencyTest, OnePlanRunsFromManyThreadsAtOnce) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId a = *g->AddPlaceholder("a", Shape{33, 65});
  const ValueId b = *g->AddPlaceholder("b", Shape{17, 65});
  const ValueId y = *g->AddNode("y", "matmul", {a, b}, Transposes(false, true));
  const Program program(g);
  std::mt19937_64 rng(7);
  const Tensor as = Random(DType::kFloat32, {33, 65}, rng);
  const Tensor bs = Random(DType::kFloat32, {17, 65}, rng);
  std::vector<double> want, scale;
  ReferenceOf({.m = 33, .k = 65, .n = 17, .transpose_b = true}, as, bs, &want, &scale);
  std::vector<std::vector<double>> results(4 * 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 8; ++r) {
        const ValueId fetch[] = {y};
        StatusOr<std::vector<Tensor>> out = program.Run({{"a", &as}, {"b", &bs}}, fetch);
        if (out.ok()) results[static_cast<size_t>(t * 8 + r)] = (*out)[0].ToDoubles();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::vector<double>& got : results) ExpectNearReference(got, want, scale);
}

// ---- the seeds' vectorized examples ---------------------------------------------------------

// Row-major [rows, cols] element access for the hand computations below.
double At(const Tensor& t, int64_t cols, int64_t i, int64_t j) { return t.at(i * cols + j); }

// D = W X (W 5x10, X 10x3) and L = sum(D * R), so dD = R: seed 004 derives dW = dD X^T and
// dX = W^T dD. Computed here by explicit loops over the same products.
TEST(MatMulSeedTest, VectorizedGradientsAreTheMatrixProductsOfTheSeed) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    std::mt19937_64 rng(4);
    const Tensor w = Random(dtype, {5, 10}, rng);
    const Tensor x = Random(dtype, {10, 3}, rng);
    const Tensor r = Random(DType::kFloat64, {5, 3}, rng).CastTo(dtype);
    auto g = std::make_shared<Graph>(BuiltinGates());
    const ValueId wid = *g->AddPlaceholder("W", w.shape());
    const ValueId xid = *g->AddPlaceholder("X", x.shape());
    const ValueId d = *g->AddNode("D", "matmul", {wid, xid});
    const ValueId p = *g->AddNode("P", "mul", {d, *g->AddConstant("R", r)});
    const ValueId loss = *g->AddNode("L", "sum", {p});
    const ValueId wrt[] = {wid, xid};
    StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
    ASSERT_TRUE(grads.ok()) << grads.status().ToString();
    StatusOr<std::vector<Tensor>> out = Program(g).Run({{"W", &w}, {"X", &x}}, *grads);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    const Tensor& dw = (*out)[0];
    const Tensor& dx = (*out)[1];
    ASSERT_EQ(dw.shape(), w.shape());
    ASSERT_EQ(dx.shape(), x.shape());
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t k = 0; k < 10; ++k) {
        double want = 0, scale = 0;  // (dD X^T)[i][k]
        for (int64_t j = 0; j < 3; ++j) {
          want += At(r, 3, i, j) * At(x, 3, k, j);
          scale += std::abs(At(r, 3, i, j) * At(x, 3, k, j));
        }
        if (dtype == DType::kFloat64) {
          EXPECT_DOUBLE_EQ(At(dw, 10, i, k), want);
        }
        EXPECT_NEAR(At(dw, 10, i, k), want, 1e-5 * std::abs(want) + 1e-6 * scale);
      }
    }
    for (int64_t k = 0; k < 10; ++k) {
      for (int64_t j = 0; j < 3; ++j) {
        double want = 0, scale = 0;  // (W^T dD)[k][j]
        for (int64_t i = 0; i < 5; ++i) {
          want += At(w, 10, i, k) * At(r, 3, i, j);
          scale += std::abs(At(w, 10, i, k) * At(r, 3, i, j));
        }
        if (dtype == DType::kFloat64) {
          EXPECT_DOUBLE_EQ(At(dx, 3, k, j), want);
        }
        EXPECT_NEAR(At(dx, 3, k, j), want, 1e-5 * std::abs(want) + 1e-6 * scale);
      }
    }
  }
}

// Seed 003's network h = tanh(W x + b), y = V h + a, L = 1/2 ||y - y*||^2, built from gates.
struct TwoLayer {
  static constexpr int64_t kIn = 4, kHidden = 5, kOut = 3;
  std::shared_ptr<Graph> graph = std::make_shared<Graph>(BuiltinGates());
  ValueId h = kNoId, y = kNoId, loss = kNoId;
  std::vector<ValueId> grads;  // dL/dW, dL/db, dL/dV, dL/da
};

TwoLayer BuildTwoLayer() {
  TwoLayer n;
  Graph& g = *n.graph;
  const ValueId x = *g.AddPlaceholder("x", Shape{TwoLayer::kIn, 1});
  const ValueId w = *g.AddPlaceholder("W", Shape{TwoLayer::kHidden, TwoLayer::kIn});
  const ValueId b = *g.AddPlaceholder("b", Shape{TwoLayer::kHidden, 1});
  const ValueId v = *g.AddPlaceholder("V", Shape{TwoLayer::kOut, TwoLayer::kHidden});
  const ValueId a = *g.AddPlaceholder("a", Shape{TwoLayer::kOut, 1});
  const ValueId target = *g.AddPlaceholder("y_star", Shape{TwoLayer::kOut, 1});
  const ValueId wx = *g.AddNode("Wx", "matmul", {w, x});
  n.h = *g.AddNode("h", "tanh", {*g.AddNode("z", "add", {wx, b})});
  const ValueId vh = *g.AddNode("Vh", "matmul", {v, n.h});
  n.y = *g.AddNode("y", "add", {vh, a});
  const ValueId e2 = *g.AddNode("e2", "square", {*g.AddNode("e", "sub", {n.y, target})});
  n.loss = *g.AddNode("L", "mul_scalar", {*g.AddNode("S", "sum", {e2})}, {{"a", 0.5}});
  const ValueId wrt[] = {w, b, v, a};
  n.grads = *AppendBackward(g, n.loss, wrt);
  return n;
}

TEST(MatMulSeedTest, TwoLayerNetworkGradientsMatchTheSeedsFormulas) {
  const TwoLayer net = BuildTwoLayer();
  ASSERT_EQ(net.grads.size(), 4u);
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    std::mt19937_64 rng(3);
    const Tensor x = Random(dtype, {4, 1}, rng), w = Random(dtype, {5, 4}, rng),
                 b = Random(dtype, {5, 1}, rng), v = Random(dtype, {3, 5}, rng),
                 a = Random(dtype, {3, 1}, rng), t = Random(dtype, {3, 1}, rng);
    const ValueId fetch[] = {net.h, net.y, net.grads[0], net.grads[1], net.grads[2], net.grads[3]};
    StatusOr<std::vector<Tensor>> out = Program(net.graph).Run(
        {{"x", &x}, {"W", &w}, {"b", &b}, {"V", &v}, {"a", &a}, {"y_star", &t}}, fetch);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    // The seed's formulas, by hand in double from the fed values.
    std::vector<double> h(5), e(3), db(5), dw(20), dv(15);
    for (int64_t j = 0; j < 5; ++j) {
      double z = b.at(j);
      for (int64_t i = 0; i < 4; ++i) z += At(w, 4, j, i) * x.at(i);
      h[j] = std::tanh(z);
    }
    for (int64_t o = 0; o < 3; ++o) {
      double y = a.at(o);
      for (int64_t j = 0; j < 5; ++j) y += At(v, 5, o, j) * h[j];
      e[o] = y - t.at(o);                                           // dL/dy = dL/da = y - y*
      for (int64_t j = 0; j < 5; ++j) dv[o * 5 + j] = e[o] * h[j];  // (y - y*) h^T
    }
    for (int64_t j = 0; j < 5; ++j) {
      double vte = 0;  // (V^T (y - y*))[j]
      for (int64_t o = 0; o < 3; ++o) vte += At(v, 5, o, j) * e[o];
      db[j] = (1 - h[j] * h[j]) * vte;
      for (int64_t i = 0; i < 4; ++i) dw[j * 4 + i] = db[j] * x.at(i);  // dL/db x^T
    }
    const double tol = dtype == DType::kFloat64 ? 1e-12 : 1e-5;
    auto near = [&](const std::vector<double>& want) {
      return ::testing::Pointwise(::testing::DoubleNear(tol), want);
    };
    EXPECT_THAT((*out)[0].ToDoubles(), near(h));
    EXPECT_THAT((*out)[2].ToDoubles(), near(dw)) << "dL/dW";
    EXPECT_THAT((*out)[3].ToDoubles(), near(db)) << "dL/db";
    EXPECT_THAT((*out)[4].ToDoubles(), near(dv)) << "dL/dV";
    EXPECT_THAT((*out)[5].ToDoubles(), near(e)) << "dL/da";
  }
}

// ---- shape rules -----------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::string op;
  std::vector<Shape> shapes;
  Attributes attrs;
  std::string message;
};
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class MatMulShapeErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(MatMulShapeErrorTest, NamesTheNodeAndBothShapes) {
  const ErrorCase& c = GetParam();
  Graph g(BuiltinGates());
  std::vector<ValueId> in;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    in.push_back(*g.AddPlaceholder("x" + std::to_string(i), c.shapes[i]));
  }
  StatusOr<ValueId> y = g.AddNode("h", c.op, in, c.attrs);
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Gates, MatMulShapeErrorTest,
    ::testing::Values(
        ErrorCase{"inner",
                  "matmul",
                  {{kBatchDim, 784}, {785, 256}},
                  {},
                  "node 'h': inner dimensions differ: [N, 784] x [785, 256]"},
        ErrorCase{"inner_transposed",
                  "matmul",
                  {{3, 4}, {4, 5}},
                  Transposes(false, true),
                  "node 'h': inner dimensions differ: [3, 4] x [4, 5] (b transposed)"},
        ErrorCase{"open_against_known",
                  "matmul",
                  {{kBatchDim, 3}, {4, 5}},
                  Transposes(true, false),
                  "node 'h': inner dimensions differ: [N, 3] x [4, 5] (a transposed)"},
        ErrorCase{"ranks",
                  "matmul",
                  {{2, 3, 4}, {5}},
                  {},
                  "node 'h': matmul takes operands of rank 2 or more, got [2, 3, 4] x [5]"},
        ErrorCase{"vector",
                  "matmul",
                  {{4}, {4}},
                  {},
                  "node 'h': matmul takes operands of rank 2 or more, got [4] x [4]"},
        ErrorCase{"batch",
                  "matmul",
                  {{2, 3, 4}, {3, 4, 5}},
                  {},
                  "node 'h': batch dimensions do not broadcast: [2, 3, 4] x [3, 4, 5]"},
        ErrorCase{"flag",
                  "matmul",
                  {{3, 4}, {4, 5}},
                  {{"transpose_a", int64_t{2}}},
                  "node 'h': transpose_a must be 0 or 1, got 2"},
        ErrorCase{"linear_inner",
                  "linear",
                  {{kBatchDim, 784}, {785, 256}},
                  {},
                  "node 'h': inner dimensions differ: [N, 784] x [785, 256]"},
        ErrorCase{"linear_bias",
                  "linear",
                  {{kBatchDim, 784}, {784, 256}, {10}},
                  {},
                  "node 'h': bias has shape [10], expected [256] for w [784, 256]"},
        ErrorCase{"linear_rank",
                  "linear",
                  {{784}, {784, 256}},
                  {},
                  "node 'h': linear takes x [..., rows, in] and w [in, out], got [784] x "
                  "[784, 256]"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

TEST(MatMulShapeTest, OpenBatchFlowsThroughBothGates) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 784});
  const ValueId w = *g.AddPlaceholder("w", Shape{784, 256});
  EXPECT_EQ(g.value(*g.AddNode("m", "matmul", {x, w})).shape, (Shape{kBatchDim, 256}));
  EXPECT_EQ(g.value(*g.AddNode("l", "linear", {x, w})).shape, (Shape{kBatchDim, 256}));
  // x^T x contracts over the batch: an open inner dimension matches an open one.
  EXPECT_EQ(g.value(*g.AddNode("c", "matmul", {x, x}, Transposes(true, false))).shape,
            (Shape{784, 784}));
  const ValueId s = *g.AddPlaceholder("s", Shape{kBatchDim, 3, 4});
  EXPECT_EQ(g.value(*g.AddNode("bt", "matmul", {s, s}, Transposes(false, true))).shape,
            (Shape{kBatchDim, 3, 3}));
}

// The backward is matmul nodes reading the operands in place: no transpose or copy gates.
TEST(MatMulBackwardTest, GradientsAreMatMulNodesWithTransposes) {
  for (const auto& [ta, tb] : {std::pair{false, false}, std::pair{true, false},
                               std::pair{false, true}, std::pair{true, true}}) {
    Graph g(BuiltinGates());
    const ValueId a = *g.AddPlaceholder("a", ta ? Shape{4, 3} : Shape{3, 4});
    const ValueId b = *g.AddPlaceholder("b", tb ? Shape{5, 4} : Shape{4, 5});
    const ValueId y = *g.AddNode("y", "matmul", {a, b}, Transposes(ta, tb));
    const ValueId loss = *g.AddNode("L", "sum", {y});
    const int forward_nodes = g.num_nodes();
    const ValueId wrt[] = {a, b};
    ASSERT_TRUE(AppendBackward(g, loss, wrt).ok());
    int matmuls = 0;
    for (int i = forward_nodes; i < g.num_nodes(); ++i) {
      EXPECT_NE(g.node(i).op, "transpose");
      matmuls += g.node(i).op == "matmul";
    }
    EXPECT_EQ(matmuls, 2) << ta << tb;
  }
}

}  // namespace
}  // namespace backflow
