// embedding: gathers by int32/int64 ids, sums the gradient of repeated ids, gives the
// padding_idx row no gradient, and names the node for bad ids, shapes and attributes. Expected
// values are worked by hand from the small tables below.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::T64;

Tensor Ids(DType dtype, Shape shape, const std::vector<int64_t>& ids) {
  Tensor t(dtype, std::move(shape));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (dtype == DType::kInt64) {
      t.data<int64_t>()[i] = ids[i];
    } else {
      t.data<int32_t>()[i] = static_cast<int32_t>(ids[i]);
    }
  }
  return t;
}

struct Result {
  Tensor y;
  Tensor dw;  // d(sum(y * r))/dw
};

// y = embedding(w, ids); L = sum(y * r) with r[s, j] = 1 + j (so dw rows count each gather
// weighted by the column).
StatusOr<Result> RunEmbedding(const Tensor& w, const Tensor& ids, Attributes attrs = {}) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId wv = *graph->AddPlaceholder("w", w.shape());
  const ValueId iv = *graph->AddPlaceholder("ids", ids.shape(), ids.dtype());
  BF_ASSIGN_OR_RETURN(const ValueId y, graph->AddNode("emb", "embedding", {wv, iv}, attrs));
  const Shape& ys = graph->value(y).shape;
  std::vector<double> r(static_cast<size_t>(ys.num_elements()));
  for (size_t i = 0; i < r.size(); ++i) r[i] = 1.0 + static_cast<double>(i % w.shape().dim(1));
  const ValueId rv = *graph->AddConstant("r", T64(ys, r));
  const ValueId p = *graph->AddNode("p", "mul", {y, rv});
  const ValueId loss = *graph->AddNode("L", "sum", {p});
  const ValueId wrt[] = {wv};
  BF_ASSIGN_OR_RETURN(std::vector<ValueId> grads, AppendBackward(*graph, loss, wrt));
  Program program(graph);
  const ValueId fetch[] = {y, grads[0]};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program.Run({{"w", &w}, {"ids", &ids}}, fetch));
  return Result{std::move(out[0]), std::move(out[1])};
}

const std::vector<double> kTable = {0, 1, 10, 11, 20, 21, 30, 31};  // 4 rows of 2

TEST(EmbeddingTest, GathersRowsAndSumsRepeatedIdsGradients) {
  for (DType float_type : {DType::kFloat64, DType::kFloat32}) {
    for (DType id_type : {DType::kInt64, DType::kInt32}) {
      const Tensor w = T64({4, 2}, kTable).CastTo(float_type);
      StatusOr<Result> r = RunEmbedding(w, Ids(id_type, {2, 3}, {2, 0, 2, 3, 2, 0}));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->y.dtype(), float_type);
      EXPECT_EQ(r->y.shape(), Shape({2, 3, 2}));
      EXPECT_EQ(r->y.ToDoubles(),
                (std::vector<double>{20, 21, 0, 1, 20, 21, 30, 31, 20, 21, 0, 1}));
      // Row 0 gathered twice, row 1 never, row 2 three times, row 3 once; columns weigh 1, 2.
      EXPECT_EQ(r->dw.ToDoubles(), (std::vector<double>{2, 4, 0, 0, 3, 6, 1, 2}));
    }
  }
}

TEST(EmbeddingTest, PaddingRowGetsNoGradientButIsStillGathered) {
  const Tensor w = T64({4, 2}, kTable);
  for (int64_t padding : {int64_t{2}, int64_t{-2}}) {
    StatusOr<Result> r = RunEmbedding(w, Ids(DType::kInt64, {4}, {2, 0, 2, 3}), {{"padding_idx", padding}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->y.ToDoubles(), (std::vector<double>{20, 21, 0, 1, 20, 21, 30, 31}));
    EXPECT_EQ(r->dw.ToDoubles(), (std::vector<double>{1, 2, 0, 0, 0, 0, 1, 2})) << padding;
  }
}

TEST(EmbeddingTest, BadIdsShapesAndAttributesNameTheNode) {
  const Tensor w = T64({4, 2}, kTable);
  for (int64_t bad : {int64_t{4}, int64_t{-1}}) {
    StatusOr<Result> r = RunEmbedding(w, Ids(DType::kInt32, {3}, {0, 1, bad}));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), "node 'emb': id " + std::to_string(bad) +
                                        " at index 2 is not a row of weight [4, 2]");
  }
  StatusOr<Result> r = RunEmbedding(w, Ids(DType::kInt64, {1}, {0}), {{"padding_idx", int64_t{4}}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("node 'emb'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("padding_idx 4 is not in [-4, 4)"), std::string::npos)
      << r.status().message();
  r = RunEmbedding(T64({8}, kTable), Ids(DType::kInt64, {1}, {0}));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("weight must be [num, dim]"), std::string::npos);
  // Float ids are refused when the graph is built.
  Graph g(BuiltinGates());
  const ValueId wv = *g.AddPlaceholder("w", Shape{4, 2});
  const ValueId fv = *g.AddPlaceholder("f", Shape{3});
  const StatusOr<ValueId> y = g.AddNode("emb", "embedding", {fv, wv});
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  const ValueId iv = *g.AddPlaceholder("ids", Shape{3}, DType::kInt64);
  const StatusOr<ValueId> swapped = g.AddNode("emb2", "embedding", {iv, wv});
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.status().message().find("input 0 ('ids') is int64"), std::string::npos);
}

}  // namespace
}  // namespace backflow
