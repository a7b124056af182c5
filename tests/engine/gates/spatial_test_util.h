// Test helpers shared by conv_test.cc and pool_test.cc.
//
// Note [Finite differences on many outputs]
// The shared checker (tests/testing/gradient_checker.h) differentiates L = sum(op(x) * R) with a
// fixed step h = 1e-6 and a purely relative error. For gates with a few hundred outputs L is a
// sum of a few hundred products, whose rounding (about 1e-16 of their magnitudes) divided by
// 2h leaves each numeric derivative with an absolute error near 1e-8; gradient elements where
// the random signs of R cancel are as small as 1e-4, so the relative error reaches 1e-5 and
// more, whatever the gate gets right. The spatial gates are linear in each input element
// (conv2d is bilinear in x and w and affine in b; average pooling is linear; max pooling is
// linear while a step moves no window's arg-max), so a central difference is exact for any
// step that keeps to the linear piece, up to rounding. ExpectGradientsMatchLinearDifferences
// takes such a large step, which shrinks the rounding by orders of magnitude and lets the
// gradients be held to 1e-8 and tighter; the shared checker still runs on every case with a
// tolerance that allows for its rounding.
#ifndef BACKFLOW_TESTS_ENGINE_GATES_SPATIAL_TEST_UTIL_H_
#define BACKFLOW_TESTS_ENGINE_GATES_SPATIAL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"

namespace backflow::spatial_test {

// float64 values in [-1, 1] (or, with small_integers, in {0, 1, 2}, for ties) that float32
// holds exactly, so float32 and float64 runs see the same inputs.
inline Tensor RandomTensor(const Shape& shape, unsigned seed, bool small_integers = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::uniform_int_distribution<int> ints(0, 2);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double& x : v) x = small_integers ? ints(rng) : static_cast<float>(dist(rng));
  return Tensor::FromValues(DType::kFloat64, shape, v);
}

// L = sum(op(inputs) * R) in float64 for a fixed random R; autodiff's gradient of every input
// against central differences with `step`; see Note [Finite differences on many outputs].
inline void ExpectGradientsMatchLinearDifferences(const std::string& op, std::vector<Tensor> xs,
                                                  const Attributes& attrs, double step,
                                                  double tolerance) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  std::vector<ValueId> inputs;
  FeedMap feeds;
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string name = "x" + std::to_string(i);
    inputs.push_back(*g->AddPlaceholder(name, xs[i].shape()));
    feeds[name] = &xs[i];
  }
  StatusOr<ValueId> y = g->AddNode("y", op, inputs, attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const ValueId r = *g->AddConstant("r", RandomTensor(g->value(*y).shape, 99));
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("p", "mul", {*y, r})});
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, inputs);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(g);
  StatusOr<std::vector<Tensor>> analytic = program.Run(feeds, *grads);
  ASSERT_TRUE(analytic.ok()) << analytic.status().ToString();
  const ValueId fetch[] = {loss};
  auto loss_now = [&] { return (*program.Run(feeds, fetch))[0].at(0); };
  for (size_t i = 0; i < xs.size(); ++i) {
    for (int64_t j = 0; j < xs[i].num_elements(); ++j) {
      double& v = xs[i].data<double>()[j];
      const double saved = v;
      v = saved + step;
      const double up = loss_now();
      v = saved - step;
      const double down = loss_now();
      v = saved;
      const double numeric = (up - down) / (2 * step);
      const double a = (*analytic)[i].at(j);
      EXPECT_LE(std::abs(a - numeric), tolerance * std::max(std::abs(a), std::abs(numeric)))
          << op << ": input " << i << " element " << j << ": analytic " << a << " numeric "
          << numeric;
    }
  }
}

}  // namespace backflow::spatial_test

#endif  // BACKFLOW_TESTS_ENGINE_GATES_SPATIAL_TEST_UTIL_H_
