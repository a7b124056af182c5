#include "engine/gates/builtin.h"
#include "engine/gates/tensor_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using Ints = std::vector<int64_t>;

// 1, 2, 3, ...: every element distinct, so a misplaced one shows.
Tensor Iota(Shape shape, DType dtype = DType::kFloat64) {
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i + 1);
  return Tensor::FromValues(dtype, std::move(shape), v);
}

// ---- flatten -------------------------------------------------------------------------------

struct FlattenCase {
  std::string name;
  Shape x;
  std::optional<int64_t> axis;
  Shape want;
};
void PrintTo(const FlattenCase& c, std::ostream* os) { *os << c.name; }

class FlattenTest : public ::testing::TestWithParam<FlattenCase> {};

TEST_P(FlattenTest, KeepsTheElementsUnderTheFlatShape) {
  const FlattenCase& c = GetParam();
  Attributes attrs;
  if (c.axis) attrs.Set("axis", *c.axis);
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = Iota(c.x, dtype);
    StatusOr<Tensor> y = RunGate("flatten", {x}, attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), c.want);
    EXPECT_EQ(y->ToDoubles(), x.ToDoubles());
  }
}

TEST_P(FlattenTest, GradientMatchesFiniteDifferences) {
  const FlattenCase& c = GetParam();
  Attributes attrs;
  if (c.axis) attrs.Set("axis", *c.axis);
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "flatten", .shapes = {c.x}, .attrs = attrs});
}

INSTANTIATE_TEST_SUITE_P(
    Gates, FlattenTest,
    ::testing::Values(FlattenCase{"default_nchw", {2, 3, 2, 2}, std::nullopt, {2, 12}},
                      FlattenCase{"axis0", {2, 3, 4}, 0, {1, 24}},
                      FlattenCase{"axis1", {2, 3, 4}, 1, {2, 12}},
                      FlattenCase{"axis2", {2, 3, 4}, 2, {6, 4}},
                      FlattenCase{"axis_rank", {2, 3, 4}, 3, {24, 1}},
                      FlattenCase{"axis_minus1", {2, 3, 4}, -1, {6, 4}},
                      FlattenCase{"axis_minus3", {2, 3, 4}, -3, {1, 24}}),
    [](const ::testing::TestParamInfo<FlattenCase>& info) { return info.param.name; });

TEST(FlattenShapeTest, KeepsTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3, 4, 5});
  EXPECT_EQ(g.value(*g.AddNode("f", "flatten", {x})).shape, (Shape{kBatchDim, 60}));
  EXPECT_EQ(g.value(*g.AddNode("f2", "flatten", {x}, {{"axis", int64_t{2}}})).shape,
            (Shape{kBatchDim, 20}));
  // The whole tensor in one group: its size is a multiple of the batch, recorded as open.
  EXPECT_EQ(g.value(*g.AddNode("f0", "flatten", {x}, {{"axis", int64_t{0}}})).shape,
            (Shape{1, kBatchDim}));
}

TEST(FlattenShapeTest, AxisOutOfRangeIsAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  StatusOr<ValueId> y = g.AddNode("flat", "flatten", {x}, {{"axis", int64_t{3}}});
  EXPECT_EQ(y.status().message(), "node 'flat': axis 3 is out of range for rank 2");
  y = g.AddNode("flat", "flatten", {x}, {{"axis", int64_t{-3}}});
  EXPECT_EQ(y.status().message(), "node 'flat': axis -3 is out of range for rank 2");
}

// ---- transpose -----------------------------------------------------------------------------

TEST(TransposeTest, DefaultReversesTheDimensions) {
  StatusOr<Tensor> y = RunGate("transpose", {T64({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape(), (Shape{3, 2}));
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{1, 4, 2, 5, 3, 6}));
}

// y[i0][i1][i2] = x[j] where j[perm[k]] = ik: the definition, by explicit index arithmetic.
std::vector<double> Transposed3(const Tensor& x, const Ints& perm) {
  const Shape& s = x.shape();
  std::vector<double> y;
  int64_t j[3];
  for (j[perm[0]] = 0; j[perm[0]] < s.dim(static_cast<int>(perm[0])); ++j[perm[0]]) {
    for (j[perm[1]] = 0; j[perm[1]] < s.dim(static_cast<int>(perm[1])); ++j[perm[1]]) {
      for (j[perm[2]] = 0; j[perm[2]] < s.dim(static_cast<int>(perm[2])); ++j[perm[2]]) {
        y.push_back(x.at((j[0] * s.dim(1) + j[1]) * s.dim(2) + j[2]));
      }
    }
  }
  return y;
}

class TransposeTest : public ::testing::TestWithParam<Ints> {};

TEST_P(TransposeTest, MovesEveryElementWhereThePermutationSays) {
  const Ints& perm = GetParam();
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = Iota({2, 3, 4}, dtype);
    StatusOr<Tensor> y = RunGate("transpose", {x}, {{"perm", perm}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->shape(), (Shape{x.shape().dim(static_cast<int>(perm[0])),
                                 x.shape().dim(static_cast<int>(perm[1])),
                                 x.shape().dim(static_cast<int>(perm[2]))}));
    EXPECT_EQ(y->ToDoubles(), Transposed3(x, perm));
  }
}

TEST_P(TransposeTest, GradientMatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "transpose", .shapes = {{2, 3, 4}}, .attrs = {{"perm", GetParam()}}});
}

INSTANTIATE_TEST_SUITE_P(Gates, TransposeTest,
                         ::testing::Values(Ints{0, 1, 2}, Ints{0, 2, 1}, Ints{1, 0, 2},
                                           Ints{1, 2, 0}, Ints{2, 0, 1}, Ints{2, 1, 0}),
                         [](const ::testing::TestParamInfo<Ints>& info) {
                           std::string name = "perm";
                           for (int64_t p : info.param) name += std::to_string(p);
                           return name;
                         });

TEST(TransposeGradientTest, DefaultAndFourDimensionalPermutations) {
  testing::ExpectGradientsMatchFiniteDifferences(GateCase{.op = "transpose", .shapes = {{3, 5}}});
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "transpose", .shapes = {{2, 3, 2, 3}}, .attrs = {{"perm", Ints{0, 2, 3, 1}}}});
}

TEST(TransposeShapeTest, CarriesTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3, 4});
  EXPECT_EQ(g.value(*g.AddNode("t", "transpose", {x}, {{"perm", Ints{0, 2, 1}}})).shape,
            (Shape{kBatchDim, 4, 3}));
  EXPECT_EQ(g.value(*g.AddNode("t2", "transpose", {x})).shape, (Shape{4, 3, kBatchDim}));
}

TEST(TransposeShapeTest, BadPermutationIsAnErrorNamingTheNode) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  for (const Ints& perm : {Ints{0, 0}, Ints{0}, Ints{0, 2}, Ints{-1, 0}}) {
    StatusOr<ValueId> y = g.AddNode("t", "transpose", {x}, {{"perm", perm}});
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(y.status().message(),
                ::testing::MatchesRegex("node 't': perm \\[.*\\] is not a permutation of the 2 "
                                        "dimensions of \\[2, 3\\]"));
  }
}

// ---- concat --------------------------------------------------------------------------------

TEST(ConcatTest, JoinsAlongEachAxisInBothDtypes) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor a = Tensor::FromValues(dtype, {2, 2}, std::vector<double>{1, 2, 3, 4});
    const Tensor b = Tensor::FromValues(dtype, {1, 2}, std::vector<double>{5, 6});
    const Tensor c = Tensor::FromValues(dtype, {2, 1}, std::vector<double>{7, 8});
    StatusOr<Tensor> rows = RunGate("concat", {a, b, a}, {{"axis", int64_t{0}}});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->shape(), (Shape{5, 2}));
    EXPECT_EQ(rows->ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4}));
    StatusOr<Tensor> cols = RunGate("concat", {a, c, a}, {{"axis", int64_t{-1}}});
    ASSERT_TRUE(cols.ok()) << cols.status().ToString();
    EXPECT_EQ(cols->shape(), (Shape{2, 5}));
    EXPECT_EQ(cols->ToDoubles(), (std::vector<double>{1, 2, 7, 1, 2, 3, 4, 8, 3, 4}));
  }
}

TEST(ConcatTest, JoinsTheMiddleAxisOfThreeDimensionalInputs) {
  // [2, 1, 2] and [2, 2, 2] along axis 1: per leading index, a's row then b's two rows.
  StatusOr<Tensor> y =
      RunGate("concat", {Iota({2, 1, 2}), Iota({2, 2, 2})}, {{"axis", int64_t{1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8}));
}

struct ConcatCase {
  std::string name;
  std::vector<Shape> shapes;
  int64_t axis;
};
void PrintTo(const ConcatCase& c, std::ostream* os) { *os << c.name; }

class ConcatGradientTest : public ::testing::TestWithParam<ConcatCase> {};

TEST_P(ConcatGradientTest, MatchesFiniteDifferences) {
  const ConcatCase& c = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "concat", .shapes = c.shapes, .attrs = {{"axis", c.axis}}});
}

INSTANTIATE_TEST_SUITE_P(
    Gates, ConcatGradientTest,
    ::testing::Values(ConcatCase{"axis0", {{1, 3, 2}, {2, 3, 2}, {3, 3, 2}}, 0},
                      ConcatCase{"axis1", {{2, 1, 2}, {2, 3, 2}, {2, 2, 2}}, 1},
                      ConcatCase{"axis_minus1", {{2, 3, 1}, {2, 3, 2}, {2, 3, 3}}, -1},
                      ConcatCase{"vectors", {{2}, {3}, {1}}, 0}, ConcatCase{"single", {{2, 3}}, 1}),
    [](const ::testing::TestParamInfo<ConcatCase>& info) { return info.param.name; });

// L = sum(concat(x, y)^2) over the batch axis, whose offsets are known only at run time.
TEST(ConcatBatchTest, JoinsAndSplitsAlongTheOpenBatchDimension) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId y = *g->AddPlaceholder("y", Shape{2, 3});
  const ValueId c = *g->AddNode("c", "concat", {x, y}, {{"axis", int64_t{0}}});
  EXPECT_EQ(g->value(c).shape, (Shape{kBatchDim, 3}));
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("c2", "square", {c})});
  const ValueId wrt[] = {x, y};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  const Tensor xs = Iota({4, 3});
  const Tensor ys = T64({2, 3}, {-1, -2, -3, -4, -5, -6});
  const ValueId fetch[] = {c, (*grads)[0], (*grads)[1]};
  StatusOr<std::vector<Tensor>> out = Program(g).Run({{"x", &xs}, {"y", &ys}}, fetch);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].shape(), (Shape{6, 3}));
  EXPECT_EQ((*out)[1].ToDoubles(),
            (std::vector<double>{2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24}));
  EXPECT_EQ((*out)[2].ToDoubles(), (std::vector<double>{-2, -4, -6, -8, -10, -12}));
}

TEST(ConcatShapeTest, OpenDimensionsAgreeOffTheAxis) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId z = *g.AddPlaceholder("z", Shape{kBatchDim, 4});
  EXPECT_EQ(g.value(*g.AddNode("c", "concat", {x, z, x}, {{"axis", int64_t{1}}})).shape,
            (Shape{kBatchDim, 10}));
}

struct ConcatErrorCase {
  std::string name;
  std::vector<Shape> shapes;
  Attributes attrs;
  std::string message;
};
void PrintTo(const ConcatErrorCase& c, std::ostream* os) { *os << c.name; }

class ConcatShapeErrorTest : public ::testing::TestWithParam<ConcatErrorCase> {};

TEST_P(ConcatShapeErrorTest, NamesTheNodeAndTheShapes) {
  const ConcatErrorCase& c = GetParam();
  Graph g(BuiltinGates());
  std::vector<ValueId> in;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    in.push_back(*g.AddPlaceholder("x" + std::to_string(i), c.shapes[i]));
  }
  StatusOr<ValueId> y = g.AddNode("cat", "concat", in, c.attrs);
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Gates, ConcatShapeErrorTest,
    ::testing::Values(
        ConcatErrorCase{"off_axis",
                        {{2, 3}, {2, 3}, {2, 4}},
                        {{"axis", int64_t{0}}},
                        "node 'cat': input 2 has shape [2, 4] and input 0 [2, 3]: they must "
                        "agree except on axis 0"},
        ConcatErrorCase{"rank",
                        {{2, 3}, {2, 3, 1}},
                        {{"axis", int64_t{1}}},
                        "node 'cat': input 1 has shape [2, 3, 1] and input 0 [2, 3]: they must "
                        "agree except on axis 1"},
        ConcatErrorCase{"open_against_known",
                        {{kBatchDim, 3}, {2, 3}},
                        {{"axis", int64_t{1}}},
                        "node 'cat': input 1 has shape [2, 3] and input 0 [N, 3]: they must "
                        "agree except on axis 1"},
        ConcatErrorCase{"axis_range",
                        {{2, 3}, {2, 3}},
                        {{"axis", int64_t{2}}},
                        "node 'cat': axis 2 is out of range for rank 2"},
        ConcatErrorCase{
            "scalars", {{}, {}}, {{"axis", int64_t{0}}}, "node 'cat': cannot concatenate scalars"},
        ConcatErrorCase{"no_axis",
                        {{2}, {2}},
                        {},
                        "node 'cat' (concat): missing required attribute 'axis' (int)"}),
    [](const ::testing::TestParamInfo<ConcatErrorCase>& info) { return info.param.name; });

TEST(TensorGatesTest, ConcatGradIsInternal) {
  const Gate* gate = BuiltinGates().Find("concat_grad");
  ASSERT_NE(gate, nullptr);
  EXPECT_TRUE(gate->internal());
  EXPECT_FALSE(gate->differentiable());
  for (const char* op : {"flatten", "transpose", "concat"}) {
    ASSERT_NE(BuiltinGates().Find(op), nullptr) << op;
    EXPECT_FALSE(BuiltinGates().Find(op)->internal()) << op;
  }
}

}  // namespace
}  // namespace backflow
