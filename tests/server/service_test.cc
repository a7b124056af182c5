// Every Backflow RPC over the wire, against an in-process server, with real values: LeNet-5's
// ModelInfo field by field; inference and gradients equal to the engine called directly;
// training, parameters, checkpoints and deletion; the seeds' golden values through Evaluate;
// and health.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <algorithm>
#include <thread>
#include <numeric>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "engine/ir/cost.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/server_fixture.h"
#include "tests/testing/golden_cases.h"

namespace backflow::testing {
namespace {

using google::protobuf::util::MessageDifferencer;

std::vector<int64_t> Dims(const v1::TensorInfo& info) {
  return {info.shape().begin(), info.shape().end()};
}
std::vector<int64_t> Dims(const v1::Tensor& tensor) {
  return {tensor.shape().begin(), tensor.shape().end()};
}

using ServiceTest = ServerTest;

TEST_F(ServiceTest, CreateModelDescribesLeNet5FieldByField) {
  v1::CreateModelRequest request = ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05, 0.9), 7);
  request.set_name("lenet-a");
  const int64_t before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  const v1::ModelInfo info = CreateModel(*stub_, request);

  EXPECT_TRUE(std::regex_match(info.id(), std::regex("[A-Za-z0-9_-]+"))) << info.id();
  EXPECT_EQ(info.name(), "lenet-a");
  EXPECT_EQ(info.graph_name(), "lenet5");
  EXPECT_EQ(info.dtype(), v1::FLOAT32);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> parameters = {
      {"c1_b", {6}},   {"c1_w", {6, 1, 5, 5}}, {"c3_b", {16}}, {"c3_w", {16, 6, 5, 5}},
      {"f5_b", {120}}, {"f5_w", {400, 120}},   {"f6_b", {84}}, {"f6_w", {120, 84}},
      {"f7_b", {10}},  {"f7_w", {84, 10}}};
  ASSERT_EQ(info.parameters_size(), 10);
  int64_t count = 0;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(info.parameters(i).name(), parameters[i].first);
    EXPECT_EQ(Dims(info.parameters(i)), parameters[i].second) << parameters[i].first;
    EXPECT_EQ(info.parameters(i).dtype(), v1::FLOAT32);
    int64_t n = 1;
    for (int64_t d : parameters[i].second) n *= d;
    count += n;
  }
  EXPECT_EQ(count, 61706);  // the figure in the graph's header comment
  EXPECT_EQ(info.parameter_count(), count);
  ASSERT_EQ(info.inputs_size(), 2);
  EXPECT_EQ(info.inputs(0).name(), "images");
  EXPECT_EQ(Dims(info.inputs(0)), (std::vector<int64_t>{-1, 1, 28, 28}));
  EXPECT_EQ(info.inputs(1).name(), "labels");
  EXPECT_EQ(Dims(info.inputs(1)), (std::vector<int64_t>{-1}));
  ASSERT_EQ(info.outputs_size(), 2);
  EXPECT_EQ(info.outputs(0).name(), "logits");
  EXPECT_EQ(Dims(info.outputs(0)), (std::vector<int64_t>{-1, 10}));
  EXPECT_EQ(info.outputs(1).name(), "accuracy");
  EXPECT_EQ(Dims(info.outputs(1)), std::vector<int64_t>{});
  EXPECT_EQ(info.loss(), "loss");
  EXPECT_EQ(std::vector<std::string>(info.metrics().begin(), info.metrics().end()),
            std::vector<std::string>{"accuracy"});
  StatusOr<Graph> graph = ImportGraph(request.graph());
  ASSERT_TRUE(graph.ok());
  EXPECT_GT(info.flops_per_sample(), 0);
  EXPECT_EQ(info.flops_per_sample(), EstimateForwardFlops(*graph));
  EXPECT_EQ(info.step(), 0);
  EXPECT_EQ(info.checkpoint_step(), -1);
  EXPECT_TRUE(MessageDifferencer::Equals(info.optimizer(), request.optimizer()))
      << info.optimizer().DebugString();
  EXPECT_GE(info.created_unix_ms(), before_ms - 1000);
  EXPECT_LE(info.created_unix_ms(), before_ms + 60000);
}

TEST_F(ServiceTest, GetModelAndListModelsByID) {
  const v1::ModelInfo a = CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt")));
  const v1::ModelInfo b = CreateModel(*stub_, ModelRequest(ModelGraph("mlp_tanh.pbtxt")));
  ASSERT_NE(a.id(), b.id());
  EXPECT_TRUE(MessageDifferencer::Equals(GetModelInfo(*stub_, a.id()), a));
  EXPECT_TRUE(MessageDifferencer::Equals(GetModelInfo(*stub_, b.id()), b));
  EXPECT_EQ(GetModelInfo(*stub_, b.id()).graph_name(), "mlp_tanh");
  EXPECT_EQ(GetModelInfo(*stub_, b.id()).parameter_count(), 203530);

  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &list)));
  ASSERT_EQ(list.models_size(), 2);
  const bool a_first = a.id() < b.id();
  EXPECT_TRUE(MessageDifferencer::Equals(list.models(0), a_first ? a : b));
  EXPECT_TRUE(MessageDifferencer::Equals(list.models(1), a_first ? b : a));
}

TEST_F(ServiceTest, InferEqualsTheEngineBitwise) {
  const v1::CreateModelRequest request = ModelRequest(ModelGraph("lenet5.pbtxt"), {}, 11);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  ASSERT_NE(direct, nullptr);
  v1::InferRequest infer;
  infer.set_model_id(info.id());
  *infer.mutable_inputs() = ImageBatch(4, 1);
  const auto inputs = EngineTensors(infer.inputs());

  v1::InferResponse response;
  ASSERT_TRUE(IsOk(stub_->Infer(Context().get(), infer, &response)));
  EXPECT_EQ(response.step(), 0);
  ASSERT_EQ(response.outputs().count("logits"), 1u);
  EXPECT_EQ(Dims(response.outputs().at("logits")), (std::vector<int64_t>{4, 10}));
  StatusOr<std::vector<Tensor>> expected =
      direct->Infer(EngineFeeds(inputs), {"logits", "accuracy"});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ExpectBitwiseEqual(response.outputs(),
                     {{"logits", (*expected)[0]}, {"accuracy", (*expected)[1]}});

  // Any tensor of the graph, and only what was asked for.
  infer.add_outputs("f5_relu");
  ASSERT_TRUE(IsOk(stub_->Infer(Context().get(), infer, &response)));
  expected = direct->Infer(EngineFeeds(inputs), {"f5_relu"});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ExpectBitwiseEqual(response.outputs(), {{"f5_relu", (*expected)[0]}});
  EXPECT_EQ(Dims(response.outputs().at("f5_relu")), (std::vector<int64_t>{4, 120}));
}

TEST_F(ServiceTest, ComputeGradientsIsTrainStepWithoutTheStep) {
  const v1::CreateModelRequest request = ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.1), 3);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  ASSERT_NE(direct, nullptr);
  v1::ComputeGradientsRequest cg;
  cg.set_model_id(info.id());
  *cg.mutable_batch() = ImageBatch(8, 2);
  const auto batch = EngineTensors(cg.batch());

  v1::ComputeGradientsResponse gradients;
  ASSERT_TRUE(IsOk(stub_->ComputeGradients(Context().get(), cg, &gradients)));
  EXPECT_EQ(gradients.step(), 0);
  EXPECT_GT(gradients.loss(), 0.5);  // ten classes at random: about ln 10
  EXPECT_LT(gradients.loss(), 10.0);
  ASSERT_EQ(gradients.metrics().count("accuracy"), 1u);
  StatusOr<StepResult> expected = direct->ComputeGradients(EngineFeeds(batch));
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  EXPECT_EQ(gradients.loss(), expected->loss);
  ExpectBitwiseEqual(gradients.gradients(), expected->gradients);
  ASSERT_EQ(gradients.gradients().size(), 10u);
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).step(), 0);  // no update

  const v1::TrainStepResponse step = TrainStep(*stub_, info.id(), cg.batch(), true);
  EXPECT_EQ(step.step(), 1);
  EXPECT_EQ(step.loss(), gradients.loss());
  EXPECT_EQ(step.metrics().at("accuracy"), gradients.metrics().at("accuracy"));
  ExpectBitwiseEqual(step.gradients(), gradients.gradients());
}

TEST_F(ServiceTest, TrainStepCountsStepsAndReturnsWhatWasAskedFor) {
  const v1::ModelInfo info =
      CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05)));
  const v1::TrainStepResponse first = TrainStep(*stub_, info.id(), ImageBatch(8, 1));
  EXPECT_EQ(first.step(), 1);
  EXPECT_TRUE(first.gradients().empty());
  EXPECT_TRUE(first.parameters().empty());
  ASSERT_EQ(first.metrics().count("accuracy"), 1u);
  const double accuracy = first.metrics().at("accuracy");
  EXPECT_EQ(accuracy * 8, std::round(accuracy * 8)) << "a fraction of a batch of 8";

  const v1::TrainStepResponse second = TrainStep(*stub_, info.id(), ImageBatch(8, 2), true);
  EXPECT_EQ(second.step(), 2);
  EXPECT_EQ(second.gradients().size(), 10u);
  EXPECT_EQ(Dims(second.gradients().at("c3_w")), (std::vector<int64_t>{16, 6, 5, 5}));
  EXPECT_TRUE(second.parameters().empty());

  const v1::TrainStepResponse third = TrainStep(*stub_, info.id(), ImageBatch(8, 3), false, true);
  EXPECT_EQ(third.step(), 3);
  EXPECT_TRUE(third.gradients().empty());
  const v1::GetParametersResponse after = GetParameters(*stub_, info.id());
  EXPECT_EQ(after.step(), 3);
  EXPECT_EQ(after.parameters().size(), 10u);
  ExpectBitwiseEqual(third.parameters(), after.parameters());

  // A learning rate of 0 for one step (plain SGD) moves nothing, but still counts the step.
  v1::TrainStepRequest frozen;
  frozen.set_model_id(info.id());
  *frozen.mutable_batch() = ImageBatch(8, 4);
  frozen.set_learning_rate(0.0);
  frozen.set_return_parameters(true);
  v1::TrainStepResponse fourth;
  ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), frozen, &fourth)));
  EXPECT_EQ(fourth.step(), 4);
  ExpectBitwiseEqual(fourth.parameters(), after.parameters());
}

// Note [Tiny requests run where they arrive]: the staged circuit's steps run on gRPC threads
// when its queue is idle and queue up behind checkpoints otherwise. From four clients at once,
// with checkpoints in between, every step is applied exactly once, in some arrival order, and
// (the steps being identical) the parameters end bitwise where 200 engine steps take them.
TEST_F(ServiceTest, TinyModelStepsFromManyClientsApplyOnceEach) {
  const v1::CreateModelRequest request =
      ModelRequest(ModelGraph("staged_circuit.pbtxt"), SgdSpec(0.01, 0.9));
  const v1::ModelInfo info = CreateModel(*stub_, request);
  constexpr int kClients = 4, kSteps = 50;
  std::vector<std::vector<int64_t>> steps(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kSteps; ++i) {
        steps[static_cast<size_t>(c)].push_back(TrainStep(*stub_, info.id(), {}).step());
        if (i % 10 == 0) {
          v1::SaveCheckpointRequest save;
          save.set_model_id(info.id());
          v1::SaveCheckpointResponse saved;
          EXPECT_TRUE(IsOk(stub_->SaveCheckpoint(Context().get(), save, &saved)));
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  std::vector<int64_t> all;
  for (const auto& s : steps) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end())) << "one client's steps out of order";
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(kClients * kSteps);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(all, expected);

  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  for (int i = 0; i < kClients * kSteps; ++i) {
    StatusOr<StepResult> step = direct->Step({});
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    if (i == 0) {
      EXPECT_NEAR(step->loss, 1.5456448841, 1e-6);  // f(3, -4), float32
    }
  }
  const v1::GetParametersResponse after = GetParameters(*stub_, info.id());
  EXPECT_EQ(after.step(), kClients * kSteps);
  ExpectBitwiseEqual(after.parameters(), direct->parameters()->values);
}

TEST_F(ServiceTest, GetParametersReturnsTheNamedSubset) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt")));
  const v1::GetParametersResponse all = GetParameters(*stub_, info.id());
  ASSERT_EQ(all.parameters().size(), 10u);
  const v1::GetParametersResponse some = GetParameters(*stub_, info.id(), {"f7_b", "c1_w"});
  EXPECT_EQ(some.step(), 0);
  ASSERT_EQ(some.parameters().size(), 2u);
  EXPECT_TRUE(
      MessageDifferencer::Equals(some.parameters().at("f7_b"), all.parameters().at("f7_b")));
  EXPECT_TRUE(
      MessageDifferencer::Equals(some.parameters().at("c1_w"), all.parameters().at("c1_w")));
  EXPECT_EQ(Dims(some.parameters().at("c1_w")), (std::vector<int64_t>{6, 1, 5, 5}));
  // He initialisation: not all zeros; biases start at zero.
  EXPECT_NE(Floats(some.parameters().at("c1_w")), std::vector<float>(150, 0.0f));
  EXPECT_EQ(Floats(some.parameters().at("f7_b")), std::vector<float>(10, 0.0f));
}

TEST_F(ServiceTest, SetParametersThenGetReturnsExactlyThem) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt")));
  const v1::GetParametersResponse before = GetParameters(*stub_, info.id());
  v1::SetParametersRequest set;
  set.set_model_id(info.id());
  (*set.mutable_parameters())["f7_b"] =
      WireTensor({10}, {0.5f, -0.0f, 1e-30f, -3.25f, 7.0f, 0.1f, 0.2f, 0.3f, 0.4f, 1e30f});
  (*set.mutable_parameters())["c1_b"] = WireTensor({6}, {1, 2, 3, 4, 5, 6});
  v1::SetParametersResponse set_response;
  ASSERT_TRUE(IsOk(stub_->SetParameters(Context().get(), set, &set_response)));
  EXPECT_EQ(set_response.step(), 0);

  v1::GetParametersResponse after = GetParameters(*stub_, info.id());
  WireTensorMap expected = before.parameters();
  expected["f7_b"] = set.parameters().at("f7_b");
  expected["c1_b"] = set.parameters().at("c1_b");
  ExpectBitwiseEqual(after.parameters(), expected);
  EXPECT_EQ(after.step(), 0);

  // if_step equal to the current step applies.
  EXPECT_EQ(TrainStep(*stub_, info.id(), ImageBatch(4, 1)).step(), 1);
  set.set_if_step(1);
  (*set.mutable_parameters())["c1_b"] = WireTensor({6}, {-1, -2, -3, -4, -5, -6});
  ASSERT_TRUE(IsOk(stub_->SetParameters(Context().get(), set, &set_response)));
  EXPECT_EQ(set_response.step(), 1);
  after = GetParameters(*stub_, info.id(), {"c1_b", "f7_b"});
  ExpectBitwiseEqual(after.parameters(), set.parameters());
}

TEST_F(ServiceTest, RestoreCheckpointRollsBackAndTrainingRepeatsBitwise) {
  const v1::ModelInfo info =
      CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt"), AdamSpec(1e-3)));
  for (uint32_t s = 1; s <= 2; ++s) TrainStep(*stub_, info.id(), ImageBatch(8, s));
  v1::SaveCheckpointRequest save;
  save.set_model_id(info.id());
  v1::SaveCheckpointResponse saved;
  ASSERT_TRUE(IsOk(stub_->SaveCheckpoint(Context().get(), save, &saved)));
  EXPECT_EQ(saved.step(), 2);
  const std::filesystem::path file = std::filesystem::path(data_dir_.path()) / "models" /
                                     info.id() / "checkpoints" / "000000000001.auto.bfck";
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  EXPECT_EQ(saved.bytes(), static_cast<int64_t>(std::filesystem::file_size(file)));
  EXPECT_GT(saved.bytes(), 61706 * 4);  // at least the parameters' bytes
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).checkpoint_step(), 2);
  const v1::GetParametersResponse at_save = GetParameters(*stub_, info.id());

  std::vector<v1::TrainStepResponse> first_run;
  for (uint32_t s = 3; s <= 5; ++s) {
    first_run.push_back(TrainStep(*stub_, info.id(), ImageBatch(8, s), false, true));
  }
  EXPECT_EQ(first_run.back().step(), 5);

  v1::RestoreCheckpointRequest restore;
  restore.set_model_id(info.id());
  v1::RestoreCheckpointResponse restored;
  ASSERT_TRUE(IsOk(stub_->RestoreCheckpoint(Context().get(), restore, &restored)));
  EXPECT_EQ(restored.step(), 2);
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).step(), 2);
  const v1::GetParametersResponse after_restore = GetParameters(*stub_, info.id());
  EXPECT_EQ(after_restore.step(), 2);
  ExpectBitwiseEqual(after_restore.parameters(), at_save.parameters());

  // Adam's moments and step count came back too, so the same batches give the same results.
  for (uint32_t s = 3; s <= 5; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const v1::TrainStepResponse again = TrainStep(*stub_, info.id(), ImageBatch(8, s), false, true);
    const v1::TrainStepResponse& first = first_run[s - 3];
    EXPECT_EQ(again.step(), first.step());
    EXPECT_EQ(again.loss(), first.loss());
    ExpectBitwiseEqual(again.parameters(), first.parameters());
  }
}

TEST_F(ServiceTest, DeleteModelRemovesItFromTheListAndTheDataDirectory) {
  const v1::ModelInfo keep = CreateModel(*stub_, ModelRequest(ModelGraph("mlp_tanh.pbtxt")));
  const v1::ModelInfo gone = CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt")));
  const std::filesystem::path dir = std::filesystem::path(data_dir_.path()) / "models" / gone.id();
  EXPECT_TRUE(std::filesystem::exists(dir / "model.pb")) << dir;

  v1::DeleteModelRequest del;
  del.set_model_id(gone.id());
  v1::DeleteModelResponse deleted;
  ASSERT_TRUE(IsOk(stub_->DeleteModel(Context().get(), del, &deleted)));
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;

  v1::GetModelRequest get;
  get.set_model_id(gone.id());
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->GetModel(Context().get(), get, &info), grpc::StatusCode::NOT_FOUND,
                        gone.id()));
  EXPECT_TRUE(HasStatus(stub_->DeleteModel(Context().get(), del, &deleted),
                        grpc::StatusCode::NOT_FOUND, gone.id()));
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &list)));
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).id(), keep.id());
}

class EvaluateGoldenTest : public ServerTest,
                           public ::testing::WithParamInterface<std::tuple<GoldenCase, bool>> {};

TEST_P(EvaluateGoldenTest, OutputsAndGradientsMatchTheSeeds) {
  const auto& [c, float64] = GetParam();
  const double tolerance = float64 ? 1e-9 : 1e-5;
  v1::EvaluateRequest request;
  *request.mutable_graph() = ModelGraph("seeds/" + c.file + ".pbtxt");
  for (const auto& [name, value] : c.inputs) {
    (*request.mutable_values())[name] =
        float64 ? WireTensor64({}, {value}) : WireTensor({}, {static_cast<float>(value)});
  }
  for (const auto& [name, _] : c.gradients) request.add_wrt(name);
  request.set_seed(7);
  v1::EvaluateResponse response;
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), request, &response)));

  auto value_of = [&](const v1::Tensor& t) {
    EXPECT_EQ(t.dtype(), float64 ? v1::FLOAT64 : v1::FLOAT32);
    EXPECT_EQ(t.shape_size(), 0);
    return float64 ? Doubles(t).at(0) : static_cast<double>(Floats(t).at(0));
  };
  ASSERT_EQ(response.outputs().size(), 1u);  // the output is the loss
  ASSERT_EQ(response.outputs().count(c.loss), 1u);
  const double output = value_of(response.outputs().at(c.loss));
  EXPECT_LE(RelativeError(output, c.output), tolerance) << output << " expected " << c.output;
  ASSERT_EQ(response.gradients().size(), c.gradients.size());
  for (const auto& [name, expected] : c.gradients) {
    ASSERT_EQ(response.gradients().count(name), 1u) << name;
    const double actual = value_of(response.gradients().at(name));
    EXPECT_LE(RelativeError(actual, expected), tolerance)
        << "d/d" << name << " = " << actual << ", expected " << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, EvaluateGoldenTest,
                         ::testing::Combine(::testing::ValuesIn(GoldenCases()), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param).file +
                                  (std::get<1>(info.param) ? "_f64" : "_f32");
                         });

TEST_F(ServiceTest, EvaluateWithExplicitOutputsTargetAndWrt) {
  // The gate-by-gate sigmoid neuron, w = [2, -3, -3], x = [-1, -2]: dot = w0 x0 + w1 x1 + w2 = 1.
  v1::EvaluateRequest request;
  *request.mutable_graph() = ModelGraph("seeds/sigmoid_neuron_gates.pbtxt");
  (*request.mutable_values())["x0"] = WireTensor64({}, {-1});
  (*request.mutable_values())["x1"] = WireTensor64({}, {-2});
  request.add_outputs("dot");
  request.add_outputs("f");
  request.set_target("dot");
  for (const char* name : {"w0", "x0", "x1"}) request.add_wrt(name);
  v1::EvaluateResponse response;
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), request, &response)));
  ASSERT_EQ(response.outputs().size(), 2u);
  EXPECT_EQ(Doubles(response.outputs().at("dot")), std::vector<double>{1.0});
  EXPECT_NEAR(Doubles(response.outputs().at("f"))[0], 1 / (1 + std::exp(-1.0)), 1e-15);
  ASSERT_EQ(response.gradients().size(), 3u);
  EXPECT_EQ(Doubles(response.gradients().at("w0")), std::vector<double>{-1.0});  // x0
  EXPECT_EQ(Doubles(response.gradients().at("x0")), std::vector<double>{2.0});   // w0
  EXPECT_EQ(Doubles(response.gradients().at("x1")), std::vector<double>{-3.0});  // w1

  // The loss by an inner node, with a parameter's value given: w0 = 1 makes dot = 2.
  (*request.mutable_values())["w0"] = WireTensor64({}, {1});
  request.clear_target();
  request.clear_wrt();
  request.add_wrt("dot");
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), request, &response)));
  EXPECT_EQ(Doubles(response.outputs().at("dot")), std::vector<double>{2.0});
  const double f = 1 / (1 + std::exp(-2.0));
  EXPECT_NEAR(Doubles(response.outputs().at("f"))[0], f, 1e-15);
  EXPECT_NEAR(Doubles(response.gradients().at("dot"))[0], f * (1 - f), 1e-15);
}

TEST_F(ServiceTest, HealthCheckIsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "backflow.v1.Backflow", "inference.GRPCInferenceService"}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(IsOk(health->Check(Context().get(), request, &response))) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

}  // namespace
}  // namespace backflow::testing
