// layer_norm in float32, on oneDNN's layer_normalization primitives (layer_norm and
// layer_norm_grad_x), against the float64 reference loops: forward and the gradients of x (and of
// weight and bias, reference in both), on odd sizes, batch 1, one or several normalised axes,
// affine on and off, inputs far from zero.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"

namespace backflow {
namespace {

struct Case {
  Shape x;
  int64_t normalized_ndim;
  double offset = 0;  // added to every x
};

struct Values {
  std::vector<double> x, r, weight, bias;
};

Shape Trailing(const Case& c) {
  const std::vector<int64_t>& d = c.x.dims();
  return Shape(std::vector<int64_t>(d.end() - c.normalized_ndim, d.end()));
}

// y and the gradients of x (and weight, bias when affine) for L = sum(layer_norm(x) * r).
std::vector<Tensor> RunWithGradients(const Case& c, bool affine, DType dtype, const Values& v) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const Shape trailing = Trailing(c);
  std::vector<ValueId> in = {*graph->AddPlaceholder("x", c.x)};
  if (affine) {
    in.push_back(*graph->AddPlaceholder("w", trailing));
    in.push_back(*graph->AddPlaceholder("b", trailing));
  }
  const ValueId r = *graph->AddPlaceholder("r", c.x);
  const ValueId y = *graph->AddNode("y", "layer_norm", in,
                                    {{"normalized_ndim", c.normalized_ndim}, {"epsilon", 1e-5}});
  const ValueId loss = *graph->AddNode("L", "sum", {*graph->AddNode("yr", "mul", {y, r})});
  std::vector<ValueId> fetches = {y};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, loss, in);
  EXPECT_TRUE(grads.ok()) << grads.status().ToString();
  if (grads.ok()) fetches.insert(fetches.end(), grads->begin(), grads->end());
  Program program(graph);
  Tensor x = Tensor::FromValues(dtype, c.x, v.x), rt = Tensor::FromValues(dtype, c.x, v.r);
  Tensor w = Tensor::FromValues(dtype, trailing, v.weight);
  Tensor b = Tensor::FromValues(dtype, trailing, v.bias);
  FeedMap feeds = {{"x", &x}, {"r", &rt}};
  if (affine) feeds.insert({{"w", &w}, {"b", &b}});
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, fetches);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? std::move(*out) : std::vector<Tensor>{};
}

TEST(LayerNormDnnlTest, Float32EqualsTheFloat64Reference) {
  const Case cases[] = {
      {{1, 7}, 1},       {{5, 13}, 1},    {{3, 4, 9}, 1}, {{3, 4, 9}, 2},
      {{2, 3, 5, 7}, 3}, {{1, 1, 31}, 1}, {{9}, 1},       {{6, 17}, 1, 100},
  };
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  // Both dtypes get the same float32 values, so only the kernels differ.
  auto draw = [&](int64_t n, double offset, double scale) {
    std::vector<double> v(static_cast<size_t>(n));
    for (double& e : v) e = static_cast<float>(offset + scale * u(rng));
    return v;
  };
  for (const Case& c : cases) {
    for (bool affine : {false, true}) {
      const std::string what = c.x.ToString() + " normalized_ndim " +
                               std::to_string(c.normalized_ndim) + (affine ? " affine" : "");
      const int64_t n = Trailing(c).num_elements();
      const Values v{draw(c.x.num_elements(), c.offset, 2), draw(c.x.num_elements(), 0, 2),
                     draw(n, 1, 0.5), draw(n, 0, 1)};
      const std::vector<Tensor> f32 = RunWithGradients(c, affine, DType::kFloat32, v);
      const std::vector<Tensor> f64 = RunWithGradients(c, affine, DType::kFloat64, v);
      ASSERT_EQ(f32.size(), affine ? 4u : 2u) << what;
      ASSERT_EQ(f64.size(), f32.size()) << what;
      for (size_t t = 0; t < f32.size(); ++t) {
        ASSERT_EQ(f32[t].dtype(), DType::kFloat32) << what;
        for (int64_t i = 0; i < f32[t].num_elements(); ++i) {
          const double want = f64[t].at(i);
          ASSERT_NEAR(f32[t].at(i), want, 2e-5 * std::abs(want) + 2e-5)
              << what << " output " << t << " at " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace backflow
