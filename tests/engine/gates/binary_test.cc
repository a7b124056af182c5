#include "engine/gates/binary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;

struct ForwardCase {
  std::string name;
  std::string op;
  Tensor a;
  Tensor b;
  Shape want_shape;
  std::vector<double> want;  // hand-computed
};
void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }

class BinaryForwardTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(BinaryForwardTest, MatchesHandComputedValues) {
  const ForwardCase& c = GetParam();
  StatusOr<Tensor> y = RunGate(c.op, {c.a, c.b});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape().ToString(), c.want_shape.ToString());
  EXPECT_THAT(y->ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-15), c.want));
}

// Same shapes: a = [1, -2, 3, 0.5], b = [2, 4, -1, 0.25], both [2, 2].
Tensor A() { return T64({2, 2}, {1, -2, 3, 0.5}); }
Tensor B() { return T64({2, 2}, {2, 4, -1, 0.25}); }
Tensor M23() { return T64({2, 3}, {1, 2, 3, 4, 5, 6}); }

INSTANTIATE_TEST_SUITE_P(
    Gates, BinaryForwardTest,
    ::testing::Values(
        ForwardCase{"add", "add", A(), B(), {2, 2}, {3, 2, 2, 0.75}},
        ForwardCase{"sub", "sub", A(), B(), {2, 2}, {-1, -6, 4, 0.25}},
        ForwardCase{"mul", "mul", A(), B(), {2, 2}, {2, -8, -3, 0.125}},
        ForwardCase{"div", "div", A(), B(), {2, 2}, {0.5, -0.5, -3, 2}},
        ForwardCase{"max", "max", A(), B(), {2, 2}, {2, 4, 3, 0.5}},
        ForwardCase{"min", "min", A(), B(), {2, 2}, {1, -2, -1, 0.25}},
        ForwardCase{"pow",
                    "pow",
                    T64({2, 2}, {1, 4, 9, 0.5}),
                    T64({2, 2}, {2, 0.5, -1, 2}),
                    {2, 2},
                    {1, 2, 0.1111111111111111, 0.25}},
        ForwardCase{"add_row_on_right",
                    "add",
                    M23(),
                    T64({3}, {10, 20, 30}),
                    {2, 3},
                    {11, 22, 33, 14, 25, 36}},
        ForwardCase{"sub_row_on_left",
                    "sub",
                    T64({3}, {10, 20, 30}),
                    M23(),
                    {2, 3},
                    {9, 18, 27, 6, 15, 24}},
        ForwardCase{"mul_column_by_row",
                    "mul",
                    T64({2, 1}, {1, 2}),
                    T64({1, 3}, {3, 4, 5}),
                    {2, 3},
                    {3, 4, 5, 6, 8, 10}},
        ForwardCase{"div_scalar_by_matrix",
                    "div",
                    T64({}, {12}),
                    T64({2, 3}, {1, 2, 3, 4, 6, 12}),
                    {2, 3},
                    {12, 6, 4, 3, 2, 1}},
        ForwardCase{
            "pow_matrix_by_scalar", "pow", M23(), T64({}, {2}), {2, 3}, {1, 4, 9, 16, 25, 36}},
        ForwardCase{"max_row_on_right",
                    "max",
                    T64({2, 3}, {1, 5, 3, 4, 2, 6}),
                    T64({3}, {2, 2, 7}),
                    {2, 3},
                    {2, 5, 7, 4, 2, 7}},
        ForwardCase{"min_column_by_row",
                    "min",
                    T64({2, 1}, {1, 4}),
                    T64({1, 3}, {0, 2, 5}),
                    {2, 3},
                    {0, 1, 1, 0, 2, 4}}),
    [](const ::testing::TestParamInfo<ForwardCase>& info) { return info.param.name; });

TEST(BinaryFloat32Test, BroadcastMulAndDivComputeInFloat32) {
  const Tensor a = Tensor::FromValues(DType::kFloat32, Shape{2, 1}, std::vector<double>{1, 2});
  const Tensor b = Tensor::FromValues(DType::kFloat32, Shape{3}, std::vector<double>{3, 4, 0.5});
  StatusOr<Tensor> mul = RunGate("mul", {a, b});
  ASSERT_TRUE(mul.ok()) << mul.status().ToString();
  EXPECT_EQ(mul->dtype(), DType::kFloat32);
  EXPECT_EQ(mul->shape(), (Shape{2, 3}));
  EXPECT_EQ(mul->ToDoubles(), (std::vector<double>{3, 4, 0.5, 6, 8, 1}));
  StatusOr<Tensor> div = RunGate("div", {a, b});
  ASSERT_TRUE(div.ok()) << div.status().ToString();
  EXPECT_THAT(div->ToDoubles(),
              ::testing::Pointwise(::testing::DoubleNear(1e-7),
                                   std::vector<double>{1.0 / 3, 0.25, 2, 2.0 / 3, 0.5, 4}));
}

struct ShapePair {
  std::string name;
  Shape a;
  Shape b;
};
void PrintTo(const ShapePair& p, std::ostream* os) { *os << p.name; }

// Keeps each op's inputs where it is smooth: b away from 0 for div, a > 0 for pow, and a and b
// on interleaved grids 0.05 apart for max and min, so that no pair ties.
std::function<double(int, double)> AdjustFor(const std::string& op) {
  if (op == "div") return [](int i, double v) { return i == 1 && std::abs(v) < 0.5 ? v + 1 : v; };
  if (op == "pow") return [](int i, double v) { return i == 0 ? std::abs(v) + 0.5 : v; };
  if (op == "max" || op == "min") {
    return [](int i, double v) { return std::round(v * 10) / 10 + (i == 0 ? 0.05 : 0.0); };
  }
  return nullptr;
}

class BinaryGradientTest : public ::testing::TestWithParam<std::tuple<std::string, ShapePair>> {};

TEST_P(BinaryGradientTest, MatchesFiniteDifferences) {
  const auto& [op, shapes] = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = op, .shapes = {shapes.a, shapes.b}, .adjust = AdjustFor(op)});
}

INSTANTIATE_TEST_SUITE_P(
    Gates, BinaryGradientTest,
    ::testing::Combine(::testing::Values("add", "sub", "mul", "div", "max", "min", "pow"),
                       ::testing::Values(ShapePair{"same", {2, 3}, {2, 3}},
                                         ShapePair{"row_on_right", {2, 3}, {3}},
                                         ShapePair{"row_on_left", {3}, {2, 3}},
                                         ShapePair{"column_by_row", {2, 1}, {1, 3}},
                                         ShapePair{"scalar_on_left", {}, {2, 3}},
                                         ShapePair{"scalar_on_right", {2, 3}, {}})),
    [](const ::testing::TestParamInfo<std::tuple<std::string, ShapePair>>& info) {
      return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
    });

TEST(BinaryShapeTest, BroadcastsWithTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId b = *g.AddPlaceholder("b", Shape{3});
  StatusOr<ValueId> y = g.AddNode("y", "add", {x, b});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(g.value(*y).shape, (Shape{kBatchDim, 3}));
}

TEST(BinaryShapeTest, IncompatibleShapesAreAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId a = *g.AddPlaceholder("a", Shape{2, 3});
  const ValueId b = *g.AddPlaceholder("b", Shape{4});
  for (const char* op : {"add", "sub", "mul", "div", "max", "min", "pow"}) {
    StatusOr<ValueId> y = g.AddNode("bad", op, {a, b});
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument) << op;
    EXPECT_EQ(y.status().message(), "node 'bad': shapes [2, 3] and [4] do not broadcast") << op;
  }
}

TEST(BinaryShapeTest, WrongArityIsAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId a = *g.AddPlaceholder("a", Shape{2});
  StatusOr<ValueId> y = g.AddNode("lonely", "mul", {a});
  EXPECT_EQ(y.status().message(), "node 'lonely' (mul): takes 2 input(s), got 1");
}

TEST(BinaryGatesTest, GradientGatesAreInternal) {
  const GateRegistry& registry = BuiltinGates();
  for (const char* op : {"mul", "div", "max", "min", "pow"}) {
    const Gate* gate = registry.Find(std::string(op) + "_grad");
    ASSERT_NE(gate, nullptr) << op;
    EXPECT_TRUE(gate->internal()) << op;
    EXPECT_FALSE(gate->differentiable()) << op;
  }
  // add and sub differentiate to dy and neg(dy): no gradient kernel.
  EXPECT_EQ(registry.Find("add_grad"), nullptr);
  EXPECT_EQ(registry.Find("sub_grad"), nullptr);
}

}  // namespace
}  // namespace backflow
