// Restart: Server::Shutdown checkpoints what changed, and a server started on the same data
// directory brings every model back as it was: id, ModelInfo, step, parameters (bitwise) and
// optimizer state, the last proven by training on after the restart and comparing with a direct
// engine Trainer that never stopped.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

class RestartTest : public ServerTest {
 protected:
  v1::ModelInfo Create(const v1::CreateModelRequest& request) {
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Context().get(), request, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info;
  }
  v1::TrainStepResponse Step(const std::string& id, uint64_t seed) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(seed).ToWire(request.mutable_batch());
    v1::TrainStepResponse response;
    grpc::Status s = stub_->TrainStep(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  v1::GetParametersResponse Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    grpc::Status s = stub_->GetParameters(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  std::map<std::string, v1::ModelInfo> Models() {
    v1::ListModelsResponse response;
    grpc::Status s = stub_->ListModels(Context().get(), {}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::map<std::string, v1::ModelInfo> by_id;
    for (const v1::ModelInfo& info : response.models()) by_id.emplace(info.id(), info);
    return by_id;
  }
  grpc::StatusCode GetModelCode(const std::string& id) {
    v1::GetModelRequest request;
    request.set_model_id(id);
    v1::ModelInfo info;
    return stub_->GetModel(Context().get(), request, &info).error_code();
  }
  std::filesystem::path ModelDir(const std::string& id) {
    return std::filesystem::path(data_dir_.path()) / "models" / id;
  }
};

v1::CreateModelRequest Request(v1::OptimizerSpec::Kind kind, double momentum, uint64_t seed) {
  v1::CreateModelRequest request;
  *request.mutable_graph() = TinyMlpGraph();
  request.mutable_optimizer()->set_kind(kind);
  request.mutable_optimizer()->set_momentum(momentum);
  request.mutable_optimizer()->set_learning_rate(0.05);
  request.set_seed(seed);
  request.set_name("restart-" + std::to_string(seed));
  return request;
}

// ModelInfo apart from checkpoint_step, which a shutdown's save may advance.
// Equal but for the checkpoint step and the rates, which are this process's: the totals, last
// loss and its time come back from the checkpoint.
bool SameInfo(v1::ModelInfo a, v1::ModelInfo b) {
  for (v1::ModelInfo* info : {&a, &b}) {
    info->clear_checkpoint_step();
    info->mutable_statistics()->clear_steps_per_second();
    info->mutable_statistics()->clear_samples_per_second();
  }
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST_F(RestartTest, ModelsComeBackWithStepParametersAndOptimizerState) {
  const std::vector<v1::CreateModelRequest> requests = {Request(v1::OptimizerSpec::ADAM, 0.0, 11),
                                                        Request(v1::OptimizerSpec::SGD, 0.9, 12)};
  std::vector<std::unique_ptr<Trainer>> direct;
  std::vector<std::string> ids;
  for (const v1::CreateModelRequest& request : requests) {
    ids.push_back(Create(request).id());
    direct.push_back(DirectTrainer(request));
    ASSERT_NE(direct.back(), nullptr);
  }
  for (size_t m = 0; m < ids.size(); ++m) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      EXPECT_EQ(Step(ids[m], seed).step(), int64_t(seed));
      ASSERT_TRUE(direct[m]->Step(TinyBatch(seed).feeds()).ok());
    }
  }
  const std::map<std::string, v1::ModelInfo> before = Models();
  std::vector<v1::GetParametersResponse> params_before;
  for (const std::string& id : ids) params_before.push_back(Parameters(id));

  ASSERT_NO_FATAL_FAILURE(Restart());

  const std::map<std::string, v1::ModelInfo> after = Models();
  ASSERT_EQ(after.size(), 2u);
  for (size_t m = 0; m < ids.size(); ++m) {
    ASSERT_TRUE(after.count(ids[m])) << ids[m];
    const v1::ModelInfo& info = after.at(ids[m]);
    EXPECT_TRUE(SameInfo(before.at(ids[m]), info))
        << "before: " << before.at(ids[m]).ShortDebugString()
        << "\nafter: " << info.ShortDebugString();
    EXPECT_EQ(info.step(), 3);
    EXPECT_EQ(info.checkpoint_step(), 3) << "the shutdown saves trained models";
    const v1::GetParametersResponse params = Parameters(ids[m]);
    EXPECT_EQ(params.step(), 3);
    EXPECT_EQ(TensorBytes(params.parameters()), TensorBytes(params_before[m].parameters()));

    // Momentum and Adam moments carried over: the next step is the uninterrupted one.
    const v1::TrainStepResponse next = Step(ids[m], 4);
    StatusOr<StepResult> expected = direct[m]->Step(TinyBatch(4).feeds());
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    EXPECT_EQ(next.step(), 4);
    EXPECT_EQ(next.loss(), expected->loss);
    EXPECT_EQ(TensorBytes(Parameters(ids[m]).parameters()),
              TensorBytes(direct[m]->parameters()->values))
        << "model " << m << ": the step after the restart differs from one without a restart";
  }
}

TEST_F(RestartTest, UntrainedModelsAndWrittenParametersComeBack) {
  v1::CreateModelRequest request = Request(v1::OptimizerSpec::SGD, 0.0, 21);
  std::vector<float> b2 = {0.25f, -0.5f, 1.0f, 2.0f};
  (*request.mutable_initial_parameters())["b2"] = WireTensor({4}, b2);
  const std::string untouched = Create(request).id();
  const std::string written = Create(Request(v1::OptimizerSpec::SGD, 0.0, 22)).id();
  v1::SetParametersRequest set;
  set.set_model_id(written);
  (*set.mutable_parameters())["b1"] = WireTensor({16}, std::vector<float>(16, 0.125f));
  v1::SetParametersResponse set_response;
  ASSERT_TRUE(stub_->SetParameters(Context().get(), set, &set_response).ok());
  const v1::GetParametersResponse untouched_before = Parameters(untouched);
  const v1::GetParametersResponse written_before = Parameters(written);
  EXPECT_EQ(Floats(untouched_before.parameters().at("b2")), b2);

  ASSERT_NO_FATAL_FAILURE(Restart());

  for (const auto& [id, before] :
       {std::pair{untouched, untouched_before}, std::pair{written, written_before}}) {
    const v1::GetParametersResponse after = Parameters(id);
    EXPECT_EQ(after.step(), 0) << id;
    EXPECT_EQ(TensorBytes(after.parameters()), TensorBytes(before.parameters())) << id;
  }
  EXPECT_EQ(Floats(Parameters(written).parameters().at("b1")), std::vector<float>(16, 0.125f))
      << "a SetParameters before the shutdown was lost";
}

TEST_F(RestartTest, DeletedModelStaysDeleted) {
  const std::string kept = Create(Request(v1::OptimizerSpec::SGD, 0.0, 31)).id();
  const std::string deleted = Create(Request(v1::OptimizerSpec::ADAM, 0.0, 32)).id();
  Step(deleted, 1);
  v1::DeleteModelRequest del;
  del.set_model_id(deleted);
  v1::DeleteModelResponse del_response;
  ASSERT_TRUE(stub_->DeleteModel(Context().get(), del, &del_response).ok());

  ASSERT_NO_FATAL_FAILURE(Restart());

  const std::map<std::string, v1::ModelInfo> models = Models();
  EXPECT_EQ(models.size(), 1u);
  EXPECT_TRUE(models.count(kept));
  EXPECT_EQ(GetModelCode(deleted), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(std::filesystem::exists(ModelDir(deleted)));
  EXPECT_TRUE(std::filesystem::exists(ModelDir(kept) / "model.pb"));
}

TEST_F(RestartTest, ModelTrainedAfterItsCheckpointIsSavedAtTheNewerStep) {
  const std::string id = Create(Request(v1::OptimizerSpec::ADAM, 0.0, 41)).id();
  Step(id, 1);
  Step(id, 2);
  v1::SaveCheckpointRequest save;
  save.set_model_id(id);
  v1::SaveCheckpointResponse saved;
  ASSERT_TRUE(stub_->SaveCheckpoint(Context().get(), save, &saved).ok());
  EXPECT_EQ(saved.step(), 2);
  for (uint64_t seed = 3; seed <= 5; ++seed) Step(id, seed);
  EXPECT_EQ(Models().at(id).checkpoint_step(), 2);
  const v1::GetParametersResponse before = Parameters(id);
  ASSERT_EQ(before.step(), 5);

  ASSERT_NO_FATAL_FAILURE(Restart());

  const std::map<std::string, v1::ModelInfo> models = Models();
  ASSERT_TRUE(models.count(id));
  EXPECT_EQ(models.at(id).step(), 5);
  EXPECT_EQ(models.at(id).checkpoint_step(), 5);
  const v1::GetParametersResponse after = Parameters(id);
  EXPECT_EQ(after.step(), 5);
  EXPECT_EQ(TensorBytes(after.parameters()), TensorBytes(before.parameters()));

  // Restoring now goes to the shutdown's checkpoint, not the older explicit one.
  Step(id, 6);
  v1::RestoreCheckpointRequest restore;
  restore.set_model_id(id);
  v1::RestoreCheckpointResponse restored;
  ASSERT_TRUE(stub_->RestoreCheckpoint(Context().get(), restore, &restored).ok());
  EXPECT_EQ(restored.step(), 5);
  EXPECT_EQ(TensorBytes(Parameters(id).parameters()), TensorBytes(before.parameters()));
}

}  // namespace
}  // namespace backflow::testing
