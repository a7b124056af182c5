#include "engine/gates/builtin.h"
#include "engine/gates/unary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;

// Keeps inputs at least 0.1 from 0, where relu and leaky_relu have their kink.
double AwayFromZero(int, double v) { return v >= 0 ? v + 0.1 : v - 0.1; }

struct ForwardCase {
  std::string name;
  std::string op;
  Attributes attrs;
  std::vector<double> x;
  std::vector<double> want;  // y, hand-computed
};
void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }

class UnaryForwardTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(UnaryForwardTest, MatchesHandComputedValues) {
  const ForwardCase& c = GetParam();
  const Shape shape{static_cast<int64_t>(c.x.size())};
  StatusOr<Tensor> y = RunGate(c.op, {T64(shape, c.x)}, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dtype(), DType::kFloat64);
  EXPECT_EQ(y->shape().ToString(), shape.ToString());
  EXPECT_THAT(y->ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-15), c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Gates, UnaryForwardTest,
    ::testing::Values(
        ForwardCase{"neg", "neg", {}, {-2, 0, 3.5}, {2, 0, -3.5}},
        ForwardCase{"exp", "exp", {}, {0, 1, -1}, {1, 2.718281828459045, 0.36787944117144233}},
        ForwardCase{"log", "log", {}, {1, 2.718281828459045, 0.5}, {0, 1, -0.6931471805599453}},
        ForwardCase{"reciprocal", "reciprocal", {}, {2, -4, 0.5}, {0.5, -0.25, 2}},
        ForwardCase{"add_scalar_default", "add_scalar", {}, {1, -2}, {1, -2}},
        ForwardCase{"add_scalar_c", "add_scalar", {{"c", 2.5}}, {1, -2}, {3.5, 0.5}},
        ForwardCase{"mul_scalar_default", "mul_scalar", {}, {1, -2}, {1, -2}},
        ForwardCase{"mul_scalar_a", "mul_scalar", {{"a", -3.0}}, {1, -2, 0.5}, {-3, 6, -1.5}},
        ForwardCase{"mul_scalar_int_a", "mul_scalar", {{"a", int64_t{2}}}, {1, -2}, {2, -4}},
        ForwardCase{"square", "square", {}, {-3, 0.5, 2}, {9, 0.25, 4}},
        ForwardCase{"sqrt", "sqrt", {}, {4, 0.25, 2}, {2, 0.5, 1.4142135623730951}},
        // Large |x| must neither overflow nor produce NaN.
        ForwardCase{"sigmoid",
                    "sigmoid",
                    {},
                    {0, 1, -1, 800, -800},
                    {0.5, 0.7310585786300049, 0.2689414213699951, 1, 0}},
        ForwardCase{"tanh", "tanh", {}, {0, 1, -2}, {0, 0.7615941559557649, -0.9640275800758169}},
        // torch.erf (scripts in the commit message: torch 1.13, float64).
        ForwardCase{"erf",
                    "erf",
                    {},
                    {0, 0.5, -1, 2},
                    {0, 0.5204998778130465, -0.8427007929497149, 0.9953222650189527}},
        ForwardCase{"relu", "relu", {}, {-1, 0, 2.5}, {0, 0, 2.5}},
        ForwardCase{"leaky_relu_default", "leaky_relu", {}, {-2, 3, 0}, {-0.02, 3, 0}},
        ForwardCase{"leaky_relu_alpha", "leaky_relu", {{"alpha", 0.2}}, {-2, 3, 0}, {-0.4, 3, 0}}),
    [](const ::testing::TestParamInfo<ForwardCase>& info) { return info.param.name; });

TEST(UnaryFloat32Test, SigmoidAndLeakyReluComputeInFloat32) {
  const Tensor x =
      Tensor::FromValues(DType::kFloat32, Shape{2, 2}, std::vector<double>{0, 1, -100, 100});
  StatusOr<Tensor> s = RunGate("sigmoid", {x});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->dtype(), DType::kFloat32);
  EXPECT_THAT(s->ToDoubles(), ::testing::Pointwise(::testing::FloatNear(1e-6f),
                                                   std::vector<double>{0.5, 0.7310585786, 0, 1}));
  StatusOr<Tensor> l = RunGate("leaky_relu", {x}, {{"alpha", 0.5}});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->dtype(), DType::kFloat32);
  EXPECT_EQ(l->ToDoubles(), (std::vector<double>{0, 1, -50, 100}));
}

// torch.autograd on torch.erf, float64: d erf(x)/dx at 0, 0.5, -1, 2, here times dy = 2.
TEST(UnaryGradientValuesTest, ErfGradMatchesTorch) {
  const Shape shape{4};
  const Tensor x = T64(shape, {0, 0.5, -1, 2});
  const Tensor y = T64(shape, {0, 0.5204998778130465, -0.8427007929497149, 0.9953222650189527});
  const Tensor dy = T64(shape, {2, 2, 2, 2});
  StatusOr<Tensor> dx = RunGate("erf_grad", {x, y, dy});
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  EXPECT_THAT(dx->ToDoubles(),
              ::testing::Pointwise(::testing::DoubleNear(1e-15),
                                   std::vector<double>{2 * 1.1283791670955126,
                                                       2 * 0.8787825789354448,
                                                       2 * 0.4151074974205947,
                                                       2 * 0.020666985354092053}));
}

struct GradCase {
  std::string name;
  GateCase check;
};
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class UnaryGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(UnaryGradientTest, MatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(GetParam().check);
}

INSTANTIATE_TEST_SUITE_P(
    Gates, UnaryGradientTest,
    ::testing::Values(
        GradCase{"neg", {.op = "neg", .shapes = {{2, 3}}}},
        GradCase{"exp", {.op = "exp", .shapes = {{2, 3}}}},
        GradCase{"log", {.op = "log", .shapes = {{2, 3}}, .low = 0.5, .high = 3}},
        // |x| >= 0.5: away from the pole at 0.
        GradCase{"reciprocal",
                 {.op = "reciprocal",
                  .shapes = {{2, 3}},
                  .adjust = [](int, double v) { return v >= 0 ? v + 0.5 : v - 0.5; }}},
        GradCase{"add_scalar_default", {.op = "add_scalar", .shapes = {{2, 3}}}},
        GradCase{"add_scalar_c", {.op = "add_scalar", .shapes = {{2, 3}}, .attrs = {{"c", 2.5}}}},
        GradCase{"mul_scalar_default", {.op = "mul_scalar", .shapes = {{2, 3}}}},
        GradCase{"mul_scalar_a", {.op = "mul_scalar", .shapes = {{2, 3}}, .attrs = {{"a", -3.0}}}},
        GradCase{"square", {.op = "square", .shapes = {{2, 3}}}},
        GradCase{"sqrt", {.op = "sqrt", .shapes = {{2, 3}}, .low = 0.5, .high = 3}},
        GradCase{"sigmoid", {.op = "sigmoid", .shapes = {{2, 3}}, .low = -4, .high = 4}},
        GradCase{"tanh", {.op = "tanh", .shapes = {{2, 3}}}},
        GradCase{"tanh_scalar", {.op = "tanh", .shapes = {{}}}},
        GradCase{"erf", {.op = "erf", .shapes = {{2, 3}}}},
        GradCase{"relu", {.op = "relu", .shapes = {{3, 4}}, .adjust = AwayFromZero}},
        GradCase{"leaky_relu_default",
                 {.op = "leaky_relu", .shapes = {{3, 4}}, .adjust = AwayFromZero}},
        GradCase{"leaky_relu_alpha",
                 {.op = "leaky_relu",
                  .shapes = {{3, 4}},
                  .attrs = {{"alpha", 0.2}},
                  .adjust = AwayFromZero}}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

TEST(UnaryGatesTest, GradientGatesAreInternal) {
  const GateRegistry& registry = BuiltinGates();
  const std::vector<std::string> public_ops = registry.PublicOps();
  for (const char* op :
       {"exp", "log", "reciprocal", "square", "sqrt", "sigmoid", "tanh", "erf", "relu", "leaky_relu"}) {
    const std::string grad = std::string(op) + "_grad";
    const Gate* gate = registry.Find(grad);
    ASSERT_NE(gate, nullptr) << grad;
    EXPECT_TRUE(gate->internal()) << grad;
    EXPECT_FALSE(gate->differentiable()) << grad;
    EXPECT_THAT(public_ops, ::testing::Contains(op));
    EXPECT_THAT(public_ops, ::testing::Not(::testing::Contains(grad)));
  }
}

TEST(UnaryGatesTest, KeepsTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3});
  StatusOr<ValueId> y = g.AddNode("y", "leaky_relu", {x}, {{"alpha", 0.1}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(g.value(*y).shape, (Shape{kBatchDim, 3}));
}

TEST(UnaryGatesTest, AttributeOfTheWrongTypeNamesTheNode) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{3});
  StatusOr<ValueId> y = g.AddNode("shift", "add_scalar", {x}, {{"c", std::string("two")}});
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node 'shift'"));
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("'c' must be float"));
}

TEST(UnaryGatesTest, UnknownAttributeNamesTheNode) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{3});
  StatusOr<ValueId> y = g.AddNode("act", "relu", {x}, {{"alpha", 0.1}});
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node 'act'"));
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("unknown attribute 'alpha'"));
}

}  // namespace
}  // namespace backflow
