// gelu in both forms: forward and gradient values from torch 1.13 (float64):
//   x = torch.tensor([-2, -0.5, 0, 0.7, 3], dtype=torch.float64, requires_grad=True)
//   y = torch.nn.functional.gelu(x, approximate=a); y.sum().backward()  # a in "none", "tanh"
#include "engine/gates/activation.h"
#include "engine/gates/builtin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/ir/gate_registry.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using ::testing::DoubleNear;
using ::testing::Pointwise;

const std::vector<double> kX = {-2, -0.5, 0, 0.7, 3};

struct GeluCase {
  std::string form;
  std::vector<double> y;
  std::vector<double> dydx;
};

const GeluCase kCases[] = {
    {"none",
     {-0.04550026389635842, -0.15426876936299344, 0.0, 0.5306254434438489, 2.99595030590511},
     {-0.08523180107819692, 0.13250487534383712, 0.5, 0.9766141011336599, 1.011945647204184}},
    {"tanh",
     {-0.04540230591222494, -0.15428599017485606, 0.0, 0.5305701347051167, 2.996362607918227},
     {-0.0860992566236183, 0.13263009646535764, 0.5, 0.976357218656104, 1.0115841666309695}},
};

TEST(GeluTest, ForwardAndGradientMatchTorch) {
  const Shape shape{5};
  for (const GeluCase& c : kCases) {
    const Attributes attrs = {{"approximate", c.form}};
    StatusOr<Tensor> y = RunGate("gelu", {T64(shape, kX)}, attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_THAT(y->ToDoubles(), Pointwise(DoubleNear(1e-15), c.y)) << c.form;
    StatusOr<Tensor> dx =
        RunGate("gelu_grad", {T64(shape, kX), *y, T64(shape, {1, 1, 1, 1, 1})}, attrs);
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), Pointwise(DoubleNear(1e-15), c.dydx)) << c.form;
  }
}

TEST(GeluTest, DefaultIsTheErfForm) {
  StatusOr<Tensor> y = RunGate("gelu", {T64(Shape{5}, kX)});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_THAT(y->ToDoubles(), Pointwise(DoubleNear(1e-15), kCases[0].y));
}

TEST(GeluTest, Float32MatchesTorch) {
  const Tensor x = Tensor::FromValues(DType::kFloat32, Shape{5}, kX);
  for (const GeluCase& c : kCases) {
    StatusOr<Tensor> y = RunGate("gelu", {x}, {{"approximate", c.form}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->dtype(), DType::kFloat32);
    EXPECT_THAT(y->ToDoubles(), Pointwise(DoubleNear(1e-6), c.y)) << c.form;
  }
}

TEST(GeluTest, UnknownFormIsAnErrorNamingTheNode) {
  StatusOr<Tensor> y = RunGate("gelu", {T64(Shape{5}, kX)}, {{"approximate", std::string("x")}});
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("approximate"));
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node '"));
}

TEST(GeluTest, GradientGateIsInternal) {
  const Gate* gate = BuiltinGates().Find("gelu_grad");
  ASSERT_NE(gate, nullptr);
  EXPECT_TRUE(gate->internal());
  EXPECT_FALSE(gate->differentiable());
}

}  // namespace
}  // namespace backflow
