#include "engine/autodiff/autodiff.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "tests/testing/test_gates.h"

namespace backflow {
namespace {

bool HasNodeWithPrefix(const Graph& g, const std::string& prefix) {
  for (const Node& n : g.nodes()) {
    if (n.name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// L = a*x + b*c: only the branch through a needs a gradient when only a is asked for.
TEST(AutodiffTest, OnlyWhatNeedsAGradientGetsOne) {
  Graph g(BuiltinGates());
  const ValueId a = *g.AddParameter("a", Shape{});
  const ValueId x = *g.AddPlaceholder("x", Shape{});
  const ValueId b = *g.AddParameter("b", Shape{});
  const ValueId c = *g.AddPlaceholder("c", Shape{});
  const ValueId ax = *g.AddNode("ax", "mul", {a, x});
  const ValueId bc = *g.AddNode("bc", "mul", {b, c});
  const ValueId loss = *g.AddNode("L", "add", {ax, bc});
  const ValueId wrt[] = {a};
  ASSERT_TRUE(AppendBackward(g, loss, wrt).ok());
  EXPECT_TRUE(HasNodeWithPrefix(g, "ax/grad/"));
  EXPECT_FALSE(HasNodeWithPrefix(g, "bc/grad/"));
  // mul's backward computes dy * x for a only, never dy * a for x.
  int mul_grads = 0;
  for (const Node& n : g.nodes()) mul_grads += n.op == "mul_grad";
  EXPECT_EQ(mul_grads, 1);
}

TEST(AutodiffTest, AValueThatDoesNotReachTheTargetGetsAZeroGradient) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{3});
  const ValueId unused = *g->AddParameter("unused", Shape{2, 2});
  const ValueId loss = *g->AddNode("L", "sum", {x});
  const ValueId wrt[] = {unused, x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(g);
  Tensor xv = Tensor::FromValues(DType::kFloat64, Shape{3}, std::vector<double>{1, 2, 3});
  Tensor uv = Tensor(DType::kFloat64, Shape{2, 2});
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xv}, {"unused", &uv}}, *grads);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].ToDoubles(), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ((*out)[1].ToDoubles(), (std::vector<double>{1, 1, 1}));
}

// A diamond: y = u * v with u = v = exp(x) reaches x along two paths.
TEST(AutodiffTest, GradientsThroughADiamondAddUp) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{});
  const ValueId e = *g->AddNode("e", "exp", {x});
  const ValueId y = *g->AddNode("y", "mul", {e, e});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, y, wrt);
  ASSERT_TRUE(grads.ok());
  Program program(g);
  Tensor xv = Tensor::Scalar(DType::kFloat64, 0.5);
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xv}}, *grads);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_NEAR((*out)[0].at(0), 2 * std::exp(1.0), 1e-12);  // d/dx e^(2x)
}

TEST(AutodiffTest, TheTargetMustBeAScalar) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId y = *g.AddNode("y", "exp", {x});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(g, y, wrt);
  EXPECT_EQ(grads.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(grads.status().message(),
            "'y' has shape [N, 3]: gradients are taken of a scalar (one element)");
}

TEST(AutodiffTest, AGateWithoutGradientOnThePathIsReportedByName) {
  auto probe = std::make_shared<testing::Probe>();
  auto registry = testing::MakeProbeRegistry(probe);
  Graph g(*registry);
  const ValueId x = *g.AddPlaceholder("x", Shape{});
  const ValueId o = *g.AddNode("blocker", "opaque", {x});
  const ValueId y = *g.AddNode("y", "exp", {o});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(g, y, wrt);
  EXPECT_EQ(grads.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(grads.status().message(),
            "node 'blocker' (opaque): has no gradient, but a gradient must flow through it");
}

TEST(AutodiffTest, OpenBatchDimensionsFlowThroughBackward) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 2});
  const ValueId w = *g->AddParameter("w", Shape{2});
  const ValueId xw = *g->AddNode("xw", "mul", {x, w});
  const ValueId loss = *g->AddNode("L", "sum", {xw});
  const ValueId wrt[] = {w};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  EXPECT_EQ(g->value((*grads)[0]).shape, (Shape{2}));
  Program program(g);
  Tensor xv = Tensor::FromValues(DType::kFloat32, Shape{3, 2}, std::vector<double>{1, 2, 3, 4, 5, 6});
  Tensor wv = Tensor::FromValues(DType::kFloat32, Shape{2}, std::vector<double>{1, 1});
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xv}, {"w", &wv}}, *grads);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].ToDoubles(), (std::vector<double>{9, 12}));  // column sums of x
}

}  // namespace
}  // namespace backflow
