#include "engine/api/gradcheck.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "engine/api/evaluate.h"
#include "engine/api/import.h"
#include "engine/gates/builtin.h"
#include "engine/ir/gate.h"

namespace backflow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ValueMap = std::unordered_map<std::string, Tensor>;

// x [N, 5] -> linear 5->4, tanh -> linear 4->3 -> softmax cross-entropy against int64 labels.
constexpr char kMlp[] = R"pb(
  placeholders { name: "x" shape: [-1, 5] }
  placeholders { name: "labels" shape: [-1] dtype: INT64 }
  parameters { name: "w1" shape: [5, 4] init { glorot {} } }
  parameters { name: "b1" shape: [4] init { uniform { low: -0.5 high: 0.5 } } }
  parameters { name: "w2" shape: [4, 3] init { glorot {} } }
  parameters { name: "b2" shape: [3] }
  nodes { name: "h_pre" op: "linear" inputs: ["x", "w1", "b1"] }
  nodes { name: "h" op: "tanh" inputs: "h_pre" }
  nodes { name: "logits" op: "linear" inputs: ["h", "w2", "b2"] }
  nodes { name: "loss" op: "softmax_cross_entropy" inputs: ["logits", "labels"] }
  loss: "loss"
)pb";

// Batch norm (batch statistics) and dropout (a mask per run) in training mode; float labels.
constexpr char kBatchNormDropout[] = R"pb(
  placeholders { name: "x" shape: [-1, 3] }
  placeholders { name: "labels" shape: [-1] }
  states { name: "mean" shape: [3] }
  states { name: "var" shape: [3] init { constant { value: 1 } } }
  parameters { name: "gamma" shape: [3] init { uniform { low: 0.5 high: 1.5 } } }
  parameters { name: "beta" shape: [3] init { uniform { low: -0.5 high: 0.5 } } }
  parameters { name: "w" shape: [3, 4] init { glorot {} } }
  nodes { name: "bn" op: "batch_norm" inputs: ["x", "mean", "var", "gamma", "beta"] }
  nodes { name: "d" op: "dropout" inputs: "bn" attrs { key: "p" value { f: 0.3 } } }
  nodes { name: "logits" op: "matmul" inputs: ["d", "w"] }
  nodes { name: "loss" op: "softmax_cross_entropy" inputs: ["logits", "labels"] }
  loss: "loss"
)pb";

Graph Parse(const std::string& text, const GateRegistry& gates = BuiltinGates()) {
  StatusOr<v1::Graph> proto = ParseGraphText(text);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto, gates, GraphLimits{});
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(*graph);
}

// y = x, and a backward that is right ("good_copy": dL/dx = dy) or wrong ("bad_copy": dy * dy).
class CopyKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) const override {
    std::memcpy(ctx.output->raw(), ctx.inputs[0]->raw(), ctx.output->byte_size());
    return Status::Ok();
  }
};

class CopyGate : public Gate {
 public:
  explicit CopyGate(bool wrong) : wrong_(wrong) {}
  Arity arity() const override { return {1, 1}; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext&) const override {
    return std::unique_ptr<Kernel>(std::make_unique<CopyKernel>());
  }
  Status Backward(BackwardContext& ctx) const override {
    ValueId grad = ctx.output_grad();
    if (wrong_) {
      BF_ASSIGN_OR_RETURN(grad, ctx.Emit("mul", {grad, grad}, {}));
    }
    ctx.SetGrad(0, grad);
    return Status::Ok();
  }

 private:
  bool wrong_;
};

const GateRegistry& CopyGates() {
  static const GateRegistry* gates = [] {
    auto* registry = new GateRegistry;
    RegisterBuiltinGates(*registry);
    (void)registry->Register("good_copy", std::make_unique<CopyGate>(false));
    (void)registry->Register("bad_copy", std::make_unique<CopyGate>(true));
    return registry;
  }();
  return *gates;
}

// The bias passes through the copy gate under test; w does not.
std::string CopyGraph(const std::string& op) {
  return R"pb(
    placeholders { name: "x" shape: [-1, 3] }
    placeholders { name: "labels" shape: [-1] dtype: INT32 }
    parameters { name: "w" shape: [3, 6] init { glorot {} } }
    parameters { name: "b" shape: [6] init { uniform { low: -1 high: 1 } } }
    nodes { name: "b_copy" op: ")pb" +
         op + R"pb(" inputs: "b" }
    nodes { name: "logits" op: "linear" inputs: ["x", "w", "b_copy"] }
    nodes { name: "loss" op: "softmax_cross_entropy" inputs: ["logits", "labels"] }
    loss: "loss"
  )pb";
}

TEST(GradCheckTest, AWrongBackwardIsCaughtAndItsWorstElementNamed) {
  ValueMap values;
  values.emplace("x", Tensor::FromValues(DType::kFloat64, Shape{2, 3},
                                         std::vector<double>{0.5, -1, 2, 1.5, 0.25, -0.75}));
  values.emplace("labels", Tensor::FromValues(DType::kInt32, Shape{2}, std::vector<double>{4, 1}));
  GradCheckSpec spec{.seed = 11};
  StatusOr<GradCheckReport> good = CheckGradients(Parse(CopyGraph("good_copy"), CopyGates()),
                                                  values, spec);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->ok);
  StatusOr<GradCheckReport> bad = CheckGradients(Parse(CopyGraph("bad_copy"), CopyGates()),
                                                 values, spec);
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_FALSE(bad->ok);
  ASSERT_EQ(bad->tensors.size(), 2u);
  EXPECT_EQ(bad->tensors[0].name, "w");
  EXPECT_TRUE(bad->tensors[0].ok);
  const GradCheckTensor& b = bad->tensors[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.checked, 6);

  // The true gradient g comes from Evaluate on the right graph; the wrong gate reports g * g,
  // so the worst element is the one where g * g is relatively furthest from g.
  EvaluateSpec eval{.wrt = {"b"}, .seed = 11, .mode = EvaluateMode::kTraining};
  StatusOr<EvaluateResult> truth = Evaluate(Parse(CopyGraph("good_copy"), CopyGates()), values, eval);
  ASSERT_TRUE(truth.ok()) << truth.status().ToString();
  const Tensor& g = truth->gradients[0].second;
  int64_t worst = 0;
  double worst_error = -1;
  for (int64_t i = 0; i < g.num_elements(); ++i) {
    const double error = RelativeError(g.at(i) * g.at(i), g.at(i));
    if (error > worst_error) worst = i, worst_error = error;
  }
  ASSERT_FALSE(b.worst.empty());
  EXPECT_EQ(b.worst[0].index, worst);
  EXPECT_THAT(b.worst[0].position, ElementsAre(worst));
  EXPECT_NEAR(b.worst[0].analytic, g.at(worst) * g.at(worst), 1e-12);
  EXPECT_NEAR(b.worst[0].numeric, g.at(worst), 1e-8);
  EXPECT_NEAR(b.max_relative_error, worst_error, 1e-6);
}

TEST(GradCheckTest, CorrectMlpPassesWithTinyErrorsAndMatchesEvaluate) {
  GradCheckSpec spec{.seed = 7, .batch = 3};
  StatusOr<GradCheckReport> report = CheckGradients(Parse(kMlp), {}, spec);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok);
  EXPECT_THAT(report->drawn, ElementsAre("b1", "b2", "labels", "w1", "w2", "x"));
  ASSERT_EQ(report->tensors.size(), 4u);
  EXPECT_EQ(report->tensors[0].name, "w1");
  EXPECT_EQ(report->tensors[0].checked, 20);
  EXPECT_EQ(report->tensors[0].total, 20);
  EXPECT_EQ(report->evaluations, 1 + 2 * (20 + 4 + 12 + 3));
  EXPECT_GT(report->loss, 0.0);
  for (const GradCheckTensor& t : report->tensors) {
    EXPECT_TRUE(t.ok) << t.name;
    EXPECT_LT(t.max_relative_error, 1e-6) << t.name;
    EXPECT_LT(t.max_abs_error, 1e-9) << t.name;
    ASSERT_EQ(t.worst.size(), std::min<size_t>(5, static_cast<size_t>(t.total))) << t.name;
    EXPECT_GE(t.worst.front().relative_error, t.worst.back().relative_error);
  }
  // The worst element of w2 by its multi-index, against its flat index in a [4, 3] tensor.
  const GradCheckElement& e = report->tensors[2].worst[0];
  EXPECT_THAT(e.position, ElementsAre(e.index / 3, e.index % 3));
  EXPECT_NEAR(e.analytic, e.numeric, 1e-9);
}

TEST(GradCheckTest, BatchNormAndDropoutInTrainingModePass) {
  GradCheckSpec spec{.seed = 3, .batch = 6};
  StatusOr<GradCheckReport> report = CheckGradients(Parse(kBatchNormDropout), {}, spec);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok);
  ASSERT_EQ(report->tensors.size(), 3u);  // gamma, beta, w: the running statistics are state
  for (const GradCheckTensor& t : report->tensors) {
    EXPECT_LT(t.max_relative_error, 1e-6) << t.name;
    EXPECT_EQ(t.checked, t.total) << t.name;
  }
  // The seed fixes the drawn values and the masks (a perturbed run that drew other masks would
  // be far off); another seed draws others.
  StatusOr<GradCheckReport> again = CheckGradients(Parse(kBatchNormDropout), {}, spec);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->loss, report->loss) << "the same seed draws the same values and masks";
  spec.seed = 4;
  StatusOr<GradCheckReport> other = CheckGradients(Parse(kBatchNormDropout), {}, spec);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->loss, report->loss);
}

TEST(GradCheckTest, GivenInputsAreUsedAndFloatInputsCanBeChecked) {
  ValueMap values;
  values.emplace("x", Tensor::FromValues(DType::kFloat32, Shape{2, 5},
                                         std::vector<double>{0.1, -0.2, 0.3, 0.4, -0.5, 0.6,
                                                             0.7, -0.8, 0.9, 1.0}));
  values.emplace("labels", Tensor::FromValues(DType::kInt64, Shape{2}, std::vector<double>{2, 0}));
  GradCheckSpec spec{.wrt = {"x", "w2"}, .seed = 1};
  StatusOr<GradCheckReport> report = CheckGradients(Parse(kMlp), values, spec);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok);
  EXPECT_THAT(report->drawn, ElementsAre("b1", "b2", "w1", "w2"));
  ASSERT_EQ(report->tensors.size(), 2u);
  EXPECT_EQ(report->tensors[0].name, "x");
  EXPECT_EQ(report->tensors[0].shape, (Shape{2, 5}));
  // The analytic gradients are Evaluate's, on the same values (parameters drawn with one seed).
  EvaluateSpec eval{.wrt = {"x"}, .seed = 1, .dtype = DType::kFloat64};
  ValueMap f64 = values;
  f64.insert_or_assign("x", values.at("x").CastTo(DType::kFloat64));
  StatusOr<EvaluateResult> reference = Evaluate(Parse(kMlp), f64, eval);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  for (const GradCheckElement& e : report->tensors[0].worst) {
    EXPECT_DOUBLE_EQ(e.analytic, reference->gradients[0].second.at(e.index)) << e.index;
  }
}

TEST(GradCheckTest, LargeTensorsAreSampledAndTheBudgetIsEnforced) {
  constexpr char kWide[] = R"pb(
    placeholders { name: "x" shape: [-1, 30] }
    parameters { name: "w" shape: [30, 10] init { uniform { low: -1 high: 1 } } }
    nodes { name: "y" op: "matmul" inputs: ["x", "w"] }
    nodes { name: "sq" op: "mul" inputs: ["y", "y"] }
    nodes { name: "loss" op: "sum" inputs: "sq" }
    loss: "loss"
  )pb";
  GradCheckSpec spec{.seed = 5, .max_elements_per_tensor = 10};
  StatusOr<GradCheckReport> report = CheckGradients(Parse(kWide), {}, spec);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->tensors[0].checked, 10);
  EXPECT_EQ(report->tensors[0].total, 300);
  EXPECT_EQ(report->evaluations, 21);
  EXPECT_TRUE(report->ok);
  spec.max_evaluations = 20;
  StatusOr<GradCheckReport> over = CheckGradients(Parse(kWide), {}, spec);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(), HasSubstr("needs 21 forward runs, over the limit of 20"));
  // A batch too large to draw is refused before anything is allocated.
  GradCheckSpec huge{.batch = int64_t{1} << 60, .max_tensor_elements = 3000};
  StatusOr<GradCheckReport> big = CheckGradients(Parse(kWide), {}, huge);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(big.status().message(),
              HasSubstr("placeholder 'x' drawn with batch 1152921504606846976 would hold more "
                        "than 3000 elements"));
  huge.batch = 100;  // 100 x 30 = 3000: just fits
  EXPECT_TRUE(CheckGradients(Parse(kWide), {}, huge).ok());
}

TEST(GradCheckTest, ErrorsNameTheProblem) {
  auto message = [](const std::string& text, GradCheckSpec spec, const RunOptions& run = {}) {
    StatusOr<GradCheckReport> report = CheckGradients(Parse(text), {}, spec, run);
    EXPECT_FALSE(report.ok());
    return report.status().ToString();
  };
  EXPECT_THAT(message(R"pb(placeholders { name: "x" shape: [2] }
                           nodes { name: "y" op: "tanh" inputs: "x" } outputs: "y")pb",
                      {}),
              HasSubstr("INVALID_ARGUMENT: the graph has no loss"));
  EXPECT_THAT(message(kMlp, {.wrt = {"zz"}}), HasSubstr("wrt 'zz' is not in the graph"));
  EXPECT_THAT(message(kMlp, {.wrt = {"h"}}),
              HasSubstr("wrt 'h' is a node: only parameters and float placeholders"));
  EXPECT_THAT(message(kMlp, {.wrt = {"labels"}}), HasSubstr("wrt 'labels' is an integer"));
  EXPECT_THAT(message(kMlp, {.epsilon = 0}), HasSubstr("epsilon 0.000000 must be positive"));
  std::atomic<bool> cancelled{true};
  EXPECT_THAT(message(kMlp, {}, RunOptions{.cancelled = &cancelled}), HasSubstr("CANCELLED"));
  ValueMap bad;
  bad.emplace("h", Tensor::Scalar(DType::kFloat64, 1));
  StatusOr<GradCheckReport> fed = CheckGradients(Parse(kMlp), bad, {});
  EXPECT_THAT(fed.status().ToString(), HasSubstr("value 'h': not a placeholder, parameter"));
}

}  // namespace
}  // namespace backflow
