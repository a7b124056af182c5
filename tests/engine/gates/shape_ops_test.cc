#include "engine/gates/builtin.h"
#include "engine/gates/shape_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/exec/program.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using Ints = std::vector<int64_t>;

std::vector<double> Iota(int n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i + 1;
  return v;
}

struct ForwardCase {
  std::string name;
  Shape x;
  Ints target;
  Shape want;
};
void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }

class ReshapeForwardTest : public ::testing::TestWithParam<ForwardCase> {};

// A reshape keeps the elements in row-major order: only the shape changes.
TEST_P(ReshapeForwardTest, KeepsTheElementsUnderTheNewShape) {
  const ForwardCase& c = GetParam();
  const Tensor x = T64(c.x, Iota(static_cast<int>(c.x.num_elements())));
  StatusOr<Tensor> y = RunGate("reshape", {x}, {{"shape", c.target}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape().ToString(), c.want.ToString());
  EXPECT_EQ(y->ToDoubles(), x.ToDoubles());
}

INSTANTIATE_TEST_SUITE_P(
    Gates, ReshapeForwardTest,
    ::testing::Values(ForwardCase{"explicit", {2, 3}, {3, 2}, {3, 2}},
                      ForwardCase{"flatten", {2, 3}, {-1}, {6}},
                      ForwardCase{"infer_last", {2, 3}, {3, -1}, {3, 2}},
                      ForwardCase{"infer_first", {2, 3, 2}, {-1, 4}, {3, 4}},
                      ForwardCase{"copy_and_infer", {2, 3, 2}, {0, -1}, {2, 6}},
                      ForwardCase{"copy_middle_and_infer", {2, 3, 2}, {1, -1, 0}, {1, 6, 2}},
                      ForwardCase{"copy_all", {2, 3}, {0, 0}, {2, 3}},
                      ForwardCase{"scalar_to_matrix", {}, {1, 1}, {1, 1}},
                      ForwardCase{"to_scalar", {1, 1}, {}, {}}),
    [](const ::testing::TestParamInfo<ForwardCase>& info) { return info.param.name; });

TEST(ReshapeValuesTest, ExactInFloat64AndFloat32) {
  StatusOr<Tensor> y = RunGate("reshape", {T64({2, 2}, {1.5, -2, 3, 0.25})}, {{"shape", Ints{4}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{1.5, -2, 3, 0.25}));
  const Tensor x32 =
      Tensor::FromValues(DType::kFloat32, Shape{2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  StatusOr<Tensor> y32 = RunGate("reshape", {x32}, {{"shape", Ints{3, -1}}});
  ASSERT_TRUE(y32.ok()) << y32.status().ToString();
  EXPECT_EQ(y32->dtype(), DType::kFloat32);
  EXPECT_EQ(y32->shape(), (Shape{3, 2}));
  EXPECT_EQ(y32->ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(ReshapeLikeTest, CopiesDyIntoTheShapeOfX) {
  StatusOr<Tensor> dx =
      RunGate("reshape_like", {T64({6}, {1, 2, 3, 4, 5, 6}), T64({2, 3}, Iota(6))});
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  EXPECT_EQ(dx->shape(), (Shape{2, 3}));
  EXPECT_EQ(dx->ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

GateCase Grad(Shape x, Ints target) {
  return {.op = "reshape", .shapes = {std::move(x)}, .attrs = {{"shape", std::move(target)}}};
}

TEST(ReshapeGradientTest, MatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(Grad({2, 3}, {3, 2}));
  testing::ExpectGradientsMatchFiniteDifferences(Grad({2, 3}, {-1}));
  testing::ExpectGradientsMatchFiniteDifferences(Grad({2, 3, 4}, {0, -1}));
  testing::ExpectGradientsMatchFiniteDifferences(Grad({2, 3, 4}, {4, 0, 2}));
  testing::ExpectGradientsMatchFiniteDifferences(Grad({}, {1, 1}));
}

StatusOr<Shape> ReshapeShape(Shape x, Ints target) {
  Graph g(BuiltinGates());
  const ValueId in = *g.AddPlaceholder("x", std::move(x));
  BF_ASSIGN_OR_RETURN(ValueId y, g.AddNode("r", "reshape", {in}, {{"shape", std::move(target)}}));
  return g.value(y).shape;
}

TEST(ReshapeShapeTest, InfersWhatItCanAroundTheOpenBatchDimension) {
  EXPECT_EQ(*ReshapeShape({kBatchDim, 3, 4}, {0, -1}), (Shape{kBatchDim, 12}));
  EXPECT_EQ(*ReshapeShape({kBatchDim, 3, 4}, {0, 12}), (Shape{kBatchDim, 12}));
  EXPECT_EQ(*ReshapeShape({kBatchDim, 3, 4}, {-1, 12}), (Shape{kBatchDim, 12}));
  EXPECT_EQ(*ReshapeShape({kBatchDim, 3, 4}, {0, 2, -1}), (Shape{kBatchDim, 2, 6}));
  // The -1 holds 6N elements, which only the run's batch size fixes.
  EXPECT_EQ(*ReshapeShape({kBatchDim, 6}, {-1}), (Shape{kBatchDim}));
  // Valid for an even batch size.
  EXPECT_EQ(*ReshapeShape({kBatchDim, 3}, {6}), (Shape{6}));
}

// At compile time the rule sees the concrete batch size: [N, 6] -> [-1] with N = 2 gives 12.
TEST(ReshapeShapeTest, AnOpenMinusOneBecomesConcreteWhenRun) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 6});
  const ValueId y = *g->AddNode("y", "reshape", {x}, {{"shape", Ints{-1}}});
  Program program(g);
  const Tensor xv = T64({2, 6}, Iota(12));
  const ValueId fetch[] = {y};
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &xv}}, fetch);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].shape(), Shape{12});
  EXPECT_EQ((*out)[0].ToDoubles(), Iota(12));
}

TEST(ReshapeShapeTest, BadTargetsAreErrorsNamingTheNode) {
  struct Bad {
    Shape x;
    Ints target;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {{2, 3}, {4, -1}, "cannot reshape [2, 3] into [4, -1]: 6 elements are not a multiple of 4"},
      {{2, 3}, {4, 2}, "cannot reshape [2, 3] into [4, 2]: element counts differ (6 vs 8)"},
      {{2, 3},
       {-1, -1},
       "shape[1] is -1, but shape[0] is -1 already: only one dimension may be inferred"},
      {{2, 3}, {-2, -3}, "shape[0] is -2: dimensions must be positive, 0 (copy) or -1 (infer)"},
      {{2, 3}, {1, 1, 0}, "shape[2] is 0 (copy), but the input [2, 3] has rank 2"},
      {{kBatchDim, 6}, {0, 4}, "cannot reshape [N, 6] into [0, 4]: element counts differ (6 vs 4)"},
      {{kBatchDim, 3},
       {7},
       "cannot reshape [N, 3] into [7]: element counts differ (3 per batch row vs 7)"},
  };
  for (const Bad& bad : cases) {
    StatusOr<Shape> shape = ReshapeShape(bad.x, bad.target);
    EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument) << bad.message;
    EXPECT_EQ(shape.status().message(), "node 'r': " + bad.message);
  }
}

TEST(ReshapeShapeTest, TheTargetShapeIsRequired) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  StatusOr<ValueId> y = g.AddNode("r", "reshape", {x});
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node 'r'"));
  EXPECT_THAT(y.status().message(), ::testing::HasSubstr("missing required attribute 'shape'"));
}

TEST(ReshapeLikeTest, RejectsMismatchedElementCounts) {
  Graph g(BuiltinGates());
  const ValueId dy = *g.AddPlaceholder("dy", Shape{5});
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  StatusOr<ValueId> bad = g.AddNode("rl", "reshape_like", {dy, x});
  EXPECT_EQ(bad.status().message(),
            "node 'rl': cannot reshape [5] like [2, 3]: element counts differ");
}

}  // namespace
}  // namespace backflow
