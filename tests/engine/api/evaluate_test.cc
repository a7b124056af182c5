#include "engine/api/evaluate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <thread>

#include "engine/api/import.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"
#include "tests/testing/golden_cases.h"

namespace backflow {
namespace {

using testing::GoldenCase;
using testing::RelativeError;

using ::testing::HasSubstr;
using ValueMap = std::unordered_map<std::string, Tensor>;

Graph LoadSeed(const std::string& file) {
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/seeds/" + file + ".pbtxt");
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(*graph);
}

Graph ParseGraph(const std::string& text) {
  StatusOr<v1::Graph> proto = ParseGraphText(text);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(*graph);
}

ValueMap Scalars(DType dtype, const std::map<std::string, double>& values) {
  ValueMap out;
  for (const auto& [name, v] : values) out.emplace(name, Tensor::Scalar(dtype, v));
  return out;
}

class EvaluateGoldenTest : public ::testing::TestWithParam<std::tuple<GoldenCase, DType>> {};

TEST_P(EvaluateGoldenTest, OutputAndGradientsMatchTheSeeds) {
  const auto& [c, dtype] = GetParam();
  // The golden figures have ten significant digits, so 1e-9 is as tight as float64 can be held.
  const double tolerance = dtype == DType::kFloat64 ? 1e-9 : 1e-5;
  EvaluateSpec spec;
  for (const auto& [name, _] : c.gradients) spec.wrt.push_back(name);
  StatusOr<EvaluateResult> result = Evaluate(LoadSeed(c.file), Scalars(dtype, c.inputs), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();

  // Every seed's output is its loss, so the default outputs hold it once.
  ASSERT_EQ(result->outputs.size(), 1u);
  const auto& [name, output] = result->outputs[0];
  EXPECT_EQ(output.dtype(), dtype);
  EXPECT_LE(RelativeError(output.at(0), c.output), tolerance)
      << name << " = " << output.at(0) << ", expected " << c.output;
  ASSERT_EQ(result->gradients.size(), c.gradients.size());
  size_t k = 0;
  for (const auto& [wrt, expected] : c.gradients) {
    const auto& [got_name, grad] = result->gradients[k++];
    EXPECT_EQ(got_name, wrt);
    EXPECT_EQ(grad.dtype(), dtype);
    EXPECT_LE(RelativeError(grad.at(0), expected), tolerance)
        << "d/d" << wrt << " = " << grad.at(0) << ", expected " << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, EvaluateGoldenTest,
                         ::testing::Combine(::testing::ValuesIn(testing::GoldenCases()),
                                            ::testing::Values(DType::kFloat64, DType::kFloat32)),
                         [](const auto& info) {
                           return std::get<0>(info.param).file +
                                  (std::get<1>(info.param) == DType::kFloat64 ? "_f64" : "_f32");
                         });

// y = 2x is the output, L = 1/2 ||y - t||^2 the loss (not among the outputs).
constexpr char kScaledGraph[] = R"(
  placeholders { name: "x" shape: [-1, 2] }
  placeholders { name: "t" shape: [-1, 2] }
  nodes { name: "y" op: "mul_scalar" inputs: "x" attrs { key: "a" value { f: 2 } } }
  nodes { name: "L" op: "squared_error" inputs: ["y", "t"] }
  outputs: "y"
  loss: "L"
)";

ValueMap ScaledValues(DType dtype = DType::kFloat64) {
  ValueMap values;
  values.emplace("x", Tensor::FromValues(dtype, Shape{1, 2}, std::vector<double>{1, 2}));
  values.emplace("t", Tensor::FromValues(dtype, Shape{1, 2}, std::vector<double>{0, 1}));
  return values;
}

TEST(Evaluate, DefaultOutputsAreTheGraphsOutputsThenItsLoss) {
  EvaluateSpec spec;
  spec.wrt = {"x"};
  StatusOr<EvaluateResult> result = Evaluate(ParseGraph(kScaledGraph), ScaledValues(), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->outputs.size(), 2u);
  EXPECT_EQ(result->outputs[0].first, "y");
  EXPECT_EQ(result->outputs[0].second.ToDoubles(), (std::vector<double>{2, 4}));
  EXPECT_EQ(result->outputs[1].first, "L");
  EXPECT_EQ(result->outputs[1].second.at(0), 0.5 * (2 * 2 + 3 * 3));  // y - t = [2, 3]
  // dL/dx = 2 (y - t), shaped like the fed x.
  ASSERT_EQ(result->gradients.size(), 1u);
  EXPECT_EQ(result->gradients[0].second.shape(), (Shape{1, 2}));
  EXPECT_EQ(result->gradients[0].second.ToDoubles(), (std::vector<double>{4, 6}));
}

TEST(Evaluate, ExplicitOutputsTargetAndWrtMayBeIntermediateNodes) {
  const double sig3 = 1 / (1 + std::exp(-3.0));
  const double den = sig3 + 1;  // sigmoid(3) + (3 - 4)^2
  EvaluateSpec spec;
  spec.outputs = {"den", "num"};
  spec.wrt = {"num", "x"};
  spec.target = "f";
  StatusOr<EvaluateResult> result =
      Evaluate(LoadSeed("staged"), Scalars(DType::kFloat64, {{"x", 3}, {"y", -4}}), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->outputs.size(), 2u);
  EXPECT_EQ(result->outputs[0].first, "den");
  EXPECT_NEAR(result->outputs[0].second.at(0), den, 1e-15);
  EXPECT_EQ(result->outputs[1].first, "num");
  EXPECT_NEAR(result->outputs[1].second.at(0), 3 + 1 / (1 + std::exp(4.0)), 1e-15);
  EXPECT_NEAR(result->gradients[0].second.at(0), 1 / den, 1e-15);  // f = num / den
  EXPECT_LE(RelativeError(result->gradients[1].second.at(0), 2.0595697956), 1e-9);

  // An intermediate target: d den / dx = sigmoid'(3) + 2 (x + y).
  spec.target = "den";
  spec.wrt = {"x"};
  result = Evaluate(LoadSeed("staged"), Scalars(DType::kFloat64, {{"x", 3}, {"y", -4}}), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_NEAR(result->gradients[0].second.at(0), sig3 * (1 - sig3) - 2, 1e-15);
}

TEST(Evaluate, PlaceholdersNothingRequestedReadsMayBeLeftOut) {
  EvaluateSpec spec;
  spec.outputs = {"q"};  // q = x + y; z is not read
  StatusOr<EvaluateResult> result =
      Evaluate(LoadSeed("add_mul"), Scalars(DType::kFloat64, {{"x", 1}, {"y", 2}}), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->outputs[0].second.at(0), 3);
}

TEST(Evaluate, ConstantsCanBeDifferentiatedButNotFed) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{});
  const ValueId c = *g.AddConstant("c", Tensor::Scalar(DType::kFloat64, 3));
  g.set_loss(*g.AddNode("f", "mul", {x, c}));
  EvaluateSpec spec;
  spec.wrt = {"c", "x"};
  StatusOr<EvaluateResult> result = Evaluate(g, Scalars(DType::kFloat64, {{"x", 5}}), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->outputs[0].second.at(0), 15);
  EXPECT_EQ(result->gradients[0].second.at(0), 5);  // df/dc = x
  EXPECT_EQ(result->gradients[1].second.at(0), 3);  // df/dx = c

  result = Evaluate(g, Scalars(DType::kFloat64, {{"x", 5}, {"c", 1}}), {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "value 'c': not a placeholder, parameter or state of the graph");
}

TEST(Evaluate, ValuesOfUnknownNamesAndNodesAreRejected) {
  const ValueMap base = Scalars(DType::kFloat64, {{"x", 1}, {"y", 2}, {"z", 3}});
  for (const std::string name : {"nope", "q"}) {
    ValueMap values = base;
    values.emplace(name, Tensor::Scalar(DType::kFloat64, 0));
    StatusOr<EvaluateResult> result = Evaluate(LoadSeed("add_mul"), values, {});
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(result.status().message(),
              "value '" + name + "': not a placeholder, parameter or state of the graph");
  }
}

TEST(Evaluate, MissingPlaceholderValueIsNamed) {
  StatusOr<EvaluateResult> result =
      Evaluate(LoadSeed("add_mul"), Scalars(DType::kFloat64, {{"x", 1}, {"y", 2}}), {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "placeholder 'z' has no value");
}

TEST(Evaluate, ValuesMustShareOneDtype) {
  ValueMap values = Scalars(DType::kFloat32, {{"x", 1}, {"z", 3}});
  values.emplace("y", Tensor::Scalar(DType::kFloat64, 2));
  StatusOr<EvaluateResult> result = Evaluate(LoadSeed("add_mul"), values, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "value 'y' is float64 but value 'x' is float32: all values must share one dtype");

  EvaluateSpec spec;
  spec.dtype = DType::kFloat64;
  result =
      Evaluate(LoadSeed("add_mul"), Scalars(DType::kFloat32, {{"x", 1}, {"y", 2}, {"z", 3}}), spec);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "value 'x' is float32 but dtype float64 was requested");
}

TEST(Evaluate, RequestedDtypeAppliesWhenThereAreNoValues) {
  constexpr char kText[] = R"(
    parameters { name: "w" init { constant { value: 1.5 } } }
    nodes { name: "f" op: "square" inputs: "w" }
    loss: "f"
  )";
  EvaluateSpec spec;
  spec.wrt = {"w"};
  spec.dtype = DType::kFloat64;
  StatusOr<EvaluateResult> result = Evaluate(ParseGraph(kText), {}, spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->outputs[0].second.dtype(), DType::kFloat64);
  EXPECT_EQ(result->outputs[0].second.at(0), 2.25);
  EXPECT_EQ(result->gradients[0].second.at(0), 3);

  spec.dtype.reset();  // float32
  result = Evaluate(ParseGraph(kText), {}, spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->outputs[0].second.dtype(), DType::kFloat32);
}

TEST(Evaluate, WrongShapeIsReportedWithTheTensorsName) {
  ValueMap values = ScaledValues();
  values.insert_or_assign("t", Tensor(DType::kFloat64, Shape{1, 3}));
  StatusOr<EvaluateResult> result = Evaluate(ParseGraph(kScaledGraph), values, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("'t'"));
}

TEST(Evaluate, WrtWithoutTargetOrLossIsRejected) {
  constexpr char kText[] = R"(
    placeholders { name: "x" }
    nodes { name: "y" op: "square" inputs: "x" }
    outputs: "y"
  )";
  EvaluateSpec spec;
  spec.wrt = {"x"};
  StatusOr<EvaluateResult> result =
      Evaluate(ParseGraph(kText), Scalars(DType::kFloat64, {{"x", 3}}), spec);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "no target: the graph has no loss; set target");

  spec.target = "y";  // an explicit target makes it fine
  result = Evaluate(ParseGraph(kText), Scalars(DType::kFloat64, {{"x", 3}}), spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->outputs[0].second.at(0), 9);
  EXPECT_EQ(result->gradients[0].second.at(0), 6);
}

TEST(Evaluate, TargetMustBeAScalar) {
  EvaluateSpec spec;
  spec.target = "y";
  spec.wrt = {"x"};
  StatusOr<EvaluateResult> result = Evaluate(ParseGraph(kScaledGraph), ScaledValues(), spec);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "target 'y' has shape [N, 2]: a target must be a scalar (one element)");
}

TEST(Evaluate, UnknownOutputTargetAndWrtAreNamed) {
  const std::pair<EvaluateSpec, std::string> cases[] = {
      {EvaluateSpec{.outputs = {"f", "zz"}}, "output 'zz' is not in the graph"},
      {EvaluateSpec{.target = "zz"}, "target 'zz' is not in the graph"},
      {EvaluateSpec{.wrt = {"x", "zz"}}, "wrt 'zz' is not in the graph"},
  };
  for (const auto& [spec, message] : cases) {
    StatusOr<EvaluateResult> result = Evaluate(
        LoadSeed("add_mul"), Scalars(DType::kFloat64, {{"x", 1}, {"y", 2}, {"z", 3}}), spec);
    ASSERT_FALSE(result.ok()) << message;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(result.status().message(), message);
  }
}

TEST(Evaluate, ParametersWithoutValuesComeFromTheSeed) {
  constexpr char kText[] = R"(
    parameters { name: "w" shape: [4] init { normal { stddev: 1 } } }
    parameters { name: "b" shape: [4] init { normal { stddev: 1 } } }
    nodes { name: "y" op: "add" inputs: ["w", "b"] }
    outputs: ["w", "y"]
  )";
  const Graph graph = ParseGraph(kText);
  EvaluateSpec spec;
  spec.seed = 42;
  StatusOr<EvaluateResult> first = Evaluate(graph, {}, spec);
  StatusOr<EvaluateResult> second = Evaluate(graph, {}, spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  StatusOr<Tensor> w = InitializeParameter(graph.value(*graph.Find("w")), DType::kFloat32, 42);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(BitwiseEqual(first->outputs[0].second, *w));
  EXPECT_TRUE(BitwiseEqual(first->outputs[1].second, second->outputs[1].second));

  spec.seed = 43;
  StatusOr<EvaluateResult> other = Evaluate(graph, {}, spec);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(BitwiseEqual(first->outputs[0].second, other->outputs[0].second));

  // A value overrides the initializer; the other parameter still comes from the seed.
  spec.seed = 42;
  ValueMap values;
  values.emplace("w",
                 Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{1, 2, 3, 4}));
  spec.outputs = {"w", "b", "y"};
  StatusOr<EvaluateResult> fed = Evaluate(graph, values, spec);
  ASSERT_TRUE(fed.ok()) << fed.status().ToString();
  EXPECT_EQ(fed->outputs[0].second.ToDoubles(), (std::vector<double>{1, 2, 3, 4}));
  StatusOr<Tensor> b = InitializeParameter(graph.value(*graph.Find("b")), DType::kFloat32, 42);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(BitwiseEqual(fed->outputs[1].second, *b));
  const std::vector<double> y = fed->outputs[2].second.ToDoubles();
  for (size_t i = 0; i < 4; ++i) {
    const float expected = static_cast<float>(i + 1) + static_cast<float>(b->at(int64_t(i)));
    EXPECT_EQ(static_cast<float>(y[i]), expected) << i;
  }
}

// One prepared evaluation of the staged circuit, run again and again with other values, dtypes,
// seeds and modes, and from four threads at once, answers what Evaluate answers for each, bitwise.
TEST(Evaluate, APreparedGraphRunsAgainAsEvaluateWould) {
  EvaluateSpec spec{.wrt = {"x", "y"}};
  StatusOr<std::shared_ptr<const PreparedEvaluation>> prepared =
      PrepareEvaluation(LoadSeed("staged"), spec);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  auto expect_same = [&](const ValueMap& values, const EvaluateSpec& with) {
    StatusOr<EvaluateResult> want = Evaluate(LoadSeed("staged"), values, with);
    StatusOr<EvaluateResult> got = RunEvaluation(**prepared, values, with);
    ASSERT_EQ(want.ok(), got.ok()) << got.status().ToString();
    if (!want.ok()) {
      EXPECT_EQ(got.status().message(), want.status().message());
      return;
    }
    ASSERT_EQ(got->outputs.size(), want->outputs.size());
    for (size_t i = 0; i < want->outputs.size(); ++i) {
      EXPECT_EQ(got->outputs[i].first, want->outputs[i].first);
      EXPECT_TRUE(BitwiseEqual(got->outputs[i].second, want->outputs[i].second));
    }
    ASSERT_EQ(got->gradients.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(got->gradients[i].first, spec.wrt[i]);
      EXPECT_TRUE(BitwiseEqual(got->gradients[i].second, want->gradients[i].second));
    }
  };
  expect_same(Scalars(DType::kFloat64, {{"x", 3}, {"y", -4}}), spec);
  expect_same(Scalars(DType::kFloat32, {{"x", 1}, {"y", 2}}), spec);
  expect_same(Scalars(DType::kFloat64, {{"x", 3}}), spec);  // "placeholder 'y' has no value"
  expect_same(Scalars(DType::kFloat64, {{"x", 3}, {"q", 1}}), spec);  // not in the graph
  EvaluateSpec inference = spec;
  inference.mode = EvaluateMode::kInference;
  inference.seed = 9;
  expect_same(Scalars(DType::kFloat64, {{"x", -2}, {"y", 0.5}}), inference);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k) {
        expect_same(Scalars(DType::kFloat64, {{"x", t + 0.25 * k}, {"y", -k}}), spec);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(Evaluate, NonFiniteValuesFlowThroughTheMath) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EvaluateSpec spec;
  spec.wrt = {"z"};
  StatusOr<EvaluateResult> result =
      Evaluate(LoadSeed("add_mul"),
               Scalars(DType::kFloat64,
                       {{"x", nan}, {"y", 1}, {"z", std::numeric_limits<double>::infinity()}}),
               spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(std::isnan(result->outputs[0].second.at(0)));
  EXPECT_TRUE(std::isnan(result->gradients[0].second.at(0)));  // df/dz = x + y
}

TEST(Evaluate, HonoursCancellationAndDeadline) {
  const ValueMap values = Scalars(DType::kFloat64, {{"x", 1}, {"y", 2}, {"z", 3}});
  std::atomic<bool> cancelled{true};
  RunOptions run;
  run.cancelled = &cancelled;
  StatusOr<EvaluateResult> result = Evaluate(LoadSeed("add_mul"), values, {}, run);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);

  RunOptions late;
  late.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  result = Evaluate(LoadSeed("add_mul"), values, {}, late);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace backflow
