#include "engine/gates/builtin.h"
#include "engine/gates/gradient_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

void ExpectTensor(const StatusOr<Tensor>& got, const Shape& shape,
                  const std::vector<double>& want) {
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->shape().ToString(), shape.ToString());
  EXPECT_THAT(got->ToDoubles(), ::testing::Pointwise(::testing::DoubleNear(1e-15), want));
}

TEST(AddNTest, SumsOneTwoOrThreeInputs) {
  const Tensor a = T64({2, 2}, {1, 2, 3, 4});
  const Tensor b = T64({2, 2}, {10, 20, 30, 40});
  const Tensor c = T64({2, 2}, {-0.5, 0.25, 0, -4});
  ExpectTensor(RunGate("add_n", {a}), {2, 2}, {1, 2, 3, 4});
  ExpectTensor(RunGate("add_n", {a, b}), {2, 2}, {11, 22, 33, 44});
  ExpectTensor(RunGate("add_n", {a, b, c}), {2, 2}, {10.5, 22.25, 33, 40});
}

TEST(AddNTest, ComputesInFloat32) {
  const Tensor a = Tensor::FromValues(DType::kFloat32, Shape{3}, std::vector<double>{1, 2, 3});
  const Tensor b = Tensor::FromValues(DType::kFloat32, Shape{3}, std::vector<double>{0.5, 0, -3});
  StatusOr<Tensor> y = RunGate("add_n", {a, b, a});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dtype(), DType::kFloat32);
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{2.5, 4, 3}));
}

TEST(AddNTest, GradientMatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences({.op = "add_n", .shapes = {{2, 3}}});
  testing::ExpectGradientsMatchFiniteDifferences(
      {.op = "add_n", .shapes = {{2, 3}, {2, 3}, {2, 3}}});
  testing::ExpectGradientsMatchFiniteDifferences({.op = "add_n", .shapes = {{}, {}, {}}});
}

TEST(AddNTest, MismatchedShapesAreAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId a = *g.AddPlaceholder("a", Shape{2, 3});
  const ValueId b = *g.AddPlaceholder("b", Shape{3});
  StatusOr<ValueId> y = g.AddNode("acc", "add_n", {a, a, b});
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), "node 'acc': input 2 has shape [3], expected [2, 3]");
  StatusOr<ValueId> none = g.AddNode("empty", "add_n", {});
  EXPECT_EQ(none.status().message(), "node 'empty' (add_n): takes at least 1 input(s), got 0");
}

TEST(FillLikeTest, FillsTheShapeOfItsInput) {
  const Tensor x = T64({2, 3}, {1, 2, 3, 4, 5, 6});
  ExpectTensor(RunGate("fill_like", {x}), {2, 3}, {1, 1, 1, 1, 1, 1});
  ExpectTensor(RunGate("fill_like", {x}, {{"value", -2.5}}), {2, 3},
               {-2.5, -2.5, -2.5, -2.5, -2.5, -2.5});
  ExpectTensor(RunGate("fill_like", {T64({}, {7})}, {{"value", 0.0}}), {}, {0});
}

TEST(ReduceLikeTest, SumsAlongTheBroadcastDimensions) {
  const Tensor g = T64({2, 3}, {1, 2, 3, 4, 5, 6});
  ExpectTensor(RunGate("reduce_like", {g, T64({3}, {0, 0, 0})}), {3}, {5, 7, 9});
  ExpectTensor(RunGate("reduce_like", {g, T64({1, 3}, {0, 0, 0})}), {1, 3}, {5, 7, 9});
  ExpectTensor(RunGate("reduce_like", {g, T64({2, 1}, {0, 0})}), {2, 1}, {6, 15});
  ExpectTensor(RunGate("reduce_like", {g, T64({}, {0})}), {}, {21});
  ExpectTensor(RunGate("reduce_like", {g, g}), {2, 3}, {1, 2, 3, 4, 5, 6});
}

TEST(ReduceLikeTest, ComputesInFloat32) {
  const Tensor g =
      Tensor::FromValues(DType::kFloat32, Shape{2, 2}, std::vector<double>{1, 2, 3, 4});
  const Tensor ref = Tensor::FromValues(DType::kFloat32, Shape{2}, std::vector<double>{0, 0});
  StatusOr<Tensor> y = RunGate("reduce_like", {g, ref});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dtype(), DType::kFloat32);
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{4, 6}));
}

TEST(ReduceLikeTest, AShapeItCannotSumDownToIsAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId grad = *g.AddPlaceholder("g", Shape{2, 3});
  const ValueId ref = *g.AddPlaceholder("ref", Shape{4});
  StatusOr<ValueId> y = g.AddNode("rl", "reduce_like", {grad, ref});
  EXPECT_EQ(y.status().message(), "node 'rl': cannot sum [2, 3] down to [4]");
}

TEST(GradientOpsTest, OnlyAddNIsPublicAndDifferentiable) {
  const GateRegistry& registry = BuiltinGates();
  EXPECT_THAT(registry.PublicOps(), ::testing::Contains("add_n"));
  EXPECT_TRUE(registry.Find("add_n")->differentiable());
  for (const char* op : {"fill_like", "reduce_like"}) {
    const Gate* gate = registry.Find(op);
    ASSERT_NE(gate, nullptr) << op;
    EXPECT_TRUE(gate->internal()) << op;
    EXPECT_FALSE(gate->differentiable()) << op;
    EXPECT_THAT(registry.PublicOps(), ::testing::Not(::testing::Contains(op)));
  }
}

}  // namespace
}  // namespace backflow
