#include "engine/gates/dropout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;

constexpr RunInfo kTraining{.training = true, .seed = 42, .step = 7};

Tensor Ramp(DType dtype, int64_t n) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(1.0 + static_cast<double>(i % 13));
  return Tensor::FromValues(dtype, Shape{n}, v);
}

TEST(DropoutTest, IsTheIdentityInInference) {
  const Tensor x = Ramp(DType::kFloat64, 100);
  StatusOr<Tensor> y = RunGate("dropout", {x}, {{"p", 0.9}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(y->at(i), x.at(i));
}

TEST(DropoutTest, DropsAboutPAndScalesTheRestInTraining) {
  constexpr int64_t kN = 200000;
  for (double p : {0.1, 0.5, 0.8}) {
    const Tensor x = Ramp(DType::kFloat64, kN);
    StatusOr<Tensor> y = RunGate("dropout", {x}, {{"p", p}}, kTraining);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    int64_t dropped = 0;
    for (int64_t i = 0; i < kN; ++i) {
      if (y->at(i) == 0.0) {
        ++dropped;
      } else {
        EXPECT_DOUBLE_EQ(y->at(i), x.at(i) / (1.0 - p)) << "element " << i;
      }
    }
    // Binomial(200000, p): the standard deviation of the fraction is under 0.0012.
    EXPECT_NEAR(static_cast<double>(dropped) / kN, p, 0.006) << "p = " << p;
  }
}

TEST(DropoutTest, EdgeProbabilities) {
  const Tensor x = Ramp(DType::kFloat64, 50);
  StatusOr<Tensor> keep = RunGate("dropout", {x}, {{"p", 0.0}}, kTraining);
  StatusOr<Tensor> drop = RunGate("dropout", {x}, {{"p", 1.0}}, kTraining);
  ASSERT_TRUE(keep.ok() && drop.ok());
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(keep->at(i), x.at(i));
    EXPECT_EQ(drop->at(i), 0.0);
  }
}

TEST(DropoutTest, RejectsProbabilityOutsideTheUnitInterval) {
  for (double p : {-0.1, 1.5, std::nan("")}) {
    StatusOr<Tensor> y = RunGate("dropout", {Ramp(DType::kFloat64, 4)}, {{"p", p}}, kTraining);
    ASSERT_FALSE(y.ok());
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node 'y'"));
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("not in [0, 1]"));
  }
}

// Which elements are dropped, as a bit per element.
std::vector<bool> Mask(const Tensor& y) {
  std::vector<bool> m;
  for (int64_t i = 0; i < y.num_elements(); ++i) m.push_back(y.at(i) == 0.0);
  return m;
}

TEST(DropoutTest, MaskIsAFunctionOfSeedStepAndNode) {
  const Tensor x64 = Ramp(DType::kFloat64, 4096);
  const Tensor x32 = Ramp(DType::kFloat32, 4096);
  auto run = [](const Tensor& x, RunInfo info) {
    StatusOr<Tensor> y = RunGate("dropout", {x}, {{"p", 0.5}}, info);
    EXPECT_TRUE(y.ok());
    return Mask(*y);
  };
  const std::vector<bool> base = run(x64, kTraining);
  EXPECT_EQ(run(x64, kTraining), base) << "a replayed step draws the same mask";
  EXPECT_EQ(run(x32, kTraining), base) << "the mask does not depend on the dtype";
  EXPECT_NE(run(x64, RunInfo{.training = true, .seed = 42, .step = 8}), base);
  EXPECT_NE(run(x64, RunInfo{.training = true, .seed = 43, .step = 7}), base);
  // Two nodes of one graph draw different masks.
  EXPECT_NE(DropoutKey(kTraining, "a"), DropoutKey(kTraining, "b"));
}

TEST(DropoutTest, GradientIsTheForwardMaskInTrainingAndIdentityInInference) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  ValueId x = *graph->AddPlaceholder("x", Shape{1000});
  ValueId y = *graph->AddNode("drop", "dropout", {x}, {{"p", 0.4}});
  ValueId loss = *graph->AddNode("loss", "sum", {y});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(graph);
  const Tensor xs = Ramp(DType::kFloat64, 1000);
  const FeedMap feeds{{"x", &xs}};
  const ValueId fetch[] = {y, (*grads)[0]};
  StatusOr<std::vector<Tensor>> train = program.Run(feeds, fetch, RunOptions{.info = kTraining});
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  int64_t dropped = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    const bool kept = (*train)[0].at(i) != 0.0;
    dropped += kept ? 0 : 1;
    EXPECT_DOUBLE_EQ((*train)[1].at(i), kept ? 1.0 / 0.6 : 0.0) << "element " << i;
  }
  EXPECT_GT(dropped, 300);
  EXPECT_LT(dropped, 500);
  StatusOr<std::vector<Tensor>> infer = program.Run(feeds, fetch);
  ASSERT_TRUE(infer.ok());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ((*infer)[1].at(i), 1.0);
}

TEST(DropoutTest, GradientMatchesFiniteDifferencesInTraining) {
  ::backflow::testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "dropout", .shapes = {{3, 7}}, .attrs = {{"p", 0.5}}});
  // And the gradient of the gradient (dropout_grad is linear in dy).
  ::backflow::testing::ExpectGradientsMatchFiniteDifferences(GateCase{
      .op = "dropout_grad", .shapes = {{3, 7}}, .attrs = {{"p", 0.5}, {"mask_of", "n"}}});
}

}  // namespace
}  // namespace backflow
