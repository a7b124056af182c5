#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/gates/pad.h"
#include "engine/gates/slice.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using Ints = std::vector<int64_t>;
using Doubles = std::vector<double>;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// 1, 2, 3, ...: every element distinct, so a misplaced one shows.
Tensor Iota(Shape shape, DType dtype = DType::kFloat64) {
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i + 1);
  return Tensor::FromValues(dtype, std::move(shape), v);
}

Attributes SliceAttrs(Ints starts, Ints ends, Ints axes = {}, Ints steps = {}) {
  Attributes attrs{{"starts", std::move(starts)}, {"ends", std::move(ends)}};
  if (!axes.empty()) attrs.Set("axes", std::move(axes));
  if (!steps.empty()) attrs.Set("steps", std::move(steps));
  return attrs;
}

// ---- slice: values -------------------------------------------------------------------------

struct SliceCase {
  std::string name;
  Shape x;  // holding Iota
  Attributes attrs;
  Shape want_shape;
  Doubles want;
};
void PrintTo(const SliceCase& c, std::ostream* os) { *os << c.name; }

class SliceValueTest : public ::testing::TestWithParam<SliceCase> {};

TEST_P(SliceValueTest, ReadsTheExpectedElementsInBothDtypes) {
  const SliceCase& c = GetParam();
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    StatusOr<Tensor> y = RunGate("slice", {Iota(c.x, dtype)}, c.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->dtype(), dtype);
    EXPECT_EQ(y->shape(), c.want_shape);
    EXPECT_EQ(y->ToDoubles(), c.want);
  }
}

// By hand from y[i] = x[start + i * step], x = 1, 2, 3, ... in row-major order.
INSTANTIATE_TEST_SUITE_P(
    Gates, SliceValueTest,
    ::testing::Values(
        SliceCase{"rows_and_every_other_column",
                  {3, 4},
                  SliceAttrs({1, 0}, {3, 4}, {0, 1}, {1, 2}),
                  {2, 2},
                  {5, 7, 9, 11}},
        SliceCase{"default_axes_and_steps", {3, 2}, SliceAttrs({1}, {2}), {1, 2}, {3, 4}},
        SliceCase{"one_inner_axis", {2, 3}, SliceAttrs({1}, {kMax}, {1}), {2, 2}, {2, 3, 5, 6}},
        SliceCase{"negative_start_and_end", {6}, SliceAttrs({-4}, {-1}), {3}, {3, 4, 5}},
        SliceCase{"reverse_with_int64_sentinels",
                  {5},
                  SliceAttrs({-1}, {kMin}, {0}, {-1}),
                  {5},
                  {5, 4, 3, 2, 1}},
        SliceCase{"negative_step_two", {5}, SliceAttrs({4}, {0}, {0}, {-2}), {2}, {5, 3}},
        SliceCase{"negative_step_clamped_end", {5}, SliceAttrs({3}, {-10}, {0}, {-2}), {2}, {4, 2}},
        SliceCase{"negative_step_start_past_the_end",
                  {5},
                  SliceAttrs({100}, {0}, {0}, {-3}),
                  {2},
                  {5, 2}},
        // The spec clamps a negative step's start to [0, dim - 1]: element 0, not nothing.
        SliceCase{
            "negative_step_start_before_0", {5}, SliceAttrs({-10}, {kMin}, {0}, {-1}), {1}, {1}},
        SliceCase{"clamped_both_ends", {5}, SliceAttrs({-100}, {100}), {5}, {1, 2, 3, 4, 5}},
        SliceCase{"int64_min_start", {4}, SliceAttrs({kMin}, {2}), {2}, {1, 2}},
        SliceCase{"step_past_the_end", {5}, SliceAttrs({1}, {kMax}, {0}, {kMax}), {1}, {2}},
        SliceCase{
            "negative_step_int64_min", {5}, SliceAttrs({kMax}, {kMin}, {0}, {kMin}), {1}, {5}},
        SliceCase{
            "huge_step_outer_axis", {3, 2}, SliceAttrs({1}, {kMax}, {0}, {kMax}), {1, 2}, {3, 4}},
        SliceCase{"huge_negative_step_outer_axis",
                  {3, 2},
                  SliceAttrs({kMax}, {kMin}, {0}, {kMin}),
                  {1, 2},
                  {5, 6}},
        SliceCase{"empty_start_past_end", {5}, SliceAttrs({10}, {20}), {0}, {}},
        SliceCase{"empty_end_before_start", {5}, SliceAttrs({3}, {1}), {0}, {}},
        SliceCase{"empty_negative_step_wrong_way", {5}, SliceAttrs({1}, {3}, {0}, {-1}), {0}, {}},
        // axis 2: 3, 1; axis 1: 0, 2. Element (i0, j1, j2) is i0 * 12 + j1 * 4 + j2 + 1.
        SliceCase{"several_axes_negative_axis_and_step",
                  {2, 3, 4},
                  SliceAttrs({3, 0}, {0, 3}, {-1, 1}, {-2, 2}),
                  {2, 2, 2},
                  {4, 2, 12, 10, 16, 14, 24, 22}},
        SliceCase{"nothing_sliced", {2, 2}, SliceAttrs({}, {}), {2, 2}, {1, 2, 3, 4}}),
    [](const ::testing::TestParamInfo<SliceCase>& info) { return info.param.name; });

TEST(SliceTest, GradScattersDyIntoZeros) {
  // slice of [3, 4] at rows 2, 0 (step -2) and columns 1, 3 (step 2).
  const Attributes attrs = SliceAttrs({2, 1}, {kMin, kMax}, {0, 1}, {-2, 2});
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor dy = Tensor::FromValues(dtype, {2, 2}, Doubles{1, 2, 3, 4});
    StatusOr<Tensor> dx = RunGate("slice_grad", {dy, Iota({3, 4}, dtype)}, attrs);
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_EQ(dx->shape(), (Shape{3, 4}));
    EXPECT_EQ(dx->ToDoubles(), (Doubles{0, 3, 0, 4, 0, 0, 0, 0, 0, 1, 0, 2}));
  }
}

TEST(SliceTest, GradientMatchesFiniteDifferences) {
  for (const Attributes& attrs :
       {SliceAttrs({1, 0}, {3, 4}, {0, 1}, {1, 2}), SliceAttrs({-1}, {kMin}, {1}, {-2}),
        SliceAttrs({2, 3, 0}, {0, kMin, 1}, {0, 2, 1}, {-1, -3, 1})}) {
    testing::ExpectGradientsMatchFiniteDifferences(
        GateCase{.op = "slice", .shapes = {{3, 3, 4}}, .attrs = attrs});
  }
}

TEST(SliceTest, SliceGradIsInternal) {
  const Gate* grad = BuiltinGates().Find("slice_grad");
  ASSERT_NE(grad, nullptr);
  EXPECT_TRUE(grad->internal());
  EXPECT_FALSE(grad->differentiable());
  ASSERT_NE(BuiltinGates().Find("slice"), nullptr);
  EXPECT_FALSE(BuiltinGates().Find("slice")->internal());
}

// ---- slice: the open batch dimension -------------------------------------------------------

TEST(SliceBatchTest, TakesTheOpenDimensionWholeAndSlicesTheOthers) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3});
  EXPECT_EQ(g.value(*g.AddNode("a", "slice", {x}, SliceAttrs({1}, {kMax}, {1}))).shape,
            (Shape{kBatchDim, 2}));
  EXPECT_EQ(g.value(*g.AddNode("b", "slice", {x}, SliceAttrs({0, 0}, {kMax, 1}))).shape,
            (Shape{kBatchDim, 1}));
  // INT32_MAX, which some exporters write for "to the end", takes it whole too.
  EXPECT_EQ(g.value(*g.AddNode("c", "slice", {x}, SliceAttrs({0}, {2147483647}))).shape,
            (Shape{kBatchDim, 3}));
}

// L = sum(slice(x)^2) with x [N, 3] read at columns 2, 0: run at batch 2, then dL/dx = 2x at
// the columns read and 0 at column 1.
TEST(SliceBatchTest, RunsAndDifferentiatesAtAConcreteBatch) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId y = *g->AddNode("s", "slice", {x}, SliceAttrs({0, -1}, {kMax, kMin}, {}, {1, -2}));
  EXPECT_EQ(g->value(y).shape, (Shape{kBatchDim, 2}));
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("y2", "square", {y})});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  const Tensor xs = Iota({2, 3});
  const ValueId fetch[] = {y, (*grads)[0]};
  StatusOr<std::vector<Tensor>> out = Program(g).Run({{"x", &xs}}, fetch);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].shape(), (Shape{2, 2}));
  EXPECT_EQ((*out)[0].ToDoubles(), (Doubles{3, 1, 6, 4}));
  EXPECT_EQ((*out)[1].ToDoubles(), (Doubles{2, 0, 6, 8, 0, 12}));
}

// ---- slice: errors -------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  Shape x;  // N may be first or last
  Attributes attrs;
  std::string message;
};
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

// A value of `shape` in `g`: a placeholder, transposed when N is last (placeholders hold N
// first only).
ValueId Input(Graph& g, const Shape& shape) {
  if (shape.rank() < 2 || shape.dim(shape.rank() - 1) != kBatchDim) {
    return *g.AddPlaceholder("x", shape);
  }
  std::vector<int64_t> reversed(shape.dims().rbegin(), shape.dims().rend());
  return *g.AddNode("t", "transpose", {*g.AddPlaceholder("x", Shape(std::move(reversed)))});
}

class SliceErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SliceErrorTest, NamesTheNode) {
  const ErrorCase& c = GetParam();
  Graph g(BuiltinGates());
  StatusOr<ValueId> y = g.AddNode("s", "slice", {Input(g, c.x)}, c.attrs);
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Gates, SliceErrorTest,
    ::testing::Values(
        ErrorCase{"ends_length",
                  {2, 3},
                  SliceAttrs({0, 0}, {1}),
                  "node 's': starts, ends, axes and steps have 2, 1, 0 and 0 entries: they need "
                  "one per sliced axis (axes and steps may be left out)"},
        ErrorCase{"steps_length",
                  {2, 3},
                  SliceAttrs({0}, {1}, {0}, {1, 1}),
                  "node 's': starts, ends, axes and steps have 1, 1, 1 and 2 entries: they need "
                  "one per sliced axis (axes and steps may be left out)"},
        ErrorCase{"more_entries_than_axes",
                  {2, 3},
                  SliceAttrs({0, 0, 0}, {1, 1, 1}),
                  "node 's': starts has 3 entries, more than the 2 axes of [2, 3]"},
        ErrorCase{"axis_out_of_range",
                  {2, 3},
                  SliceAttrs({0, 0}, {1, 1}, {0, -3}),
                  "node 's': axes[1] is -3, out of range for rank 2"},
        ErrorCase{"duplicate_axis",
                  {2, 3},
                  SliceAttrs({0, 0}, {1, 1}, {1, -1}),
                  "node 's': axis 1 is sliced twice (axes[0] and axes[1])"},
        ErrorCase{"zero_step",
                  {2, 3},
                  SliceAttrs({0, 0}, {1, 1}, {0, 1}, {1, 0}),
                  "node 's': steps[1] is 0: a step must be nonzero"},
        ErrorCase{"open_batch_start",
                  {kBatchDim, 3},
                  SliceAttrs({1}, {kMax}),
                  "node 's': cannot slice the open batch dimension: axis 0 of [N, 3] is open, so "
                  "it may only be taken whole (start 0, step 1, end at least 2147483647), got "
                  "start 1, end 9223372036854775807, step 1"},
        ErrorCase{"open_batch_end",
                  {3, kBatchDim},
                  SliceAttrs({0}, {-1}, {1}),
                  "node 's': cannot slice the open batch dimension: axis 1 of [3, N] is open, so "
                  "it may only be taken whole (start 0, step 1, end at least 2147483647), got "
                  "start 0, end -1, step 1"},
        ErrorCase{"open_batch_reversed",
                  {kBatchDim},
                  SliceAttrs({-1}, {kMin}, {0}, {-1}),
                  "node 's': cannot slice the open batch dimension: axis 0 of [N] is open, so it "
                  "may only be taken whole (start 0, step 1, end at least 2147483647), got start "
                  "-1, end -9223372036854775808, step -1"},
        ErrorCase{"missing_ends",
                  {2, 3},
                  Attributes{{"starts", Ints{0}}},
                  "node 's' (slice): missing required attribute 'ends' (ints)"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

// ---- pad -----------------------------------------------------------------------------------

struct PadCase {
  std::string name;
  Shape x;  // holding Iota
  Ints pads;
  double value;
  Shape want_shape;
  Doubles want;
};
void PrintTo(const PadCase& c, std::ostream* os) { *os << c.name; }

class PadValueTest : public ::testing::TestWithParam<PadCase> {};

TEST_P(PadValueTest, PlacesXAmongTheValueInBothDtypes) {
  const PadCase& c = GetParam();
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    StatusOr<Tensor> y = RunGate("pad", {Iota(c.x, dtype)}, {{"pads", c.pads}, {"value", c.value}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->dtype(), dtype);
    EXPECT_EQ(y->shape(), c.want_shape);
    EXPECT_EQ(y->ToDoubles(), c.want);
  }
}

// By hand from y[i] = x[i - begin] inside x, value outside; x = 1, 2, 3, ... row-major.
INSTANTIATE_TEST_SUITE_P(
    Gates, PadValueTest,
    ::testing::Values(
        PadCase{"vector_both_sides", {3}, {2, 1}, 0, {6}, {0, 0, 1, 2, 3, 0}},
        PadCase{"row_before_columns_after",
                {2, 2},
                {1, 0, 0, 2},
                9,
                {3, 4},
                {9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9}},
        // Rows 1, 2 of x [3, 4]; columns: one added before, the last two cropped.
        PadCase{"negative_pads", {3, 4}, {-1, 1, 0, -2}, 0, {2, 3}, {0, 5, 6, 0, 9, 10}},
        PadCase{"crop_and_pad_one_axis", {4}, {-3, 2}, -1.5, {3}, {4, -1.5, -1.5}},
        PadCase{"cropped_to_nothing", {3}, {-2, -1}, 7, {0}, {}},
        PadCase{"three_axes", {1, 2, 2}, {0, 1, -1, 0, 0, 1}, 0, {1, 3, 2}, {0, 0, 2, 0, 4, 0}},
        PadCase{"no_pads_scalar", {}, {}, 3, {}, {1}}),
    [](const ::testing::TestParamInfo<PadCase>& info) { return info.param.name; });

TEST(PadTest, ValueDefaultsToZero) {
  StatusOr<Tensor> y = RunGate("pad", {Iota({2})}, {{"pads", Ints{1, 1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->ToDoubles(), (Doubles{0, 1, 2, 0}));
}

TEST(PadTest, GradientMatchesFiniteDifferences) {
  for (const Ints& pads : {Ints{1, 0, 2, 1}, Ints{-1, 2, 0, -2}, Ints{0, -3, 1, 2}}) {
    testing::ExpectGradientsMatchFiniteDifferences(
        GateCase{.op = "pad", .shapes = {{3, 4}}, .attrs = {{"pads", pads}, {"value", 0.5}}});
  }
}

// L = sum(pad(x)^2) with x [N, 3], columns: one cropped before, two added after. At batch 2,
// dL/dx = 2x where x was kept and 0 in the cropped column.
TEST(PadBatchTest, RunsAndDifferentiatesAtAConcreteBatch) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 3});
  const ValueId y = *g->AddNode("p", "pad", {x}, {{"pads", Ints{0, -1, 0, 2}}, {"value", 1.0}});
  EXPECT_EQ(g->value(y).shape, (Shape{kBatchDim, 4}));
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("y2", "square", {y})});
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, wrt);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  const Tensor xs = Iota({2, 3});
  const ValueId fetch[] = {y, (*grads)[0]};
  StatusOr<std::vector<Tensor>> out = Program(g).Run({{"x", &xs}}, fetch);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].shape(), (Shape{2, 4}));
  EXPECT_EQ((*out)[0].ToDoubles(), (Doubles{2, 3, 1, 1, 5, 6, 1, 1}));
  EXPECT_EQ((*out)[1].ToDoubles(), (Doubles{0, 4, 6, 0, 10, 12}));
}

class PadErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PadErrorTest, NamesTheNode) {
  const ErrorCase& c = GetParam();
  Graph g(BuiltinGates());
  StatusOr<ValueId> y = g.AddNode("p", "pad", {Input(g, c.x)}, c.attrs);
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Gates, PadErrorTest,
    ::testing::Values(
        ErrorCase{"pads_length",
                  {2, 3},
                  {{"pads", Ints{1, 1}}},
                  "node 'p': pads has 2 entries, but x [2, 3] has rank 2, so it needs 4: each "
                  "axis's begin, then each axis's end"},
        ErrorCase{"open_batch",
                  {kBatchDim, 3},
                  {{"pads", Ints{1, 0, 0, 0}}},
                  "node 'p': cannot pad the open batch dimension: axis 0 of [N, 3] is open, so "
                  "its pads must be 0, got begin 1, end 0"},
        ErrorCase{"open_batch_cropped",
                  {2, kBatchDim},
                  {{"pads", Ints{0, 0, 0, -1}}},
                  "node 'p': cannot pad the open batch dimension: axis 1 of [2, N] is open, so "
                  "its pads must be 0, got begin 0, end -1"},
        ErrorCase{"crops_past_the_axis",
                  {2, 3},
                  {{"pads", Ints{0, -2, 0, -2}}},
                  "node 'p': pads remove more than axis 1 of [2, 3] holds: begin -2, end -2"},
        ErrorCase{"one_side_past_the_axis",
                  {2, 3},
                  {{"pads", Ints{0, -4, 0, 5}}},
                  "node 'p': pads remove more than axis 1 of [2, 3] holds: begin -4, end 5"},
        ErrorCase{"overflow",
                  {2, 3},
                  {{"pads", Ints{kMax, 0, 1, 0}}},
                  "node 'p': pads make axis 0 of [2, 3] too large: begin 9223372036854775807, "
                  "end 1"},
        ErrorCase{"missing_pads",
                  {2, 3},
                  {},
                  "node 'p' (pad): missing required attribute 'pads' (ints)"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

}  // namespace
}  // namespace backflow
