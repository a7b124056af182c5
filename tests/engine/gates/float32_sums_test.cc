// Note [Float32 sums accumulate in double]: float32 reductions and losses over a million
// elements agree with the same computation in float64 to 1e-6 relative, as PyTorch's float32
// does (serial float32 accumulation was off by up to 4.5e-4).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/evaluate.h"
#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::RunGate;

constexpr double kTolerance = 1e-6;

// `count` values drawn from [low, high), as a float64 tensor of `shape`.
Tensor Uniform(Shape shape, double low, double high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> values(static_cast<size_t>(shape.num_elements()));
  for (double& v : values) v = dist(rng);
  // Round through float32 so that both precisions start from the same numbers.
  return Tensor::FromValues(DType::kFloat32, shape, values).CastTo(DType::kFloat64);
}

Tensor Labels(int64_t n, int64_t classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> dist(0, classes - 1);
  std::vector<double> values(static_cast<size_t>(n));
  for (double& v : values) v = static_cast<double>(dist(rng));
  return Tensor::FromValues(DType::kFloat64, Shape{n}, values);
}

double RelativeError(double got, double want) {
  return want == 0 ? std::abs(got) : std::abs(got - want) / std::abs(want);
}

// The largest relative error of `op` on `inputs` in float32 against float64.
double Float32Error(const std::string& op, const std::vector<Tensor>& inputs,
                    const Attributes& attrs = {}) {
  std::vector<Tensor> narrow;
  for (const Tensor& t : inputs) narrow.push_back(t.CastTo(DType::kFloat32));
  StatusOr<Tensor> wide = RunGate(op, inputs, attrs);
  StatusOr<Tensor> got = RunGate(op, narrow, attrs);
  EXPECT_TRUE(wide.ok() && got.ok());
  if (!wide.ok() || !got.ok()) return INFINITY;
  const std::vector<double> w = wide->ToDoubles(), g = got->ToDoubles();
  double worst = 0;
  for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, RelativeError(g[i], w[i]));
  return worst;
}

TEST(Float32SumsTest, SquaredErrorOverAMillionElements) {
  const Tensor y = Uniform(Shape{1000, 1000}, 0, 1, 1), t = Uniform(Shape{1000, 1000}, 0, 1, 2);
  EXPECT_LT(Float32Error("squared_error", {y, t}, {{"reduction", std::string("mean")}}),
            kTolerance);
}

TEST(Float32SumsTest, SigmoidCrossEntropyOverAMillionElements) {
  const Tensor x = Uniform(Shape{1000, 1000}, -4, 4, 3), t = Uniform(Shape{1000, 1000}, 0, 1, 4);
  EXPECT_LT(Float32Error("sigmoid_cross_entropy", {x, t}), kTolerance);
}

TEST(Float32SumsTest, SoftmaxCrossEntropyAndHingeOver200000Rows) {
  const Tensor x = Uniform(Shape{200000, 10}, -3, 3, 5);
  const Tensor labels = Labels(200000, 10, 6);
  EXPECT_LT(Float32Error("softmax_cross_entropy", {x, labels}), kTolerance);
  EXPECT_LT(Float32Error("svm_hinge", {x, labels}), kTolerance);
}

TEST(Float32SumsTest, SumAndMeanOverRowsAndOverEverything) {
  const Tensor x = Uniform(Shape{200000, 10}, 0, 1, 7);
  EXPECT_LT(Float32Error("sum", {x}, {{"axes", std::vector<int64_t>{0}}}), kTolerance);
  EXPECT_LT(Float32Error("mean", {x}), kTolerance);
}

// The bias gradient of logits = x + b: reduce_like sums the broadcast gradient over 200,000 rows.
TEST(Float32SumsTest, BroadcastBiasGradientOver200000Rows) {
  auto error = [](DType dtype) -> std::vector<double> {
    Graph g(BuiltinGates());
    const ValueId x = *g.AddPlaceholder("x", Shape{200000, 10});
    const ValueId b = *g.AddPlaceholder("b", Shape{10});
    const ValueId labels = *g.AddPlaceholder("labels", Shape{200000});
    const ValueId logits = *g.AddNode("logits", "add", {x, b});
    g.set_loss(*g.AddNode("L", "softmax_cross_entropy", {logits, labels}));
    std::unordered_map<std::string, Tensor> values = {
        {"x", Uniform(Shape{200000, 10}, -3, 3, 8).CastTo(dtype)},
        {"b", Uniform(Shape{10}, -1, 1, 9).CastTo(dtype)},
        {"labels", Labels(200000, 10, 10).CastTo(dtype)}};
    StatusOr<EvaluateResult> result = Evaluate(std::move(g), values, {.wrt = {"b"}});
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? result->gradients[0].second.ToDoubles() : std::vector<double>{};
  };
  const std::vector<double> wide = error(DType::kFloat64), got = error(DType::kFloat32);
  ASSERT_EQ(wide.size(), got.size());
  double worst = 0;
  double scale = 0;  // relative to the largest component: single components may be near 0
  for (double w : wide) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < wide.size(); ++i) worst = std::max(worst, std::abs(got[i] - wide[i]));
  EXPECT_LT(worst / scale, kTolerance);
}

}  // namespace
}  // namespace backflow
