// Training parity with PyTorch: each fixture written by generate.py (beside this file; see its
// docstring) holds a graph, a batch, initial parameters and batch norm state, and what torch
// computed in float64 from them: the loss and every gradient, the loss of each of 5 optimizer
// steps, the parameters and running statistics after them, and the inference-mode outputs then.
// The Trainer runs the same in float64, and again in float32, through its public API.
//
// Tolerance: element b of torch's tensor and a of ours agree when
//   |a - b| <= rtol * max(|b|, floor * scale),
// scale being the largest magnitude in the tensor's group: all gradients, all parameters after
// the steps, all running statistics after them; a loss or an inference output is its own group.
//   float64: rtol 1e-9, floor 0: purely relative, every element. (The worst seen is below 1% of
//            that bound: the engine and torch differ by summation order only.)
//   float32: rtol 1e-5, floor 0.05, against the same float64 values. A float32 gradient element
//            is a sum of hundreds of products rounded to 6e-8 each, so its absolute error scales
//            with the largest terms of the group, not with itself: elements near 1% of the
//            largest gradient are off by up to ~2e-5 of themselves, near 0.1% by ~1e-4. The floor
//            holds elements under 5% of the group's largest to 5e-7 of that largest instead
//            (the worst seen is 0.57 of the bound, depthwise's gradients).
// The test prints the worst error of each part as a fraction of its bound, so a change that
// eats into the margin shows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "engine/api/trainer.h"

namespace backflow {
namespace {

using nlohmann::json;

json LoadFixture(const std::string& name) {
  std::ifstream in(std::string(BACKFLOW_SOURCE_DIR) + "/tests/engine/parity/" + name + ".json");
  EXPECT_TRUE(in.good()) << "cannot open fixture " << name;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// A fixture tensor in `dtype` (integer tensors keep int64).
Tensor ToTensor(const json& t, DType dtype) {
  const std::vector<int64_t> dims = t["shape"].get<std::vector<int64_t>>();
  const std::vector<double> values = t["values"].get<std::vector<double>>();
  const DType type = t["dtype"] == "int64" ? DType::kInt64 : dtype;
  return Tensor::FromValues(type, Shape(dims), values);
}

ParameterMap ToMap(const json& tensors, DType dtype) {
  ParameterMap map;
  for (const auto& [name, t] : tensors.items()) map.emplace(name, ToTensor(t, dtype));
  return map;
}

OptimizerConfig ToOptimizer(const json& o) {
  OptimizerConfig config;
  config.kind = o["kind"] == "adam" ? OptimizerConfig::Kind::kAdam : OptimizerConfig::Kind::kSgd;
  config.learning_rate = o["learning_rate"];
  config.momentum = o["momentum"];
  config.weight_decay = o["weight_decay"];
  config.beta1 = o["beta1"];
  config.beta2 = o["beta2"];
  config.epsilon = o["epsilon"];
  return config;
}

struct Tolerance {
  double rtol;
  double floor;  // a fraction of the group's largest magnitude
};

double MaxAbs(const json& t) {
  double m = 0.0;
  for (double v : t["values"].get<std::vector<double>>()) m = std::max(m, std::abs(v));
  return m;
}

// The worst |a - b| / bound over the tensor (<= 1 passes), checked element by element; `scale`
// is the largest magnitude of the group the tensor belongs to (see the top of the file).
double ExpectClose(const std::string& what, const Tensor& actual, const json& expected,
                   Tolerance tol, double scale) {
  const double rtol = tol.rtol, floor = tol.floor;
  const std::vector<double> b = expected["values"].get<std::vector<double>>();
  EXPECT_EQ(actual.shape(), Shape(expected["shape"].get<std::vector<int64_t>>())) << what;
  if (actual.num_elements() != static_cast<int64_t>(b.size())) return INFINITY;
  double worst = 0.0;
  int failures = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double a = actual.at(static_cast<int64_t>(i));
    const double bound = rtol * std::max(std::abs(b[i]), floor * scale);
    const double ratio = bound > 0 ? std::abs(a - b[i]) / bound : (a == b[i] ? 0.0 : INFINITY);
    worst = std::max(worst, ratio);
    if (!(ratio <= 1.0) && ++failures <= 3) {
      ADD_FAILURE() << what << "[" << i << "]: " << a << " vs torch " << b[i] << " (" << ratio
                    << " x the bound " << bound << ")";
    }
  }
  return worst;
}

double ExpectCloseScalar(const std::string& what, double actual, double expected, Tolerance rtol) {
  return ExpectClose(what, Tensor::Scalar(DType::kFloat64, actual),
                     json{{"shape", json::array()}, {"values", {expected}}}, rtol,
                     std::abs(expected));
}

double ExpectAllClose(const std::string& what, const ParameterMap& actual, const json& expected,
                      Tolerance rtol) {
  double scale = 0.0;
  for (const auto& [name, t] : expected.items()) scale = std::max(scale, MaxAbs(t));
  double worst = 0.0;
  EXPECT_EQ(actual.size(), expected.size()) << what;
  for (const auto& [name, t] : expected.items()) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << what << ": no '" << name << "'";
      continue;
    }
    worst = std::max(worst, ExpectClose(what + " " + name, it->second, t, rtol, scale));
  }
  return worst;
}

// The fixture's graph in a Trainer with the fixture's initial parameters and state.
std::unique_ptr<Trainer> MakeTrainer(const json& fx, DType dtype, uint64_t seed) {
  StatusOr<v1::Graph> proto = ParseGraphText(fx["graph"].get<std::string>());
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  if (!proto.ok()) return nullptr;
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return nullptr;
  TrainerOptions options{.dtype = dtype, .seed = seed, .optimizer = ToOptimizer(fx["optimizer"])};
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(*graph), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  if (!trainer.ok()) return nullptr;
  ParameterMap initial = ToMap(fx["parameters"], dtype);
  initial.merge(ToMap(fx["state"], dtype));
  const Status set = (*trainer)->SetParameters(initial);
  EXPECT_TRUE(set.ok()) << set.ToString();
  return set.ok() ? std::move(*trainer) : nullptr;
}

FeedMap Feeds(const ParameterMap& inputs) {
  FeedMap feeds;
  for (const auto& [name, t] : inputs) feeds[name] = &t;
  return feeds;
}

struct Case {
  std::string fixture;
  DType dtype;
  Tolerance tol;
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.fixture << "/" << DTypeName(c.dtype);
}

// See the top of the file.
constexpr Tolerance kFloat64Tol{.rtol = 1e-9, .floor = 0.0};
constexpr Tolerance kFloat32Tol{.rtol = 1e-5, .floor = 5e-2};

class ParityTest : public testing::TestWithParam<Case> {};

TEST_P(ParityTest, GradientsStepsAndInferenceMatchTorch) {
  const Case& c = GetParam();
  const json fx = LoadFixture(c.fixture);
  std::unique_ptr<Trainer> made = MakeTrainer(fx, c.dtype, fx["seed"]);
  ASSERT_NE(made, nullptr);
  Trainer& trainer = *made;
  const ParameterMap inputs = ToMap(fx["inputs"], c.dtype);
  const FeedMap feeds = Feeds(inputs);

  StatusOr<StepResult> first = trainer.ComputeGradients(feeds);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  double worst_grad = ExpectCloseScalar("loss", first->loss, fx["loss"], c.tol);
  worst_grad =
      std::max(worst_grad, ExpectAllClose("gradient", first->gradients, fx["gradients"], c.tol));

  double worst_step = 0.0;
  const int steps = fx["steps"];
  for (int s = 0; s < steps; ++s) {
    StatusOr<StepResult> step = trainer.Step(feeds);
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    worst_step = std::max(worst_step, ExpectCloseScalar("loss of step " + std::to_string(s),
                                                        step->loss, fx["losses"][s], c.tol));
  }
  std::shared_ptr<const ParameterSnapshot> after = trainer.parameters();
  worst_step = std::max(worst_step, ExpectAllClose("parameter after the steps", after->values,
                                                   fx["final_parameters"], c.tol));
  worst_step = std::max(
      worst_step, ExpectAllClose("state after the steps", after->state, fx["final_state"], c.tol));

  double worst_infer = 0.0;
  for (const auto& [name, t] : fx["inference"].items()) {
    StatusOr<std::vector<Tensor>> out = trainer.Infer(feeds, {name});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    worst_infer =
        std::max(worst_infer, ExpectClose("inference " + name, (*out)[0], t, c.tol, MaxAbs(t)));
  }
  // The margins, as fractions of the bound (<= 1 passes): to see how close a change comes.
  std::cout << c << ": worst error / bound: gradients " << worst_grad << ", steps " << worst_step
            << ", inference " << worst_infer << " (rtol " << c.tol.rtol << ", floor " << c.tol.floor
            << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Networks, ParityTest,
                         testing::Values(Case{"resnet", DType::kFloat64, kFloat64Tol},
                                         Case{"resnet", DType::kFloat32, kFloat32Tol},
                                         Case{"depthwise", DType::kFloat64, kFloat64Tol},
                                         Case{"depthwise", DType::kFloat32, kFloat32Tol},
                                         Case{"transformer", DType::kFloat64, kFloat64Tol},
                                         Case{"transformer", DType::kFloat32, kFloat32Tol},
                                         Case{"transformer_dropout", DType::kFloat64, kFloat64Tol},
                                         Case{"transformer_dropout", DType::kFloat32, kFloat32Tol}),
                         [](const testing::TestParamInfo<Case>& info) {
                           return info.param.fixture + "_" +
                                  std::string(DTypeName(info.param.dtype));
                         });

// The dropout fixture checks the masks, not only the arithmetic around them: under another model
// seed (other masks) the loss is far from torch's, while the p = 0 transformer's is unchanged.
TEST(ParityDropoutTest, TheDropoutFixtureDependsOnTheMasks) {
  for (const std::string name : {"transformer_dropout", "transformer"}) {
    const json fx = LoadFixture(name);
    const uint64_t seed = fx["seed"];
    std::unique_ptr<Trainer> trainer = MakeTrainer(fx, DType::kFloat64, seed + 1);
    ASSERT_NE(trainer, nullptr);
    const ParameterMap inputs = ToMap(fx["inputs"], DType::kFloat64);
    StatusOr<StepResult> other = trainer->ComputeGradients(Feeds(inputs));
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    const double torch_loss = fx["loss"];
    if (name == "transformer") {
      EXPECT_NEAR(other->loss, torch_loss, 1e-9 * torch_loss) << name;
    } else {
      EXPECT_GT(std::abs(other->loss - torch_loss), 1e-3 * torch_loss) << name;
    }
  }
}

}  // namespace
}  // namespace backflow
