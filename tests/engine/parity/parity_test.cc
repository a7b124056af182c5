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
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "tests/engine/parity/torch_fixture.h"

namespace backflow {
namespace {

using torch_fixture::ExpectAllClose;
using torch_fixture::ExpectClose;
using torch_fixture::ExpectCloseScalar;
using torch_fixture::Feeds;
using torch_fixture::json;
using torch_fixture::MaxAbs;
using torch_fixture::Tolerance;
using torch_fixture::ToMap;
using torch_fixture::ToOptimizer;

json LoadFixture(const std::string& name) {
  return torch_fixture::LoadJson(std::string(BACKFLOW_SOURCE_DIR) + "/tests/engine/parity/" + name +
                                 ".json");
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

using torch_fixture::Case;

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
