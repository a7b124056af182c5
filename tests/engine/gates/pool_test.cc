#include "engine/gates/pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/gates/reference/conv.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/engine/gates/spatial_test_util.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::spatial_test::RandomTensor;
using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using ::testing::ElementsAre;
using Ints = std::vector<int64_t>;
using Values = std::vector<double>;

struct PoolCase {
  std::string name;
  int64_t n, c, h, w;
  Attributes attrs;               // the window; max_pool2d's attributes
  int64_t count_include_pad = 1;  // avg_pool2d's, added by AttrsFor
};
void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }

// The reference's view of a case, read from its attributes independently of the gate's parser.
reference::Pool2dShape ShapeOf(const PoolCase& c) {
  reference::Pool2dShape s{c.n, c.c, c.h, c.w, {}};
  const Ints kernel = c.attrs.GetInts("kernel");
  const Ints stride = c.attrs.GetInts("stride", kernel);
  const Ints pad = c.attrs.GetInts("padding", {0, 0});
  s.window.kernel_h = kernel[0];
  s.window.kernel_w = kernel[1];
  s.window.stride_h = stride[0];
  s.window.stride_w = stride[1];
  s.window.pad_top = pad[0];
  s.window.pad_left = pad[1];
  s.window.pad_bottom = pad.size() == 4 ? pad[2] : pad[0];
  s.window.pad_right = pad.size() == 4 ? pad[3] : pad[1];
  const Ints dilation = c.attrs.GetInts("dilation", {1, 1});
  s.window.dilation_h = dilation[0];
  s.window.dilation_w = dilation[1];
  s.window.ceil_mode = c.attrs.GetInt("ceil_mode", 0) == 1;
  s.count_include_pad = c.count_include_pad == 1;
  return s;
}

// The attributes of `op` for case `c`: avg_pool2d takes count_include_pad as well, and
// global_avg_pool2d none.
Attributes AttrsFor(const std::string& op, const PoolCase& c) {
  if (op == "global_avg_pool2d") return {};  // its window is implied: the whole plane
  Attributes attrs = c.attrs;
  if (op == "avg_pool2d" || op == "avg_pool2d_grad") {
    attrs.Set("count_include_pad", c.count_include_pad);
  }
  return attrs;
}

Shape XShape(const PoolCase& c) { return Shape{c.n, c.c, c.h, c.w}; }
Shape YShape(const PoolCase& c) {
  const reference::Pool2dShape s = ShapeOf(c);
  return Shape{c.n, c.c, s.out_h(), s.out_w()};
}

const std::vector<PoolCase>& Cases() {
  static const auto* cases = new std::vector<PoolCase>{
      {"k2x2_s2", 2, 3, 6, 6, {{"kernel", Ints{2, 2}}}},
      {"k3x3_s2_pad1",
       2,
       3,
       7,
       7,
       {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}},
      {"non_square_3x2", 1, 5, 7, 6, {{"kernel", Ints{3, 2}}, {"stride", Ints{2, 1}}}},
      {"asymmetric_padding",
       2,
       3,
       5,
       6,
       {{"kernel", Ints{2, 3}}, {"stride", Ints{1, 2}}, {"padding", Ints{1, 0, 0, 2}}}},
      {"asymmetric_padding_exclude_pad",
       2,
       3,
       5,
       6,
       {{"kernel", Ints{2, 3}}, {"stride", Ints{1, 2}}, {"padding", Ints{1, 0, 0, 2}}},
       /*count_include_pad=*/0},
      {"k3x3_s2_pad1_exclude_pad",
       2,
       3,
       7,
       7,
       {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}},
       /*count_include_pad=*/0},
      {"overlapping_k3_s1_pad1",
       1,
       3,
       5,
       5,
       {{"kernel", Ints{3, 3}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}}}},
      {"uneven_tail", 2, 5, 7, 5, {{"kernel", Ints{2, 2}}}},
      {"c16_batch1",
       1,
       16,
       8,
       8,
       {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}},
  };
  return *cases;
}
auto CaseName = [](const ::testing::TestParamInfo<PoolCase>& info) { return info.param.name; };

// Keeps max pooling away from ties: every value on a 0.1 grid plus a per-element offset of
// (index mod 97) / 1000, so any two elements of a window differ by at least 1e-3, far more than
// the checker's step. The checker adjusts elements in row-major order, so a counter knows the
// index.
std::function<double(int, double)> AwayFromTies() {
  auto index = std::make_shared<int64_t>(0);
  return [index](int, double v) {
    return std::round(v * 10) / 10 + 0.001 * static_cast<double>((*index)++ % 97);
  };
}

class PoolGradientTest : public ::testing::TestWithParam<PoolCase> {};

// The shared checker at tolerances that allow for its rounding: gradient elements reach 1e-5
// (overlapping windows sum upstream weights of both signs). The exact checks below hold the
// same gradients to 1e-8. See Note [Finite differences on many outputs].
TEST_P(PoolGradientTest, MaxPoolMatchesFiniteDifferences) {
  const PoolCase& c = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(GateCase{.op = "max_pool2d",
                                                          .shapes = {XShape(c)},
                                                          .attrs = c.attrs,
                                                          .adjust = AwayFromTies(),
                                                          .tolerance = 1e-5});
}

TEST_P(PoolGradientTest, AvgPoolMatchesFiniteDifferences) {
  const PoolCase& c = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(GateCase{.op = "avg_pool2d",
                                                          .shapes = {XShape(c)},
                                                          .attrs = AttrsFor("avg_pool2d", c),
                                                          .tolerance = 1e-4});
}

// Max pooling is linear while no window's arg-max moves. Inputs here are distinct integers
// plus per-element offsets of (index mod 97) / 100, so window elements differ by at least 0.01,
// and a step of 0.004 keeps every arg-max in place.
TEST_P(PoolGradientTest, MaxPoolMatchesExactCentralDifferences) {
  const PoolCase& c = GetParam();
  Tensor x = RandomTensor(XShape(c), 21);
  for (int64_t j = 0; j < x.num_elements(); ++j) {
    double& v = x.data<double>()[j];
    v = std::round(2 * v) + 0.01 * static_cast<double>(j % 97);
  }
  spatial_test::ExpectGradientsMatchLinearDifferences("max_pool2d", {x}, c.attrs,
                                                      /*step=*/0.004, /*tolerance=*/1e-8);
}

// Average pooling is linear: any step is exact but for rounding.
TEST_P(PoolGradientTest, AvgPoolMatchesExactCentralDifferences) {
  const PoolCase& c = GetParam();
  spatial_test::ExpectGradientsMatchLinearDifferences("avg_pool2d", {RandomTensor(XShape(c), 22)},
                                                      AttrsFor("avg_pool2d", c), /*step=*/0.5,
                                                      /*tolerance=*/1e-9);
}

INSTANTIATE_TEST_SUITE_P(Variants, PoolGradientTest, ::testing::ValuesIn(Cases()), CaseName);

Values RefForward(const PoolCase& c, bool max, const Values& x) {
  Values y(static_cast<size_t>(YShape(c).num_elements()));
  if (max) {
    reference::MaxPool2dForward(ShapeOf(c), x.data(), y.data(), static_cast<int64_t*>(nullptr));
  } else {
    reference::AvgPool2dForward(ShapeOf(c), x.data(), y.data());
  }
  return y;
}

Values RefBackward(const PoolCase& c, bool max, const Values& x, const Values& dy) {
  Values dx(static_cast<size_t>(XShape(c).num_elements()));
  if (max) {
    reference::MaxPool2dBackward(ShapeOf(c), x.data(), dy.data(), dx.data());
  } else {
    reference::AvgPool2dBackward(ShapeOf(c), dy.data(), dx.data());
  }
  return dx;
}

// Pooling sums at most a window's worth of float32 values, so 1e-5 relative with a small floor.
void ExpectNear(const Tensor& got, const Values& want) {
  ASSERT_EQ(got.dtype(), DType::kFloat32);
  ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got.at(static_cast<int64_t>(i)), want[i], 1e-5 * std::abs(want[i]) + 1e-6)
        << "element " << i;
  }
}

// dL/dx in float32 of L = sum(pool(x) * r), through autodiff: for max pooling the backward
// reads the workspace the forward kernel saved.
StatusOr<Tensor> GradientThroughGraph(const std::string& op, const PoolCase& c, const Tensor& x,
                                      const Tensor& r) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId xv = *g->AddPlaceholder("x", Shape{kBatchDim, c.c, c.h, c.w});
  BF_ASSIGN_OR_RETURN(ValueId y, g->AddNode("y", op, {xv}, AttrsFor(op, c)));
  const ValueId rv = *g->AddConstant("r", r);
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("p", "mul", {y, rv})});
  const ValueId wrt[] = {xv};
  BF_ASSIGN_OR_RETURN(std::vector<ValueId> grads, AppendBackward(*g, loss, wrt));
  Program program(g);
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program.Run({{"x", &x}}, grads));
  return std::move(out[0]);
}

class PoolFloat32Test : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolFloat32Test, ForwardMatchesReference) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 1);
  for (bool max : {true, false}) {
    const std::string op = max ? "max_pool2d" : "avg_pool2d";
    StatusOr<Tensor> y = RunGate(op, {x.CastTo(DType::kFloat32)}, AttrsFor(op, c));
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), YShape(c));
    ExpectNear(*y, RefForward(c, max, x.ToDoubles()));
  }
}

TEST_P(PoolFloat32Test, BackwardThroughTheWorkspaceMatchesReference) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 2);
  const Tensor r = RandomTensor(YShape(c), 3);
  for (bool max : {true, false}) {
    StatusOr<Tensor> dx =
        GradientThroughGraph(max ? "max_pool2d" : "avg_pool2d", c, x.CastTo(DType::kFloat32), r);
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    ExpectNear(*dx, RefBackward(c, max, x.ToDoubles(), r.ToDoubles()));
  }
}

// A forward-only plan runs max pooling without its workspace (forward_inference, Note [Max pooling
// without its workspace]); a plan with the backward keeps it. The maxima are the same, bitwise.
TEST_P(PoolFloat32Test, MaxPoolWithAndWithoutItsWorkspaceAgreeBitwise) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 4).CastTo(DType::kFloat32);
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId xv = *g->AddPlaceholder("x", Shape{kBatchDim, c.c, c.h, c.w});
  StatusOr<ValueId> y = g->AddNode("y", "max_pool2d", {xv}, AttrsFor("max_pool2d", c));
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const ValueId loss = *g->AddNode("L", "sum", {*y});
  const ValueId wrt[] = {xv};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(g);
  const std::vector<ValueId> forward_only = {*y}, both = {*y, (*grads)[0]};
  StatusOr<std::vector<Tensor>> alone = program.Run({{"x", &x}}, forward_only);
  StatusOr<std::vector<Tensor>> with_backward = program.Run({{"x", &x}}, both);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  ASSERT_TRUE(with_backward.ok()) << with_backward.status().ToString();
  ASSERT_EQ((*alone)[0].byte_size(), (*with_backward)[0].byte_size());
  EXPECT_EQ(std::memcmp((*alone)[0].raw(), (*with_backward)[0].raw(), (*alone)[0].byte_size()), 0);
  ExpectNear((*alone)[0], RefForward(c, /*max=*/true, x.ToDoubles()));
}

// Inputs drawn from {0, 1, 2} tie in almost every window: oneDNN must route each gradient to
// the first maximum in window order, as the reference does. Integer dy keeps the sums exact.
TEST_P(PoolFloat32Test, MaxPoolTiesGoWhereTheReferenceSendsThem) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 4, /*small_integers=*/true);
  const Tensor r = RandomTensor(YShape(c), 5, /*small_integers=*/true);
  StatusOr<Tensor> dx = GradientThroughGraph("max_pool2d", c, x.CastTo(DType::kFloat32), r);
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  EXPECT_EQ(dx->ToDoubles(), RefBackward(c, /*max=*/true, x.ToDoubles(), r.ToDoubles()));
}

// The gradient gates on their own, with no forward node to read a workspace from: max pooling
// then recomputes it from x.
TEST_P(PoolFloat32Test, GradientGatesWithoutAForwardNodeMatchReference) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 6);
  const Tensor dy = RandomTensor(YShape(c), 7);
  const Tensor x32 = x.CastTo(DType::kFloat32);
  const Tensor dy32 = dy.CastTo(DType::kFloat32);
  StatusOr<Tensor> max_dx = RunGate("max_pool2d_grad", {x32, dy32}, c.attrs);
  ASSERT_TRUE(max_dx.ok()) << max_dx.status().ToString();
  ExpectNear(*max_dx, RefBackward(c, true, x.ToDoubles(), dy.ToDoubles()));
  Attributes attrs = AttrsFor("avg_pool2d_grad", c);
  attrs.Set("input_size", Ints{c.h, c.w});
  StatusOr<Tensor> avg_dx = RunGate("avg_pool2d_grad", {dy32}, attrs);
  ASSERT_TRUE(avg_dx.ok()) << avg_dx.status().ToString();
  EXPECT_EQ(avg_dx->shape(), XShape(c));
  ExpectNear(*avg_dx, RefBackward(c, false, x.ToDoubles(), dy.ToDoubles()));
}

INSTANTIATE_TEST_SUITE_P(Variants, PoolFloat32Test, ::testing::ValuesIn(Cases()), CaseName);

// max_pool2d's own window attributes (avg_pool2d has neither): dilation and ceil_mode, on
// shapes that are not multiples of oneDNN's blocks.
const std::vector<PoolCase>& MaxCases() {
  static const auto* cases = new std::vector<PoolCase>{
      {"dilation2_k3_s2_pad1_ceil",
       2,
       3,
       9,
       7,
       {{"kernel", Ints{3, 3}},
        {"stride", Ints{2, 2}},
        {"padding", Ints{1, 1}},
        {"dilation", Ints{2, 2}},
        {"ceil_mode", int64_t{1}}}},
      {"dilation2x3_ceil_overhangs",
       1,
       5,
       8,
       11,
       {{"kernel", Ints{2, 2}},
        {"stride", Ints{3, 3}},
        {"dilation", Ints{2, 3}},
        {"ceil_mode", int64_t{1}}}},
      {"ceil_k3_s2_c17",
       1,
       17,
       6,
       6,
       {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}},
      {"dilation3_only",
       2,
       3,
       7,
       7,
       {{"kernel", Ints{2, 2}}, {"stride", Ints{1, 1}}, {"dilation", Ints{3, 3}}}},
  };
  return *cases;
}

class MaxPoolWindowTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPoolWindowTest, ShapeMatchesPyTorch) {
  // Output shapes from torch.nn.functional.max_pool2d on each case (PyTorch 1.13).
  const std::map<std::string, Shape> torch_shapes = {
      {"dilation2_k3_s2_pad1_ceil", Shape{2, 3, 4, 3}},
      {"dilation2x3_ceil_overhangs", Shape{1, 5, 3, 4}},
      {"ceil_k3_s2_c17", Shape{1, 17, 3, 3}},
      {"dilation3_only", Shape{2, 3, 4, 4}}};
  const PoolCase& c = GetParam();
  StatusOr<Tensor> y = RunGate("max_pool2d", {RandomTensor(XShape(c), 8)}, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape(), torch_shapes.at(c.name));
  EXPECT_EQ(y->shape(), YShape(c));
}

TEST_P(MaxPoolWindowTest, MatchesFiniteDifferences) {
  const PoolCase& c = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(GateCase{.op = "max_pool2d",
                                                          .shapes = {XShape(c)},
                                                          .attrs = c.attrs,
                                                          .adjust = AwayFromTies(),
                                                          .tolerance = 1e-5});
}

TEST_P(MaxPoolWindowTest, Float32MatchesReference) {
  const PoolCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 9);
  const Tensor r = RandomTensor(YShape(c), 10);
  const Tensor x32 = x.CastTo(DType::kFloat32);
  StatusOr<Tensor> y = RunGate("max_pool2d", {x32}, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ExpectNear(*y, RefForward(c, /*max=*/true, x.ToDoubles()));
  StatusOr<Tensor> dx = GradientThroughGraph("max_pool2d", c, x32, r);
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  ExpectNear(*dx, RefBackward(c, /*max=*/true, x.ToDoubles(), r.ToDoubles()));
  StatusOr<Tensor> alone = RunGate("max_pool2d_grad", {x32, r.CastTo(DType::kFloat32)}, c.attrs);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  ExpectNear(*alone, RefBackward(c, /*max=*/true, x.ToDoubles(), r.ToDoubles()));
}

INSTANTIATE_TEST_SUITE_P(Variants, MaxPoolWindowTest, ::testing::ValuesIn(MaxCases()), CaseName);

// PyTorch 1.13: x = [(i * 37) % 42 for i in range(42)] as 1x1x6x7,
// torch.nn.functional.max_pool2d(x, 2, 2, 1, 2, ceil_mode=True) (ceil_mode=False gives 3x4),
// y.backward(1..16).
TEST(PoolSeedTest, DilatedCeilModeMaxPoolingMatchesPyTorch) {
  const PoolCase c = {"torch",
                      1,
                      1,
                      6,
                      7,
                      {{"kernel", Ints{2, 2}},
                       {"stride", Ints{2, 2}},
                       {"padding", Ints{1, 1}},
                       {"dilation", Ints{2, 2}},
                       {"ceil_mode", int64_t{1}}}};
  Values xs(42);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<double>((i * 37) % 42);
  Values dys(16);
  for (size_t i = 0; i < dys.size(); ++i) dys[i] = static_cast<double>(i + 1);
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const Tensor x = T64({1, 1, 6, 7}, xs).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("max_pool2d", {x}, c.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), (Shape{1, 1, 4, 4}));
    EXPECT_THAT(y->ToDoubles(),
                ElementsAre(2, 34, 34, 24, 16, 34, 38, 38, 30, 30, 38, 38, 30, 30, 20, 10));
    StatusOr<Tensor> dx = GradientThroughGraph("max_pool2d", c, x, T64({1, 1, 4, 4}, dys));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_EQ(dx->ToDoubles(),
              (Values{0, 0, 0, 0, 0, 0,  0, 0, 1, 0, 11, 0, 4, 0, 0, 0,  0, 0,  0, 0,  0,
                      0, 5, 0, 0, 0, 38, 0, 0, 0, 0, 0,  0, 0, 0, 0, 46, 0, 15, 0, 16, 0}));
  }
}

TEST(PoolShapeTest, MaxPoolDilationAndCeilModeAreChecked) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{1, 1, 4, 4});
  StatusOr<ValueId> bad_dilation =
      g.AddNode("pool", "max_pool2d", {x}, {{"kernel", Ints{2, 2}}, {"dilation", Ints{0, 1}}});
  EXPECT_EQ(bad_dilation.status().message(),
            "node 'pool': dilation must be 2 ints, each >= 1, got [0, 1]");
  StatusOr<ValueId> bad_ceil =
      g.AddNode("pool", "max_pool2d", {x}, {{"kernel", Ints{2, 2}}, {"ceil_mode", int64_t{3}}});
  EXPECT_EQ(bad_ceil.status().message(), "node 'pool': ceil_mode must be 0 or 1, got 3");
  // Dilation 3 spans 4 taps: no room in 3 rows.
  StatusOr<ValueId> too_wide =
      g.AddNode("pool", "max_pool2d", {*g.AddPlaceholder("x3", Shape{1, 1, 3, 3})},
                {{"kernel", Ints{2, 2}}, {"dilation", Ints{3, 3}}});
  EXPECT_EQ(too_wide.status().code(), StatusCode::kInvalidArgument);
}

// global_avg_pool2d is avg_pool2d with one window over the whole plane: checked against the
// reference's average pooling with kernel [H, W], on odd shapes and batch 1.
class GlobalAvgPoolTest : public ::testing::TestWithParam<Shape> {};

TEST_P(GlobalAvgPoolTest, MatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "global_avg_pool2d", .shapes = {GetParam()}, .tolerance = 1e-5});
}

TEST_P(GlobalAvgPoolTest, Float32AndFloat64MatchTheReference) {
  const Shape& shape = GetParam();
  const PoolCase c = {"global",     shape.dim(0), shape.dim(1),
                      shape.dim(2), shape.dim(3), {{"kernel", Ints{shape.dim(2), shape.dim(3)}}}};
  const Tensor x = RandomTensor(shape, 11);
  const Tensor r = RandomTensor(YShape(c), 12);
  ASSERT_EQ(YShape(c), (Shape{shape.dim(0), shape.dim(1), 1, 1}));
  StatusOr<Tensor> y64 = RunGate("global_avg_pool2d", {x}, {});
  ASSERT_TRUE(y64.ok()) << y64.status().ToString();
  const Values want = RefForward(c, /*max=*/false, x.ToDoubles());
  EXPECT_EQ(y64->ToDoubles(), want);
  StatusOr<Tensor> y32 = RunGate("global_avg_pool2d", {x.CastTo(DType::kFloat32)}, {});
  ASSERT_TRUE(y32.ok()) << y32.status().ToString();
  EXPECT_EQ(y32->shape(), YShape(c));
  ExpectNear(*y32, want);
  StatusOr<Tensor> dx = GradientThroughGraph("global_avg_pool2d", c, x.CastTo(DType::kFloat32), r);
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  ExpectNear(*dx, RefBackward(c, /*max=*/false, x.ToDoubles(), r.ToDoubles()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, GlobalAvgPoolTest,
                         ::testing::Values(Shape{1, 5, 7, 3}, Shape{3, 17, 1, 9}, Shape{2, 3, 6, 6},
                                           Shape{1, 1, 1, 1}));

TEST(PoolSeedTest, GlobalAveragePoolingIsThePlaneMean) {
  // Planes [[1, 2, 3], [4, 5, 6]] and [[0, 0, 6], [6, 0, 0]]: means 3.5 and 2; dy 6 and 12
  // spread as 1 and 2 over the six elements.
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const Tensor x = T64({1, 2, 2, 3}, {1, 2, 3, 4, 5, 6, 0, 0, 6, 6, 0, 0}).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("global_avg_pool2d", {x}, {});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), (Shape{1, 2, 1, 1}));
    EXPECT_THAT(y->ToDoubles(), ElementsAre(3.5, 2));
    const PoolCase c = {"plane", 1, 2, 2, 3, {}};
    StatusOr<Tensor> dx =
        GradientThroughGraph("global_avg_pool2d", c, x, T64({1, 2, 1, 1}, {6, 12}));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), ElementsAre(1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2));
  }
}

TEST(PoolShapeTest, GlobalAvgPoolKeepsTheOpenBatchAndNamesTheNode) {
  Graph g(BuiltinGates());
  StatusOr<ValueId> y =
      g.AddNode("gap", "global_avg_pool2d", {*g.AddPlaceholder("x", Shape{kBatchDim, 7, 5, 3})});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(g.value(*y).shape, (Shape{kBatchDim, 7, 1, 1}));
  StatusOr<ValueId> bad =
      g.AddNode("gap2", "global_avg_pool2d", {*g.AddPlaceholder("v", Shape{7, 5, 3})});
  EXPECT_EQ(bad.status().message(),
            "node 'gap2': x must be [N, C, H, W] with C, H, W > 0, got [7, 5, 3]");
}

// The seed's claims, exactly, through the gates in both dtypes: 2x2 windows with stride 2 over
//   1 3 | 2 0
//   4 2 | 1 5
//   ----+----
//   0 1 | 7 2
//   6 2 | 3 3
const Values kX = {1, 3, 2, 0, 4, 2, 1, 5, 0, 1, 7, 2, 6, 2, 3, 3};
const PoolCase kHand = {"hand", 1, 1, 4, 4, {{"kernel", Ints{2, 2}}}};

TEST(PoolSeedTest, MaxPoolingRoutesTheGradientToTheArgMax) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = T64({1, 1, 4, 4}, kX).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("max_pool2d", {x}, kHand.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_THAT(y->ToDoubles(), ElementsAre(4, 5, 6, 7));
    StatusOr<Tensor> dx =
        GradientThroughGraph("max_pool2d", kHand, x, T64({1, 1, 2, 2}, {1, 2, 3, 4}));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), ElementsAre(0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 4, 0, 3, 0, 0, 0))
        << DTypeName(dtype);
  }
}

TEST(PoolSeedTest, MeanPoolingSpreadsTheGradientEvenly) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = T64({1, 1, 4, 4}, kX).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("avg_pool2d", {x}, kHand.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_THAT(y->ToDoubles(), ElementsAre(2.5, 2, 2.25, 3.75));
    StatusOr<Tensor> dx =
        GradientThroughGraph("avg_pool2d", kHand, x, T64({1, 1, 2, 2}, {4, 8, 12, 16}));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), ElementsAre(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4))
        << DTypeName(dtype);
  }
}

TEST(PoolSeedTest, MeanPoolingExcludesPaddingFromTheCountOnRequest) {
  // 2x2 windows, stride 1, padding 1 over [[1, 2], [3, 4]]: windows hold 1, 2 or 4 real taps.
  const PoolCase c = {"padded",
                      1,
                      1,
                      2,
                      2,
                      {{"kernel", Ints{2, 2}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}}},
                      /*count_include_pad=*/0};
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = T64({1, 1, 2, 2}, {1, 2, 3, 4}).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("avg_pool2d", {x}, AttrsFor("avg_pool2d", c));
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_THAT(y->ToDoubles(), ElementsAre(1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4)) << DTypeName(dtype);
    StatusOr<Tensor> dx = GradientThroughGraph("avg_pool2d", c, x, T64({1, 1, 3, 3}, Values(9, 1)));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), ElementsAre(2.25, 2.25, 2.25, 2.25)) << DTypeName(dtype);
  }
}

// Values from PyTorch 1.13, torch.nn.functional.avg_pool2d(x, kernel, stride, padding,
// count_include_pad=True) in float64 and y.backward(dy):
//   x = [[1, 2], [3, 4]], kernel 2, stride 1, padding 1, dy = 1..9
//   x = 1..20 as 4x5, kernel (3, 2), stride 2, padding 1, dy = 1..6
TEST(PoolSeedTest, MeanPoolingCountsPaddingByDefaultAsPyTorch) {
  const PoolCase small = {
      "small", 1, 1,
      2,       2, {{"kernel", Ints{2, 2}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}}}};
  const PoolCase wide = {
      "wide", 1, 1,
      4,      5, {{"kernel", Ints{3, 2}}, {"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}};
  auto expect = [](const Tensor& got, const Values& want, double scale) {
    ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got.at(static_cast<int64_t>(i)) * scale, want[i], 1e-5) << "element " << i;
    }
  };
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const Tensor x = T64({1, 1, 2, 2}, {1, 2, 3, 4}).CastTo(dtype);
    // No count_include_pad attribute: the default, 1.
    StatusOr<Tensor> y = RunGate("avg_pool2d", {x}, small.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    expect(*y, {0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1}, 1);
    StatusOr<Tensor> dx = GradientThroughGraph("avg_pool2d", small, x,
                                               T64({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    expect(*dx, {3, 4, 6, 7}, 1);

    Values xs(20);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<double>(i + 1);
    const Tensor x2 = T64({1, 1, 4, 5}, xs).CastTo(dtype);
    StatusOr<Tensor> y2 = RunGate("avg_pool2d", {x2}, AttrsFor("avg_pool2d", wide));
    ASSERT_TRUE(y2.ok()) << y2.status().ToString();
    EXPECT_EQ(y2->shape(), (Shape{1, 1, 2, 3}));
    expect(*y2, {7, 20, 28, 33, 75, 87}, 6);  // y * 6
    StatusOr<Tensor> dx2 =
        GradientThroughGraph("avg_pool2d", wide, x2, T64({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6}));
    ASSERT_TRUE(dx2.ok()) << dx2.status().ToString();
    expect(*dx2, {2, 4, 4, 6, 6, 10, 14, 14, 18, 18, 8, 10, 10, 12, 12, 8, 10, 10, 12, 12},
           12);  // dx * 12
  }
}

TEST(PoolShapeTest, CountIncludePadMustBeZeroOrOne) {
  Graph g(BuiltinGates());
  StatusOr<ValueId> y = g.AddNode("pool", "avg_pool2d", {*g.AddPlaceholder("x", Shape{1, 1, 4, 4})},
                                  {{"kernel", Ints{2, 2}}, {"count_include_pad", int64_t{2}}});
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), "node 'pool': count_include_pad must be 0 or 1, got 2");
}

// The shape rule's message for `op`(x) with `attrs`, added as node "pool".
std::string ShapeError(const std::string& op, const Shape& x, Attributes attrs) {
  Graph g(BuiltinGates());
  StatusOr<ValueId> y = g.AddNode("pool", op, {*g.AddPlaceholder("x", x)}, std::move(attrs));
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  return y.status().message();
}

TEST(PoolShapeTest, InfersTheOutputShapeWithTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3, 7, 6});
  StatusOr<ValueId> y =
      g.AddNode("pool", "max_pool2d", {x}, {{"kernel", Ints{3, 2}}, {"padding", Ints{1, 0, 0, 1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  // Stride defaults to the kernel: OH = (7 + 1 - 3) / 3 + 1 = 2, OW = (6 + 1 - 2) / 2 + 1 = 3.
  EXPECT_EQ(g.value(*y).shape, (Shape{kBatchDim, 3, 2, 3}));
}

TEST(PoolShapeTest, ErrorsNameTheNode) {
  for (const char* op : {"max_pool2d", "avg_pool2d"}) {
    EXPECT_EQ(ShapeError(op, {1, 3, 2, 2}, {{"kernel", Ints{3, 3}}}),
              "node 'pool': kernel 3x3 is larger than the padded input 2x2, so the output would "
              "have no elements")
        << op;
    EXPECT_EQ(ShapeError(op, {1, 3, 4, 4}, {{"kernel", Ints{2, 2}}, {"padding", Ints{2, 0}}}),
              "node 'pool': padding [2, 0, 2, 0] must be smaller than the kernel 2x2 on every "
              "side, or a window could hold only padding")
        << op;
    EXPECT_EQ(ShapeError(op, {1, 3, 4, 4}, {{"kernel", Ints{2}}}),
              "node 'pool': kernel must be 2 ints, each >= 1, got [2]")
        << op;
    EXPECT_EQ(ShapeError(op, {1, 3, 4, 4}, {}),
              "node 'pool' (" + std::string(op) + "): missing required attribute 'kernel' (ints)")
        << op;
    EXPECT_EQ(ShapeError(op, {3, 4, 4}, {{"kernel", Ints{2, 2}}}),
              "node 'pool': x must be [N, C, H, W] with C, H, W > 0, got [3, 4, 4]")
        << op;
  }
}

TEST(PoolGatesTest, GradientGatesAreInternal) {
  for (const char* op : {"max_pool2d_grad", "avg_pool2d_grad"}) {
    const Gate* gate = BuiltinGates().Find(op);
    ASSERT_NE(gate, nullptr) << op;
    EXPECT_TRUE(gate->internal()) << op;
  }
}

}  // namespace
}  // namespace backflow
