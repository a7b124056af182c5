// TrainStep over the wire against the engine's Trainer called directly: for the same graph,
// seed, optimizer and batches, every loss is the same double and every parameter the same
// bytes. The server adds transport, queues and threads, never arithmetic.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

constexpr int kSteps = 5;
constexpr int kBatchSize = 8;
constexpr int kScheduledStep = 4;  // this step sends its own learning rate

struct OptimizerCase {
  std::string name;
  v1::OptimizerSpec spec;
};

// Test names and ctest listings show the case's name, not its bytes.
void PrintTo(const OptimizerCase& c, std::ostream* os) { *os << c.name; }

std::vector<OptimizerCase> OptimizerCases() {
  std::vector<OptimizerCase> cases(4);
  cases[0].name = "SgdMomentum";
  cases[0].spec.set_kind(v1::OptimizerSpec::SGD);
  cases[0].spec.set_learning_rate(0.05);
  cases[0].spec.set_momentum(0.9);
  cases[1].name = "Adam";  // beta1, beta2 and epsilon left at their defaults
  cases[1].spec.set_kind(v1::OptimizerSpec::ADAM);
  cases[1].spec.set_learning_rate(1e-3);
  cases[2].name = "SgdNesterovWeightDecay";
  cases[2].spec.set_kind(v1::OptimizerSpec::SGD);
  cases[2].spec.set_learning_rate(0.02);
  cases[2].spec.set_momentum(0.5);
  cases[2].spec.set_nesterov(true);
  cases[2].spec.set_weight_decay(1e-3);
  cases[3].name = "AdamWClipped";
  cases[3].spec.set_kind(v1::OptimizerSpec::ADAMW);
  cases[3].spec.set_learning_rate(2e-3);
  cases[3].spec.set_beta1(0.8);
  cases[3].spec.set_beta2(0.99);
  cases[3].spec.set_epsilon(1e-6);
  cases[3].spec.set_weight_decay(0.01);
  cases[3].spec.set_clip_norm(0.5);
  return cases;
}

class TrainParityTest
    : public ServerTest,
      public ::testing::WithParamInterface<std::tuple<std::string, OptimizerCase>> {};

TEST_P(TrainParityTest, EveryStepEqualsTheEngineBitwise) {
  const auto& [model, optimizer] = GetParam();
  v1::CreateModelRequest request = ModelRequest(ModelGraph(model + ".pbtxt"), optimizer.spec, 5);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  ASSERT_FALSE(info.id().empty());
  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  ASSERT_NE(direct, nullptr);
  const double scheduled_rate = optimizer.spec.learning_rate() / 2;

  for (int k = 1; k <= kSteps; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    v1::TrainStepRequest step;
    step.set_model_id(info.id());
    *step.mutable_batch() = ImageBatch(kBatchSize, static_cast<uint32_t>(100 + k));
    step.set_return_parameters(true);
    step.set_return_gradients(true);
    StepOptions options;
    options.return_gradients = true;
    if (k == kScheduledStep) {
      step.set_learning_rate(scheduled_rate);
      options.learning_rate = scheduled_rate;
    }
    v1::TrainStepResponse response;
    ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), step, &response)));

    const auto batch = EngineTensors(step.batch());
    StatusOr<StepResult> expected = direct->Step(EngineFeeds(batch), options);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    EXPECT_EQ(response.step(), k);
    EXPECT_EQ(response.step(), expected->step);
    EXPECT_EQ(response.loss(), expected->loss);  // exactly the same double
    ExpectBitwiseEqual(response.gradients(), expected->gradients);
    ExpectBitwiseEqual(response.parameters(), direct->parameters()->values);
  }
  const v1::GetParametersResponse final_parameters = GetParameters(*stub_, info.id());
  EXPECT_EQ(final_parameters.step(), kSteps);
  ExpectBitwiseEqual(final_parameters.parameters(), direct->parameters()->values);
}

INSTANTIATE_TEST_SUITE_P(Models, TrainParityTest,
                         ::testing::Combine(::testing::Values("lenet5", "mlp_tanh"),
                                            ::testing::ValuesIn(OptimizerCases())),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
                         });

// initial_parameters are applied on top of the initializers, as Trainer::SetParameters would.
using InitialParametersTest = ServerTest;

TEST_F(InitialParametersTest, TrainLikeTheEngine) {
  v1::OptimizerSpec adam;
  adam.set_kind(v1::OptimizerSpec::ADAM);
  v1::CreateModelRequest request = ModelRequest(ModelGraph("mlp_tanh.pbtxt"), adam, 9);
  std::vector<float> b2(10);
  for (int i = 0; i < 10; ++i) b2[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i - 5);
  (*request.mutable_initial_parameters())["b2"] = WireTensor({10}, b2);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  ASSERT_NE(direct, nullptr);
  EXPECT_EQ(Floats(GetParameters(*stub_, info.id(), {"b2"}).parameters().at("b2")), b2);

  for (uint32_t k = 1; k <= 3; ++k) {
    const WireTensorMap wire = ImageBatch(kBatchSize, k);
    const v1::TrainStepResponse response = TrainStep(*stub_, info.id(), wire);
    const auto batch = EngineTensors(wire);
    StatusOr<StepResult> expected = direct->Step(EngineFeeds(batch));
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    EXPECT_EQ(response.loss(), expected->loss) << "step " << k;
  }
  ExpectBitwiseEqual(GetParameters(*stub_, info.id()).parameters(), direct->parameters()->values);
}

}  // namespace
}  // namespace backflow::testing
