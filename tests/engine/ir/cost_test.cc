#include "engine/ir/cost.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "engine/api/import.h"
#include "engine/gates/builtin.h"

namespace backflow {
namespace {

Graph LoadModel(const std::string& relative_path) {
  StatusOr<v1::Graph> proto = LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/" + relative_path);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(*graph);
}

TEST(EstimateForwardFlops, MatMulCountsAMultiplyAddAsTwo) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 784});
  const ValueId w = *g.AddParameter("w", Shape{784, 256});
  ASSERT_TRUE(g.AddNode("h", "matmul", {x, w}).ok());
  // One sample: [1, 784] x [784, 256].
  EXPECT_EQ(EstimateForwardFlops(g), 2 * 784 * 256);
}

TEST(EstimateForwardFlops, MatMulReadsTheContractedDimensionThroughTransposes) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 784});
  const ValueId w = *g.AddParameter("w", Shape{256, 784});  // used as w^T
  ASSERT_TRUE(g.AddNode("h", "matmul", {x, w}, Attributes{{"transpose_b", int64_t{1}}}).ok());
  const ValueId a = *g.AddParameter("a", Shape{5, 3});  // used as a^T: [3, 5]
  const ValueId b = *g.AddParameter("b", Shape{5, 7});
  ASSERT_TRUE(g.AddNode("ab", "matmul", {a, b}, Attributes{{"transpose_a", int64_t{1}}}).ok());
  EXPECT_EQ(EstimateForwardFlops(g), 2 * 784 * 256 + 2 * 3 * 5 * 7);
}

TEST(EstimateForwardFlops, BatchedMatMulCountsEveryProduct) {
  Graph g(BuiltinGates());
  const ValueId a = *g.AddParameter("a", Shape{4, 3, 5});
  const ValueId b = *g.AddParameter("b", Shape{4, 5, 6});
  ASSERT_TRUE(g.AddNode("ab", "matmul", {a, b}).ok());
  EXPECT_EQ(EstimateForwardFlops(g), 4 * 2 * 3 * 5 * 6);
}

TEST(EstimateForwardFlops, LinearAddsTheBiasOnlyWhenThereIsOne) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 10});
  const ValueId w = *g.AddParameter("w", Shape{10, 4});
  const ValueId b = *g.AddParameter("b", Shape{4});
  ASSERT_TRUE(g.AddNode("with_bias", "linear", {x, w, b}).ok());
  ASSERT_TRUE(g.AddNode("without_bias", "linear", {x, w}).ok());
  EXPECT_EQ(EstimateForwardFlops(g), (2 * 10 * 4 + 4) + (2 * 10 * 4));
}

TEST(EstimateForwardFlops, LeNet5AddsUpLayerByLayer) {
  Graph g = LoadModel("models/lenet5.pbtxt");
  // Per sample (out = output elements):
  //   c1       conv 1->6 @ 5x5, out 6*28*28 = 4704:  2*4704*1*25 + 4704   = 239 904
  //   c1_relu  4704                                                      =   4 704
  //   s2       max pool 2x2, out 6*14*14 = 1176:     1176*4               =   4 704
  //   c3       conv 6->16 @ 5x5, out 16*10*10 = 1600: 2*1600*6*25 + 1600  = 481 600
  //   c3_relu  1600                                                      =   1 600
  //   s4       max pool 2x2, out 16*5*5 = 400:       400*4                =   1 600
  //   s4_flat  400                                                       =     400
  //   f5       linear 400->120:                      2*400*120 + 120      =  96 120
  //   f5_relu  120                                                       =     120
  //   f6       linear 120->84:                       2*120*84 + 84        =  20 244
  //   f6_relu  84                                                        =      84
  //   logits   linear 84->10:                        2*84*10 + 10         =   1 690
  //   loss     softmax cross-entropy over 10 logits: 5*10                 =      50
  //   accuracy over 10 logits:                       5*10                 =      50
  //                                                                        ---------
  //                                                                         852 870
  const int64_t expected = (2 * 4704 * 1 * 25 + 4704) + 4704 + 1176 * 4 +
                           (2 * 1600 * 6 * 25 + 1600) + 1600 + 400 * 4 + 400 +
                           (2 * 400 * 120 + 120) + 120 + (2 * 120 * 84 + 84) + 84 +
                           (2 * 84 * 10 + 10) + 5 * 10 + 5 * 10;
  EXPECT_EQ(expected, 852870);
  EXPECT_EQ(EstimateForwardFlops(g), expected);
}

TEST(EstimateForwardFlops, ScalarCircuitCostsOnePerNode) {
  // f = (x + y) * z: two scalar nodes.
  EXPECT_EQ(EstimateForwardFlops(LoadModel("models/seeds/add_mul.pbtxt")), 2);
  // The gate-by-gate sigmoid neuron: eight scalar nodes.
  EXPECT_EQ(EstimateForwardFlops(LoadModel("models/seeds/sigmoid_neuron_gates.pbtxt")), 8);
}

TEST(EstimateForwardFlops, ElementwiseAndLossGatesFollowTheModel) {
  Graph g(BuiltinGates());
  const ValueId y = *g.AddPlaceholder("y", Shape{kBatchDim, 3, 4});
  const ValueId t = *g.AddPlaceholder("t", Shape{kBatchDim, 3, 4});
  const ValueId d = *g.AddNode("d", "tanh", {y});             // 12
  ASSERT_TRUE(g.AddNode("L", "squared_error", {d, t}).ok());  // 5 * 12
  EXPECT_EQ(EstimateForwardFlops(g), 12 + 5 * 12);
}

TEST(EstimateForwardFlops, AvgPoolCountsEveryTap) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 2, 9, 9});
  ASSERT_TRUE(g.AddNode("p", "avg_pool2d", {x},
                        Attributes{{"kernel", std::vector<int64_t>{3, 3}},
                                   {"stride", std::vector<int64_t>{1, 1}}})
                  .ok());
  // Output [1, 2, 7, 7] = 98 elements, 9 taps each.
  EXPECT_EQ(EstimateForwardFlops(g), 98 * 9);
}

TEST(EstimateForwardFlops, SkipsNodesThatReadAForwardNodesState) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{1, 1, 4, 4});
  const Attributes window{{"kernel", std::vector<int64_t>{2, 2}}};
  const ValueId y = *g.AddNode("y", "max_pool2d", {x}, window);  // 4 outputs * 4 taps
  StatusOr<ValueId> dx = g.AddNode("dx", "max_pool2d_grad", {x, y}, window, /*forward_node=*/0);
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  EXPECT_EQ(EstimateNodeFlops(g, g.node(1)), 0);
  EXPECT_EQ(EstimateForwardFlops(g), 4 * 4);
}

TEST(EstimateForwardFlops, SaturatesInsteadOfOverflowing) {
  Graph g(BuiltinGates());
  const int64_t big = int64_t{1} << 31;
  const ValueId a = *g.AddParameter("a", Shape{big, big});
  const ValueId b = *g.AddParameter("b", Shape{big, big});
  // 2 * 2^62 * 2^31 is far past INT64_MAX, and the sum of two such nodes further still.
  ASSERT_TRUE(g.AddNode("ab", "matmul", {a, b}).ok());
  ASSERT_TRUE(g.AddNode("ab2", "matmul", {a, b}).ok());
  EXPECT_EQ(EstimateForwardFlops(g), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace backflow
