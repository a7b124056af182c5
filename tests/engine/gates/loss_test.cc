#include "engine/gates/builtin.h"
#include "engine/gates/loss.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <any>
#include <cmath>
#include <memory>
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
using ::testing::HasSubstr;

// Maps the checker's draws from [-2, 2] on input 1 to class ids in [0, classes).
std::function<double(int, double)> LabelsIn(int64_t classes) {
  return [classes](int input, double v) {
    if (input != 1) return v;
    const double id = std::floor((v + 2) / 4 * static_cast<double>(classes));
    return std::clamp(id, 0.0, static_cast<double>(classes - 1));
  };
}

// Scores on a grid of 0.3 plus a jitter under 0.015: every s_j - s_y + margin is then at least
// 0.07 from the hinge's kink for margins 1 and 0.5 (neither is a multiple of 0.3), far beyond
// the checker's step of 1e-6.
std::function<double(int, double)> SvmInputs(int64_t classes) {
  return [classes](int input, double v) {
    if (input == 1) return LabelsIn(classes)(input, v);
    const double grid = std::round(v / 0.3) * 0.3;
    return grid + 0.1 * (v - grid);
  };
}

// Shifts logits by `offset` (the loss is shift-invariant, so a stable kernel gives the same
// gradient) and makes input 1 labels.
std::function<double(int, double)> ShiftedLogits(int64_t classes, double offset) {
  return [classes, offset](int input, double v) {
    return input == 1 ? LabelsIn(classes)(input, v) : v + offset;
  };
}

// Logits with |x| in [0.5, 1.5] (sigmoid in [0.18, 0.38] or [0.62, 0.82]) and targets in
// [0.02, 0.12] or [0.88, 0.98]: every gradient, (sigmoid(x) - t) / K or -x / K, stays large
// enough that the finite difference's rounding (about 1e-10) is far below 1e-7 of it, and the
// perturbed targets stay inside [0, 1].
double SigmoidInputs(int input, double v) {
  if (input == 0) return v < 0 ? v / 2 - 0.5 : v / 2 + 0.5;
  return v < 0 ? 0.02 + (v + 2) / 20 : 0.88 + v / 20;
}

struct ForwardCase {
  std::string name;
  std::string op;
  Attributes attrs;
  Tensor a;
  Tensor b;
  double want;  // hand-computed
};
void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }
ForwardCase Fwd(std::string name, std::string op, Attributes attrs, Tensor a, Tensor b,
                double want) {
  return {std::move(name), std::move(op), std::move(attrs), std::move(a), std::move(b), want};
}

class LossForwardTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(LossForwardTest, MatchesHandComputedValueInFloat64) {
  const ForwardCase& c = GetParam();
  StatusOr<Tensor> loss = RunGate(c.op, {c.a, c.b}, c.attrs);
  ASSERT_TRUE(loss.ok()) << loss.status().ToString();
  EXPECT_EQ(loss->dtype(), DType::kFloat64);
  EXPECT_EQ(loss->shape(), Shape{});
  EXPECT_NEAR(loss->at(0), c.want, 1e-12 * std::max(1.0, std::abs(c.want)));
}

TEST_P(LossForwardTest, MatchesHandComputedValueInFloat32) {
  const ForwardCase& c = GetParam();
  StatusOr<Tensor> loss =
      RunGate(c.op, {c.a.CastTo(DType::kFloat32), c.b.CastTo(DType::kFloat32)}, c.attrs);
  ASSERT_TRUE(loss.ok()) << loss.status().ToString();
  EXPECT_EQ(loss->dtype(), DType::kFloat32);
  EXPECT_NEAR(loss->at(0), c.want, 1e-5 * std::max(1.0, std::abs(c.want)));
}

INSTANTIATE_TEST_SUITE_P(
    Gates, LossForwardTest,
    ::testing::Values(
        // 1/2 (1 + 0 + 4)
        Fwd("squared_error_sum", "squared_error", {}, T64({3}, {1, 2, 3}), T64({3}, {0, 2, 5}),
            2.5),
        // 1/2 (1 + 4 + 9 + 16) / batch 2
        Fwd("squared_error_mean", "squared_error", {{"reduction", std::string("mean")}},
            T64({2, 2}, {1, 2, 3, 4}), T64({2, 2}, {0, 0, 0, 0}), 7.5),
        Fwd("squared_error_mean_scalar", "squared_error", {{"reduction", std::string("mean")}},
            T64({}, {3}), T64({}, {1}), 2),
        Fwd("softmax_ce_uniform", "softmax_cross_entropy", {}, T64({1, 2}, {0, 0}), T64({1}, {0}),
            0.6931471805599453),
        // (log(e + e^2 + e^3) - 3 + log(e + e^-1 + e^0.5) - 1) / 2
        Fwd("softmax_ce_two_rows", "softmax_cross_entropy", {}, T64({2, 3}, {1, 2, 3, 1, -1, 0.5}),
            T64({2}, {2, 0}), 0.48128144204318535),
        // Naively e^1000 overflows and e^-1000 underflows; rows: 0, 2000, log 2.
        Fwd("softmax_ce_large_logits", "softmax_cross_entropy", {},
            T64({3, 2}, {1000, -1000, 1000, -1000, -1000, -1000}), T64({3}, {0, 1, 1}),
            (2000 + 0.6931471805599453) / 3),
        // CS231n's cat row: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1).
        Fwd("svm_cs231n_cat", "svm_hinge", {}, T64({1, 3}, {3.2, 5.1, -1.7}), T64({1}, {0}), 2.9),
        // All three CS231n rows: (2.9 + 0 + 12.9) / 3.
        Fwd("svm_cs231n_batch", "svm_hinge", {},
            T64({3, 3}, {3.2, 5.1, -1.7, 1.3, 4.9, 2.0, 2.2, 2.5, -3.1}), T64({3}, {0, 1, 2}),
            15.8 / 3),
        Fwd("svm_margin_half", "svm_hinge", {{"margin", 0.5}}, T64({1, 3}, {3.2, 5.1, -1.7}),
            T64({1}, {0}), 2.4),
        Fwd("sigmoid_ce_zero_logit", "sigmoid_cross_entropy", {}, T64({1}, {0}), T64({1}, {0.5}),
            0.6931471805599453),
        Fwd("sigmoid_ce_soft_targets", "sigmoid_cross_entropy", {},
            T64({2, 2}, {0.5, -1.5, 3.0, -0.25}), T64({2, 2}, {1, 0, 0.25, 0.75}),
            0.9343792584038613),
        // Wrong with full confidence: 800 each, no overflow.
        Fwd("sigmoid_ce_large_logits", "sigmoid_cross_entropy", {}, T64({2}, {800, -800}),
            T64({2}, {0, 1}), 800),
        // Row 3 ties: the first maximum (class 0) wins, which is not its label.
        Fwd("accuracy", "accuracy", {}, T64({3, 2}, {1, 2, 3, 1, 0, 0}), T64({3}, {1, 0, 1}),
            2.0 / 3),
        Fwd("accuracy_all_right", "accuracy", {}, T64({2, 3}, {0, 0, 9, 5, 1, 1}), T64({2}, {2, 0}),
            1)),
    [](const ::testing::TestParamInfo<ForwardCase>& info) { return info.param.name; });

struct GradCase {
  std::string name;
  GateCase check;
};
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class LossGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(LossGradientTest, MatchesFiniteDifferences) {
  testing::ExpectGradientsMatchFiniteDifferences(GetParam().check);
}

const Attributes kMean = {{"reduction", std::string("mean")}};

INSTANTIATE_TEST_SUITE_P(
    Gates, LossGradientTest,
    ::testing::Values(
        GradCase{"squared_error_sum", {.op = "squared_error", .shapes = {{3, 4}, {3, 4}}}},
        GradCase{"squared_error_mean",
                 {.op = "squared_error", .shapes = {{3, 4}, {3, 4}}, .attrs = kMean}},
        GradCase{"squared_error_mean_scalar",
                 {.op = "squared_error", .shapes = {{}, {}}, .attrs = kMean}},
        GradCase{"softmax_ce",
                 {.op = "softmax_cross_entropy",
                  .shapes = {{4, 5}, {4}},
                  .adjust = LabelsIn(5),
                  .wrt = {0}}},
        // Near +-1000 the perturbed logits themselves round at 1e-13, which is 1e-7 of the
        // step: hence the looser tolerance.
        GradCase{"softmax_ce_logits_near_1000",
                 {.op = "softmax_cross_entropy",
                  .shapes = {{4, 5}, {4}},
                  .adjust = ShiftedLogits(5, 1000),
                  .wrt = {0},
                  .tolerance = 1e-6}},
        GradCase{"softmax_ce_logits_near_minus_1000",
                 {.op = "softmax_cross_entropy",
                  .shapes = {{4, 5}, {4}},
                  .adjust = ShiftedLogits(5, -1000),
                  .wrt = {0},
                  .tolerance = 1e-6}},
        GradCase{"svm_margin_1",
                 {.op = "svm_hinge", .shapes = {{4, 5}, {4}}, .adjust = SvmInputs(5), .wrt = {0}}},
        GradCase{"svm_margin_half",
                 {.op = "svm_hinge",
                  .shapes = {{4, 5}, {4}},
                  .attrs = {{"margin", 0.5}},
                  .adjust = SvmInputs(5),
                  .wrt = {0}}},
        GradCase{
            "sigmoid_ce",
            {.op = "sigmoid_cross_entropy", .shapes = {{2, 3}, {2, 3}}, .adjust = SigmoidInputs}}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

// L = op(x, labels) and dL/dx in `dtype`, through autodiff and the executor.
struct LossAndGrad {
  double loss = 0;
  std::vector<double> grad;
};
LossAndGrad RunWithGradient(const std::string& op, const Tensor& x, const Tensor& labels) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId xv = *graph->AddPlaceholder("x", Shape{kBatchDim, x.shape().dim(1)});
  const ValueId lv = *graph->AddPlaceholder("labels", Shape{kBatchDim}, labels.dtype());
  const ValueId loss = *graph->AddNode("loss", op, {xv, lv});
  const ValueId wrt[] = {xv};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, loss, wrt);
  EXPECT_TRUE(grads.ok()) << grads.status().ToString();
  if (!grads.ok()) return {};
  Program program(graph);
  const ValueId fetch[] = {loss, (*grads)[0]};
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &x}, {"labels", &labels}}, fetch);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return {};
  EXPECT_EQ((*out)[1].dtype(), x.dtype());
  return {(*out)[0].at(0), (*out)[1].ToDoubles()};
}

TEST(LossGatesTest, SoftmaxCrossEntropyGradientIsSoftmaxMinusOneHotInBothDtypes) {
  // Row 0: softmax(1000, -1000, 0) = (1, 0, 0), label 1. Row 1: softmax(0, log 3) = (1/4, 3/4).
  const std::vector<double> logits = {1000, -1000, 0, 0, std::log(3.0), -1e9};
  const std::vector<double> want = {0.5, -0.5, 0, 0.125, 0.375 - 0.5, 0};
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = T64({2, 3}, logits).CastTo(dtype);
    const Tensor labels = T64({2}, {1, 1}).CastTo(dtype);
    const LossAndGrad r = RunWithGradient("softmax_cross_entropy", x, labels);
    const double tol = dtype == DType::kFloat64 ? 1e-12 : 1e-6;
    EXPECT_NEAR(r.loss, (2000 + std::log(4.0 / 3)) / 2, 2000 * tol) << DTypeName(dtype);
    EXPECT_THAT(r.grad, ::testing::Pointwise(::testing::DoubleNear(tol), want)) << DTypeName(dtype);
  }
}

TEST(LossGatesTest, SvmGradientFollowsCs231nInFloat32) {
  // Row 0 (label 0): only class 1 violates the margin. Mean over 1 row.
  const Tensor x = T64({1, 3}, {3.2, 5.1, -1.7}).CastTo(DType::kFloat32);
  const Tensor labels = T64({1}, {0}).CastTo(DType::kFloat32);
  const LossAndGrad r = RunWithGradient("svm_hinge", x, labels);
  EXPECT_NEAR(r.loss, 2.9, 1e-5);
  EXPECT_EQ(r.grad, (std::vector<double>{-1, 1, 0}));
}

TEST(LossGatesTest, OpenBatchDimensionGivesAScalar) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 10});
  const ValueId labels = *g.AddPlaceholder("labels", Shape{kBatchDim});
  const ValueId y = *g.AddPlaceholder("y", Shape{kBatchDim, 10});
  for (const char* op : {"softmax_cross_entropy", "svm_hinge", "accuracy"}) {
    StatusOr<ValueId> loss = g.AddNode(std::string(op) + "_node", op, {x, labels});
    ASSERT_TRUE(loss.ok()) << loss.status().ToString();
    EXPECT_EQ(g.value(*loss).shape, Shape{}) << op;
  }
  for (const char* op : {"squared_error", "sigmoid_cross_entropy"}) {
    StatusOr<ValueId> loss = g.AddNode(std::string(op) + "_node", op, {x, y});
    ASSERT_TRUE(loss.ok()) << loss.status().ToString();
    EXPECT_EQ(g.value(*loss).shape, Shape{}) << op;
  }
}

// The executor rejects an empty batch today, so the kernels are run directly: they must still
// give 0 rather than 0/0 should a zero-row batch ever reach them.
TEST(LossGatesTest, EmptyBatchGivesZeroLoss) {
  const Tensor x(DType::kFloat64, Shape{0, 3});
  const Tensor labels(DType::kFloat64, Shape{0});
  const Shape in_shapes[] = {x.shape(), labels.shape()};
  for (const char* op : {"softmax_cross_entropy", "svm_hinge", "accuracy"}) {
    const Gate* gate = BuiltinGates().Find(op);
    const Shape out_shape;
    StatusOr<std::unique_ptr<Kernel>> kernel =
        gate->Compile(CompileContext{"y", DType::kFloat64, in_shapes, out_shape, Attributes{}});
    ASSERT_TRUE(kernel.ok()) << kernel.status().ToString();
    Tensor out(DType::kFloat64, Shape{});
    out.data<double>()[0] = std::nan("");
    const Tensor* inputs[] = {&x, &labels};
    std::any saved;
    KernelContext ctx{inputs, &out, &saved, nullptr};
    ASSERT_TRUE((*kernel)->Run(ctx).ok()) << op;
    EXPECT_EQ(out.at(0), 0) << op;
  }
}

struct LabelCase {
  std::string op;
  double bad;
  std::string want;  // the whole message
};

TEST(LossGatesTest, InvalidLabelsNameTheNodeTheLabelAndItsIndex) {
  const Tensor logits(DType::kFloat64, Shape{3, 10});
  for (const LabelCase& c : std::vector<LabelCase>{
           {"softmax_cross_entropy", 3.5,
            "node 'y': label 3.5 at index 2 is not a class id in [0, 10)"},
           {"svm_hinge", -1, "node 'y': label -1 at index 2 is not a class id in [0, 10)"},
           {"accuracy", 10, "node 'y': label 10 at index 2 is not a class id in [0, 10)"},
           {"softmax_cross_entropy", std::nan(""),
            "node 'y': label nan at index 2 is not a class id in [0, 10)"}}) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      StatusOr<Tensor> loss =
          RunGate(c.op, {logits.CastTo(dtype), T64({3}, {1, 0, c.bad}).CastTo(dtype)});
      EXPECT_EQ(loss.status().code(), StatusCode::kInvalidArgument) << c.op;
      EXPECT_EQ(loss.status().message(), c.want) << c.op << " " << DTypeName(dtype);
    }
  }
}

// Integer class ids (int32, int64) give exactly what the same ids as floats give, in both
// float dtypes; an id outside [0, C) fails the run naming the node.
Tensor Ids(DType dtype, const std::vector<int64_t>& ids) {
  Tensor t(dtype, Shape{static_cast<int64_t>(ids.size())});
  for (size_t i = 0; i < ids.size(); ++i) {
    if (dtype == DType::kInt64) {
      t.data<int64_t>()[i] = ids[i];
    } else {
      t.data<int32_t>()[i] = static_cast<int32_t>(ids[i]);
    }
  }
  return t;
}

StatusOr<double> RunForward(const std::string& op, const Tensor& x, const Tensor& labels) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId xv = *graph->AddPlaceholder("x", Shape{kBatchDim, x.shape().dim(1)});
  const ValueId lv = *graph->AddPlaceholder("labels", Shape{kBatchDim}, labels.dtype());
  BF_ASSIGN_OR_RETURN(const ValueId loss, graph->AddNode("y", op, {xv, lv}));
  Program program(graph);
  const ValueId fetch[] = {loss};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out,
                      program.Run({{"x", &x}, {"labels", &labels}}, fetch));
  return out[0].at(0);
}

TEST(LossGatesTest, IntegerLabelsAreClassIds) {
  const std::vector<double> logits = {0.5, -1, 2, 0.25, 3, -0.5, 1, 1, 0};
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = T64({3, 3}, logits).CastTo(dtype);
    const Tensor float_labels = T64({3}, {2, 0, 1}).CastTo(dtype);
    for (const char* op : {"softmax_cross_entropy", "svm_hinge"}) {
      const LossAndGrad want = RunWithGradient(op, x, float_labels);
      for (DType ids : {DType::kInt64, DType::kInt32}) {
        const LossAndGrad got = RunWithGradient(op, x, Ids(ids, {2, 0, 1}));
        EXPECT_EQ(got.loss, want.loss) << op << " " << DTypeName(ids);
        EXPECT_EQ(got.grad, want.grad) << op << " " << DTypeName(ids);
      }
    }
    // Row 0's arg-max is class 2 (right), row 1's class 1 (label 0: wrong), row 2's class 0
    // (the first of the tie; label 1: wrong).
    StatusOr<double> accuracy = RunForward("accuracy", x, Ids(DType::kInt64, {2, 0, 1}));
    ASSERT_TRUE(accuracy.ok()) << accuracy.status().ToString();
    EXPECT_EQ(*accuracy, Tensor::Scalar(dtype, 1.0 / 3).at(0));
    for (int64_t bad : {int64_t{-1}, int64_t{3}, int64_t{1} << 40}) {
      StatusOr<double> loss = RunForward("softmax_cross_entropy", x, Ids(DType::kInt64, {0, bad, 1}));
      EXPECT_EQ(loss.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(loss.status().message(), "node 'y': label " + std::to_string(bad) +
                                             " at index 1 is not a class id in [0, 3)");
    }
  }
  // Targets of squared_error are values, not ids: an integer placeholder is refused there.
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim});
  const ValueId ids = *g.AddPlaceholder("ids", Shape{kBatchDim}, DType::kInt64);
  EXPECT_EQ(g.AddNode("se", "squared_error", {x, ids}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(LossGatesTest, TargetsOutsideTheUnitIntervalAreRejected) {
  StatusOr<Tensor> loss =
      RunGate("sigmoid_cross_entropy", {T64({3}, {0, 1, 2}), T64({3}, {0, 1, 1.5})});
  EXPECT_EQ(loss.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(loss.status().message(), "node 'y': target 1.5 at index 2 is not in [0, 1]");
}

TEST(LossGatesTest, GradientToLabelsIsAnErrorNamingTheNode) {
  for (const char* op : {"softmax_cross_entropy", "svm_hinge"}) {
    Graph g(BuiltinGates());
    const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
    const ValueId labels = *g.AddPlaceholder("labels", Shape{2});
    const std::string name = std::string(op) + "_loss";
    const ValueId loss = *g.AddNode(name, op, {x, labels});
    const ValueId wrt[] = {x, labels};
    StatusOr<std::vector<ValueId>> grads = AppendBackward(g, loss, wrt);
    EXPECT_EQ(grads.status().code(), StatusCode::kInvalidArgument) << op;
    EXPECT_THAT(grads.status().message(), HasSubstr("node '" + name + "'"));
    EXPECT_THAT(grads.status().message(), HasSubstr("labels have no gradient"));
  }
}

TEST(LossGatesTest, AccuracyHasNoGradient) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{2, 3});
  const ValueId labels = *g.AddPlaceholder("labels", Shape{2});
  const ValueId acc = *g.AddNode("acc", "accuracy", {x, labels});
  EXPECT_FALSE(g.registry().Find("accuracy")->differentiable());
  const ValueId wrt[] = {x};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(g, acc, wrt);
  EXPECT_EQ(grads.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(grads.status().message(), HasSubstr("node 'acc'"));
}

struct ShapeErrorCase {
  std::string op;
  Shape a;
  Shape b;
  Attributes attrs;
  std::string want;  // a substring of the message
};

TEST(LossGatesTest, BadShapesAndAttributesNameTheNode) {
  Graph g(BuiltinGates());
  int k = 0;
  for (const ShapeErrorCase& c : std::vector<ShapeErrorCase>{
           {"squared_error",
            {2, 3},
            {3, 2},
            {},
            "y and t must have one shape, got [2, 3] and [3, 2]"},
           {"squared_error",
            {2},
            {2},
            {{"reduction", std::string("avg")}},
            "reduction must be \"sum\" or \"mean\", got \"avg\""},
           {"sigmoid_cross_entropy", {4}, {4, 1}, {}, "logits and targets must have one shape"},
           {"softmax_cross_entropy", {4}, {4}, {}, "logits must be [N, C], got [4]"},
           {"softmax_cross_entropy", {4, 10}, {5}, {}, "labels must be [4] to match logits"},
           {"svm_hinge", {4, 10}, {4, 1}, {}, "labels must be [4]"},
           {"svm_hinge", {4, 10}, {4}, {{"margin", std::nan("")}}, "margin must be finite"}}) {
    const std::string name = "bad" + std::to_string(k++);
    const ValueId a = *g.AddPlaceholder(name + "_a", c.a);
    const ValueId b = *g.AddPlaceholder(name + "_b", c.b);
    StatusOr<ValueId> loss = g.AddNode(name, c.op, {a, b}, c.attrs);
    EXPECT_EQ(loss.status().code(), StatusCode::kInvalidArgument) << c.want;
    EXPECT_THAT(loss.status().message(), HasSubstr("node '" + name + "'"));
    EXPECT_THAT(loss.status().message(), HasSubstr(c.want));
  }
}

// Placeholders cannot declare an empty or open class dimension, but shapes computed by other
// gates reach the rule too.
TEST(LossGatesTest, ClassDimensionMustBeKnownAndNonEmpty) {
  const Gate* gate = BuiltinGates().Find("accuracy");
  for (const Shape& logits : {Shape{4, 0}, Shape{4, kBatchDim}}) {
    const Shape inputs[] = {logits, Shape{4}};
    StatusOr<Shape> out = gate->CheckAndInferShape("acc", "accuracy", inputs, {});
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(),
                HasSubstr("node 'acc': the class dimension of logits must be known"));
  }
}

TEST(LossGatesTest, GradientGatesAreInternal) {
  const GateRegistry& registry = BuiltinGates();
  const std::vector<std::string> public_ops = registry.PublicOps();
  for (const char* op :
       {"squared_error", "softmax_cross_entropy", "svm_hinge", "sigmoid_cross_entropy"}) {
    const std::string grad = std::string(op) + "_grad";
    const Gate* gate = registry.Find(grad);
    ASSERT_NE(gate, nullptr) << grad;
    EXPECT_TRUE(gate->internal()) << grad;
    EXPECT_THAT(public_ops, ::testing::Contains(op));
    EXPECT_THAT(public_ops, ::testing::Not(::testing::Contains(grad)));
  }
  EXPECT_EQ(registry.Find("accuracy_grad"), nullptr);
}

}  // namespace
}  // namespace backflow
