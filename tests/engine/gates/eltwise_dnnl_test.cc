// The float32 oneDNN eltwise kernels (relu, leaky_relu, tanh, sigmoid, exp, gelu and their
// gradients) against the plain float64 loops, on tensors big enough to take the oneDNN path.
#include "engine/gates/builtin.h"
#include "engine/gates/eltwise_dnnl.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"

namespace backflow {
namespace {

struct Case {
  std::string op;
  Attributes attrs;
  std::string label = {};  // the test's name, if not the op's
};

class EltwiseDnnlTest : public ::testing::TestWithParam<Case> {};

TEST_P(EltwiseDnnlTest, ForwardAndGradientMatchTheFloat64Loops) {
  const Case& c = GetParam();
  const Shape shape{64, 100};  // above kEltwiseMinElements
  ASSERT_GE(shape.num_elements(), kEltwiseMinElements);
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *graph->AddPlaceholder("x", shape);
  const ValueId r = *graph->AddPlaceholder("r", shape);
  const ValueId y = *graph->AddNode("y", c.op, {x}, c.attrs);
  const ValueId yr = *graph->AddNode("yr", "mul", {y, r});
  const ValueId loss = *graph->AddNode("L", "sum", {yr});
  const ValueId wrt[] = {x};
  const std::vector<ValueId> fetches = {y, (*AppendBackward(*graph, loss, wrt))[0]};
  Program program(graph);

  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-3, 3);
  std::vector<double> xv(static_cast<size_t>(shape.num_elements())), rv(xv.size());
  for (double& v : xv) v = u(rng);
  for (double& v : rv) v = u(rng);
  std::vector<Tensor> out[2];
  const DType dtypes[2] = {DType::kFloat32, DType::kFloat64};
  for (int k = 0; k < 2; ++k) {
    Tensor xt = Tensor::FromValues(dtypes[k], shape, xv);
    Tensor rt = Tensor::FromValues(dtypes[k], shape, rv);
    StatusOr<std::vector<Tensor>> result = program.Run({{"x", &xt}, {"r", &rt}}, fetches);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    out[k] = std::move(*result);
  }
  for (size_t f = 0; f < fetches.size(); ++f) {
    for (int64_t i = 0; i < shape.num_elements(); ++i) {
      const double expected = out[1][f].at(i);
      ASSERT_NEAR(out[0][f].at(i), expected, 2e-5 * std::abs(expected) + 2e-6)
          << c.op << (f == 0 ? " forward" : " gradient") << " at x = " << xv[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Gates, EltwiseDnnlTest,
                         ::testing::Values(Case{"relu", {}},
                                           Case{"leaky_relu", {{"alpha", 0.2}}},
                                           Case{"tanh", {}}, Case{"sigmoid", {}},
                                           Case{"exp", {}}, Case{"gelu", {}},
                                           Case{"gelu",
                                                {{"approximate", std::string("tanh")}},
                                                "gelu_tanh"}),
                         [](const auto& info) {
                           return info.param.label.empty() ? info.param.op : info.param.label;
                         });

}  // namespace
}  // namespace backflow
