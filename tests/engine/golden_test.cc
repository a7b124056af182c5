// Every worked example of ../shared/seeds/GOLDEN.md, loaded from the graph files in
// models/seeds/, run forward and backward through the engine in float64 (to 1e-6 relative) and
// float32 (to 1e-5 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "engine/api/import.h"
#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/optim/initializers.h"
#include "tests/testing/golden_cases.h"

namespace backflow {
namespace {

using testing::GoldenCase;
using testing::RelativeError;

class GoldenTest : public ::testing::TestWithParam<std::tuple<GoldenCase, DType>> {};

TEST_P(GoldenTest, ForwardAndBackwardMatchTheSeeds) {
  const auto& [c, dtype] = GetParam();
  const double tolerance = dtype == DType::kFloat64 ? 1e-6 : 1e-5;
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/seeds/" + c.file + ".pbtxt");
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> imported = ImportGraph(*proto);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto graph = std::make_shared<Graph>(std::move(*imported));

  std::vector<ValueId> wrt;
  for (const auto& [name, _] : c.gradients) wrt.push_back(*graph->Find(name));
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, graph->loss(), wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();

  StatusOr<std::unordered_map<std::string, Tensor>> params =
      InitializeParameters(*graph, dtype, /*seed=*/7);
  ASSERT_TRUE(params.ok()) << params.status().ToString();
  std::map<std::string, Tensor> inputs;
  for (const auto& [name, value] : c.inputs) inputs[name] = Tensor::Scalar(dtype, value);
  FeedMap feeds;
  for (const auto& [name, tensor] : inputs) feeds[name] = &tensor;
  for (const auto& [name, tensor] : *params) feeds[name] = &tensor;

  std::vector<ValueId> fetches = {graph->loss()};
  fetches.insert(fetches.end(), grads->begin(), grads->end());
  Program program(graph);
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, fetches);
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  EXPECT_EQ((*out)[0].dtype(), dtype);
  EXPECT_LE(RelativeError((*out)[0].at(0), c.output), tolerance)
      << "output " << (*out)[0].at(0) << " expected " << c.output;
  size_t k = 1;
  for (const auto& [name, expected] : c.gradients) {
    const double actual = (*out)[k++].at(0);
    EXPECT_LE(RelativeError(actual, expected), tolerance)
        << "d/d" << name << " = " << actual << ", expected " << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, GoldenTest,
                         ::testing::Combine(::testing::ValuesIn(testing::GoldenCases()),
                                            ::testing::Values(DType::kFloat64, DType::kFloat32)),
                         [](const auto& info) {
                           return std::get<0>(info.param).file +
                                  (std::get<1>(info.param) == DType::kFloat64 ? "_f64" : "_f32");
                         });

// Gradients add up at forks through one explicit sum node (Note [Gradient accumulation at
// forks]): in the staged circuit x feeds three stages and y two.
TEST(GoldenStructure, ForksAreSummedByExplicitAddN) {
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/seeds/staged.pbtxt");
  ASSERT_TRUE(proto.ok());
  StatusOr<Graph> graph = ImportGraph(*proto);
  ASSERT_TRUE(graph.ok());
  const ValueId wrt[] = {*graph->Find("x"), *graph->Find("y")};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, graph->loss(), wrt);
  ASSERT_TRUE(grads.ok());
  for (int k = 0; k < 2; ++k) {
    const Value& g = graph->value((*grads)[k]);
    ASSERT_NE(g.producer, kNoId);
    const Node& sum = graph->node(g.producer);
    EXPECT_EQ(sum.op, "add_n");
    EXPECT_EQ(sum.inputs.size(), k == 0 ? 3u : 2u) << "fork into " << (k == 0 ? "x" : "y");
  }
}

}  // namespace
}  // namespace backflow
