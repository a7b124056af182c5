// softmax and log_softmax in float32, on oneDNN's softmax primitives where the axis is innermost,
// against the float64 reference loops: forward and gradient, on odd sizes, batch 1, ranks 1 to 4,
// axes first, middle and last, and inputs in the thousands (the shift by max x must hold).
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
  Shape shape;
  int64_t axis;
  double offset = 0;  // added to every input
  double spread = 3;  // inputs drawn from offset + [-spread, spread]
};

// y and dL/dx for L = sum(op(x) * r), in `dtype`.
std::vector<Tensor> RunWithGradient(const std::string& op, const Case& c, DType dtype,
                                    const std::vector<double>& xv, const std::vector<double>& rv) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *graph->AddPlaceholder("x", c.shape);
  const ValueId r = *graph->AddPlaceholder("r", c.shape);
  const ValueId y = *graph->AddNode("y", op, {x}, {{"axis", c.axis}});
  const ValueId yr = *graph->AddNode("yr", "mul", {y, r});
  const ValueId loss = *graph->AddNode("L", "sum", {yr});
  const ValueId wrt[] = {x};
  const std::vector<ValueId> fetches = {y, (*AppendBackward(*graph, loss, wrt))[0]};
  Program program(graph);
  Tensor xt = Tensor::FromValues(dtype, c.shape, xv);
  Tensor rt = Tensor::FromValues(dtype, c.shape, rv);
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xt}, {"r", &rt}}, fetches);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? std::move(*out) : std::vector<Tensor>{};
}

class SoftmaxDnnlTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SoftmaxDnnlTest, Float32EqualsTheFloat64Reference) {
  const std::string& op = GetParam();
  const Case cases[] = {
      {{7}, 0},
      {{1, 13}, -1},
      {{5, 17}, 1},
      {{3, 1000}, -1},
      {{1, 9, 1}, 1},      // a middle axis with only a unit axis after it: oneDNN
      {{6, 11, 1, 1}, 1},  // the same, rank 4
      {{3, 5, 7}, 1},      // a middle axis with elements after it: the reference loops
      {{9, 4}, 0},         // a first axis
      {{2, 3, 5, 7}, 3},
      {{1, 1, 1, 33}, -1},
      {{4, 19}, -1, 1000, 50},  // large inputs, a wide spread
      {{4, 19}, -1, -3000, 5},
  };
  std::mt19937 rng(5);
  for (const Case& c : cases) {
    const std::string what = op + " " + c.shape.ToString() + " axis " + std::to_string(c.axis);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> xv(static_cast<size_t>(c.shape.num_elements())), rv(xv.size());
    // Both dtypes get the same float32 values, so only the kernels differ.
    for (double& v : xv) v = static_cast<float>(c.offset + c.spread * u(rng));
    for (double& v : rv) v = static_cast<float>(2 * u(rng));
    const std::vector<Tensor> f32 = RunWithGradient(op, c, DType::kFloat32, xv, rv);
    const std::vector<Tensor> f64 = RunWithGradient(op, c, DType::kFloat64, xv, rv);
    ASSERT_EQ(f32.size(), 2u) << what;
    ASSERT_EQ(f64.size(), 2u) << what;
    // log_softmax subtracts a constant from inputs of magnitude offset + spread, and the gradient
    // terms of order 1 (dy, and e^y or y times a sum of dy): each gets an absolute bound of a few
    // float32 roundings at that magnitude.
    const double input_ulp = std::ldexp(std::abs(c.offset) + c.spread, -23);
    for (size_t f = 0; f < 2; ++f) {
      const double absolute = f == 0 ? 1e-6 + 4 * input_ulp : 1e-5;
      ASSERT_EQ(f32[f].dtype(), DType::kFloat32) << what;
      for (int64_t i = 0; i < c.shape.num_elements(); ++i) {
        const double want = f64[f].at(i);
        ASSERT_NEAR(f32[f].at(i), want, 1e-5 * std::abs(want) + absolute)
            << what << (f == 0 ? " forward" : " gradient") << " at " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Gates, SoftmaxDnnlTest, ::testing::Values("softmax", "log_softmax"));

}  // namespace
}  // namespace backflow
