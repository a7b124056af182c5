// Note [Layouts between oneDNN gates]: blocked layouts stay between consecutive oneDNN gates,
// and the results still match the plain float64 reference kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

// x -> conv(16@3x3) -> relu -> max_pool 2x2 -> conv(16@3x3) -> avg_pool 2x2 -> flatten -> sum:
// every edge up to the flatten joins oneDNN gates (relu runs on oneDNN's eltwise), forward and
// backward.
struct Net {
  std::shared_ptr<Graph> graph = std::make_shared<Graph>(BuiltinGates());
  std::vector<ValueId> fetches;
};

Net BuildNet() {
  Net net;
  Graph& g = *net.graph;
  InitializerSpec he{.kind = InitializerSpec::Kind::kHe};
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 8, 12, 12});
  const ValueId w1 = *g.AddParameter("w1", Shape{16, 8, 3, 3}, he);
  const ValueId w2 = *g.AddParameter("w2", Shape{16, 16, 3, 3}, he);
  InitializerSpec small{.kind = InitializerSpec::Kind::kUniform, .a = -0.5, .b = 0.5};
  const ValueId b1 = *g.AddParameter("b1", Shape{16}, small);
  const ValueId b2 = *g.AddParameter("b2", Shape{16}, small);
  const Attributes pad1{{"padding", std::vector<int64_t>{1, 1}}};
  const Attributes pool2{{"kernel", std::vector<int64_t>{2, 2}}};
  const ValueId c1 = *g.AddNode("c1", "conv2d", {x, w1, b1}, pad1);
  const ValueId r1 = *g.AddNode("r1", "relu", {c1});
  const ValueId p1 = *g.AddNode("p1", "max_pool2d", {r1}, pool2);
  const ValueId c2 = *g.AddNode("c2", "conv2d", {p1, w2, b2}, pad1);
  const ValueId p2 = *g.AddNode("p2", "avg_pool2d", {c2}, pool2);
  const ValueId f = *g.AddNode("f", "flatten", {p2});
  const ValueId sq = *g.AddNode("sq", "square", {f});
  const ValueId loss = *g.AddNode("L", "sum", {sq});
  const ValueId wrt[] = {w1, w2, b1, b2, x};
  std::vector<ValueId> grads = *AppendBackward(g, loss, wrt);
  net.fetches = {loss};
  net.fetches.insert(net.fetches.end(), grads.begin(), grads.end());
  return net;
}

TEST(LayoutTest, BlockedLayoutsStayBetweenOneDnnGatesAndResultsMatchTheReference) {
  Net net = BuildNet();
  Program program(net.graph);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> xv(2 * 8 * 12 * 12);
  for (double& v : xv) v = u(rng);
  std::vector<Tensor> inputs[2];  // float32, float64
  const DType dtypes[2] = {DType::kFloat32, DType::kFloat64};
  FeedMap feeds[2];
  std::unordered_map<std::string, Tensor> params[2];
  for (int k = 0; k < 2; ++k) {
    inputs[k].push_back(Tensor::FromValues(dtypes[k], Shape{2, 8, 12, 12}, xv));
    params[k] = *InitializeParameters(*net.graph, dtypes[k], /*seed=*/3);
    feeds[k]["x"] = &inputs[k][0];
    for (const auto& [name, t] : params[k]) feeds[k][name] = &t;
  }

  StatusOr<Program::PlanInfo> info = program.Explain(feeds[0], net.fetches);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  RecordProperty("layout_values", static_cast<int>(info->layout_values));
  EXPECT_GE(info->layout_values, 2u) << "oneDNN gates passed only plain tensors";
  EXPECT_EQ(program.Explain(feeds[1], net.fetches)->layout_values, 0u);  // float64: reference

  StatusOr<std::vector<Tensor>> f32 = program.Run(feeds[0], net.fetches);
  StatusOr<std::vector<Tensor>> f64 = program.Run(feeds[1], net.fetches);
  ASSERT_TRUE(f32.ok()) << f32.status().ToString();
  ASSERT_TRUE(f64.ok()) << f64.status().ToString();
  for (size_t k = 0; k < net.fetches.size(); ++k) {
    const Tensor& a = (*f32)[k];
    const Tensor& e = (*f64)[k];
    ASSERT_EQ(a.shape(), e.shape()) << "fetch " << k;
    double scale = 0;
    for (int64_t i = 0; i < e.num_elements(); ++i) scale = std::max(scale, std::abs(e.at(i)));
    for (int64_t i = 0; i < e.num_elements(); ++i) {
      ASSERT_NEAR(a.at(i), e.at(i), 1e-4 * scale + 1e-6) << "fetch " << k << " element " << i;
    }
  }
}

}  // namespace
}  // namespace backflow
