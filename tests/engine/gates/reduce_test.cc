#include "engine/gates/builtin.h"
#include "engine/gates/reduce.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;

// [[1, 2, 3], [4, 5, 6]] and [2, 3, 2] holding 1..12.
Tensor X23() { return T64({2, 3}, {1, 2, 3, 4, 5, 6}); }
Tensor X232() { return T64({2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}); }

struct ForwardCase {
  std::string name;
  std::string op;
  Tensor x;
  Attributes attrs;
  Shape want_shape;
  std::vector<double> want;
};
void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }

class ReduceForwardTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(ReduceForwardTest, MatchesHandComputedValues) {
  const ForwardCase& c = GetParam();
  StatusOr<Tensor> y = RunGate(c.op, {c.x}, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape().ToString(), c.want_shape.ToString());
  EXPECT_THAT(y->ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-15), c.want));
}

using Ints = std::vector<int64_t>;
constexpr int64_t kKeep = 1;

INSTANTIATE_TEST_SUITE_P(
    Gates, ReduceForwardTest,
    ::testing::Values(
        ForwardCase{"sum_all", "sum", X23(), {}, Shape{}, {21}},
        ForwardCase{"sum_all_keepdims", "sum", X23(), {{"keepdims", kKeep}}, Shape{1, 1}, {21}},
        ForwardCase{"sum_empty_axes_is_all", "sum", X23(), {{"axes", Ints{}}}, Shape{}, {21}},
        ForwardCase{"sum_axis0", "sum", X23(), {{"axes", Ints{0}}}, Shape{3}, {5, 7, 9}},
        ForwardCase{"sum_axis0_keepdims",
                    "sum",
                    X23(),
                    {{"axes", Ints{0}}, {"keepdims", kKeep}},
                    Shape{1, 3},
                    {5, 7, 9}},
        ForwardCase{"sum_axis_last", "sum", X23(), {{"axes", Ints{-1}}}, Shape{2}, {6, 15}},
        ForwardCase{"sum_axis_last_keepdims",
                    "sum",
                    X23(),
                    {{"axes", Ints{-1}}, {"keepdims", kKeep}},
                    Shape{2, 1},
                    {6, 15}},
        ForwardCase{"sum_two_axes", "sum", X232(), {{"axes", Ints{0, 2}}}, Shape{3}, {18, 26, 34}},
        ForwardCase{"sum_two_axes_keepdims",
                    "sum",
                    X232(),
                    {{"axes", Ints{-1, 0}}, {"keepdims", kKeep}},
                    Shape{1, 3, 1},
                    {18, 26, 34}},
        ForwardCase{"sum_scalar", "sum", T64({}, {2.5}), {}, Shape{}, {2.5}},
        ForwardCase{"mean_all", "mean", X23(), {}, Shape{}, {3.5}},
        ForwardCase{"mean_all_keepdims", "mean", X23(), {{"keepdims", kKeep}}, Shape{1, 1}, {3.5}},
        ForwardCase{"mean_axis0", "mean", X23(), {{"axes", Ints{0}}}, Shape{3}, {2.5, 3.5, 4.5}},
        ForwardCase{"mean_axis0_keepdims",
                    "mean",
                    X23(),
                    {{"axes", Ints{0}}, {"keepdims", kKeep}},
                    Shape{1, 3},
                    {2.5, 3.5, 4.5}},
        ForwardCase{"mean_axis_last", "mean", X23(), {{"axes", Ints{-1}}}, Shape{2}, {2, 5}},
        ForwardCase{"mean_axis_last_keepdims",
                    "mean",
                    X23(),
                    {{"axes", Ints{-1}}, {"keepdims", kKeep}},
                    Shape{2, 1},
                    {2, 5}},
        ForwardCase{
            "mean_two_axes", "mean", X232(), {{"axes", Ints{0, 2}}}, Shape{3}, {4.5, 6.5, 8.5}},
        ForwardCase{"mean_two_axes_keepdims",
                    "mean",
                    X232(),
                    {{"axes", Ints{0, -1}}, {"keepdims", kKeep}},
                    Shape{1, 3, 1},
                    {4.5, 6.5, 8.5}}),
    [](const ::testing::TestParamInfo<ForwardCase>& info) { return info.param.name; });

TEST(ReduceFloat32Test, SumAndMeanComputeInFloat32) {
  const Tensor x = X23().CastTo(DType::kFloat32);
  StatusOr<Tensor> s = RunGate("sum", {x}, {{"axes", Ints{1}}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->dtype(), DType::kFloat32);
  EXPECT_EQ(s->ToDoubles(), (std::vector<double>{6, 15}));
  StatusOr<Tensor> m = RunGate("mean", {x}, {{"axes", Ints{0}}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->ToDoubles(), (std::vector<double>{2.5, 3.5, 4.5}));
}

// Fixed summation order: the same float32 input gives the same bits on every run.
TEST(ReduceFloat32Test, SumIsBitwiseReproducible) {
  std::vector<double> values(4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0 / static_cast<double>(i + 1);
  const Tensor x = Tensor::FromValues(DType::kFloat32, Shape{64, 64}, values);
  StatusOr<Tensor> first = RunGate("sum", {x}, {{"axes", Ints{0}}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (int run = 0; run < 5; ++run) {
    StatusOr<Tensor> again = RunGate("sum", {x}, {{"axes", Ints{0}}});
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(BitwiseEqual(*first, *again));
  }
}

struct GradCase {
  std::string name;
  GateCase check;
};
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class ReduceGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(ReduceGradientTest, MatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(GetParam().check);
}

GradCase Grad(std::string name, std::string op, Shape shape, Attributes attrs) {
  return {std::move(name), {.op = std::move(op), .shapes = {std::move(shape)}, .attrs = attrs}};
}

INSTANTIATE_TEST_SUITE_P(
    Gates, ReduceGradientTest,
    ::testing::Values(
        Grad("sum_all", "sum", {2, 3}, {}),
        Grad("sum_all_keepdims", "sum", {2, 3}, {{"keepdims", kKeep}}),
        Grad("sum_axis0", "sum", {2, 3}, {{"axes", Ints{0}}}),
        Grad("sum_axis0_keepdims", "sum", {2, 3}, {{"axes", Ints{0}}, {"keepdims", kKeep}}),
        Grad("sum_axis_last", "sum", {2, 3}, {{"axes", Ints{-1}}}),
        Grad("sum_axis_last_keepdims", "sum", {2, 3}, {{"axes", Ints{-1}}, {"keepdims", kKeep}}),
        Grad("sum_two_axes", "sum", {2, 3, 4}, {{"axes", Ints{0, 2}}}),
        Grad("sum_two_axes_keepdims", "sum", {2, 3, 4},
             {{"axes", Ints{2, 0}}, {"keepdims", kKeep}}),
        Grad("sum_scalar", "sum", {}, {}), Grad("mean_all", "mean", {2, 3}, {}),
        Grad("mean_all_keepdims", "mean", {2, 3}, {{"keepdims", kKeep}}),
        Grad("mean_axis0", "mean", {2, 3}, {{"axes", Ints{0}}}),
        Grad("mean_axis0_keepdims", "mean", {2, 3}, {{"axes", Ints{0}}, {"keepdims", kKeep}}),
        Grad("mean_axis_last", "mean", {2, 3}, {{"axes", Ints{-1}}}),
        Grad("mean_axis_last_keepdims", "mean", {2, 3}, {{"axes", Ints{-1}}, {"keepdims", kKeep}}),
        Grad("mean_two_axes", "mean", {2, 3, 4}, {{"axes", Ints{0, 2}}}),
        Grad("mean_two_axes_keepdims", "mean", {2, 3, 4},
             {{"axes", Ints{-1, 0}}, {"keepdims", kKeep}})),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

// expand_like spreads dy back over the reduced axes, dividing by the count for a mean.
TEST(ExpandLikeTest, BroadcastsBackAndDividesForMean) {
  const Tensor dy = T64({2}, {6, 15});
  StatusOr<Tensor> sum_grad =
      RunGate("expand_like", {dy, X23()}, {{"axes", Ints{1}}, {"mean", int64_t{0}}});
  ASSERT_TRUE(sum_grad.ok()) << sum_grad.status().ToString();
  EXPECT_EQ(sum_grad->shape(), (Shape{2, 3}));
  EXPECT_EQ(sum_grad->ToDoubles(), (std::vector<double>{6, 6, 6, 15, 15, 15}));
  StatusOr<Tensor> mean_grad =
      RunGate("expand_like", {dy, X23()}, {{"axes", Ints{1}}, {"mean", int64_t{1}}});
  ASSERT_TRUE(mean_grad.ok()) << mean_grad.status().ToString();
  EXPECT_EQ(mean_grad->ToDoubles(), (std::vector<double>{2, 2, 2, 5, 5, 5}));
}

TEST(ExpandLikeTest, BackwardRecordsNormalisedAxes) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3, 4});
  const ValueId m = *g.AddNode("m", "mean", {x}, {{"axes", Ints{-1, 0}}});
  const ValueId loss = *g.AddNode("L", "sum", {m});
  const ValueId wrt[] = {x};
  ASSERT_TRUE(AppendBackward(g, loss, wrt).ok());
  int found = 0;
  for (const Node& n : g.nodes()) {
    if (n.op != "expand_like" || n.inputs[1] != x) continue;
    ++found;
    EXPECT_EQ(n.attrs.GetInts("axes"), (Ints{0, 2}));
    EXPECT_EQ(n.attrs.GetInt("keepdims", -1), 0);
    EXPECT_EQ(n.attrs.GetInt("mean", -1), 1);
  }
  EXPECT_EQ(found, 1);
}

StatusOr<Shape> ReduceShape(const char* op, Shape x, Attributes attrs) {
  Graph g(BuiltinGates());
  const ValueId in = *g.AddPlaceholder("x", std::move(x));
  BF_ASSIGN_OR_RETURN(ValueId y, g.AddNode("r", op, {in}, std::move(attrs)));
  return g.value(y).shape;
}

TEST(ReduceShapeTest, ReducesOrKeepsTheOpenBatchDimension) {
  const Shape nx3{kBatchDim, 3};
  EXPECT_EQ(*ReduceShape("sum", nx3, {}), Shape{});
  EXPECT_EQ(*ReduceShape("sum", nx3, {{"axes", Ints{0}}}), Shape{3});
  EXPECT_EQ(*ReduceShape("mean", nx3, {{"axes", Ints{0}}, {"keepdims", kKeep}}), (Shape{1, 3}));
  EXPECT_EQ(*ReduceShape("mean", nx3, {{"axes", Ints{-1}}}), Shape{kBatchDim});
  EXPECT_EQ(*ReduceShape("sum", nx3, {{"axes", Ints{1}}, {"keepdims", kKeep}}),
            (Shape{kBatchDim, 1}));
}

TEST(ReduceShapeTest, BadAttributesAreErrorsNamingTheNodeAndAxis) {
  struct Bad {
    Attributes attrs;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {{{"axes", Ints{2}}}, "node 'r': axis 2 is out of range for rank 2"},
      {{{"axes", Ints{-3}}}, "node 'r': axis -3 is out of range for rank 2"},
      {{{"axes", Ints{1, -1}}}, "node 'r': axis -1 (dimension 1) is listed twice"},
      {{{"keepdims", int64_t{2}}}, "node 'r': keepdims must be 0 or 1, got 2"},
  };
  for (const char* op : {"sum", "mean"}) {
    for (const Bad& bad : cases) {
      StatusOr<Shape> shape = ReduceShape(op, Shape{2, 3}, bad.attrs);
      EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument) << op << ": " << bad.message;
      EXPECT_EQ(shape.status().message(), bad.message) << op;
    }
  }
  StatusOr<Shape> wrong_type = ReduceShape("sum", Shape{2, 3}, {{"axes", 1.5}});
  EXPECT_THAT(wrong_type.status().message(), ::testing::HasSubstr("node 'r'"));
  EXPECT_THAT(wrong_type.status().message(), ::testing::HasSubstr("'axes' must be ints"));
}

TEST(ExpandLikeTest, RejectsAGradientOfTheWrongShape) {
  Graph g(BuiltinGates());
  const ValueId dy = *g.AddPlaceholder("dy", Shape{3});
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  StatusOr<ValueId> bad = g.AddNode("e", "expand_like", {dy, x}, {{"axes", Ints{1}}});
  EXPECT_EQ(bad.status().message(), "node 'e': dy has shape [3], but reducing [2, 3] gives [2]");
}

}  // namespace
}  // namespace backflow
