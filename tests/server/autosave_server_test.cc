// Automatic checkpoints through the API of an in-process server: GetModel's checkpoint_step
// follows them, RestoreCheckpoint goes back to the latest one, the shutdown checkpoint still
// lands after them, and a model deleted while its automatic write is in flight stays deleted,
// on disk too, after a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <thread>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using std::chrono::milliseconds;

class AutosaveServerTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.autosave = {.every_steps = 5, .every_seconds = std::chrono::seconds(0)};
    config.checkpoint_write_delay = write_delay_;
  }
  std::string Create() {
    v1::CreateModelRequest request;
    *request.mutable_graph() = TinyMlpGraph();
    request.mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Context().get(), request, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.id();
  }
  int64_t Step(const std::string& id) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(++seed_).ToWire(request.mutable_batch());
    v1::TrainStepResponse response;
    grpc::Status s = stub_->TrainStep(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.step();
  }
  v1::ModelInfo Info(const std::string& id) {
    v1::GetModelRequest request;
    request.set_model_id(id);
    v1::ModelInfo info;
    grpc::Status s = stub_->GetModel(Context().get(), request, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info;
  }
  // Polls GetModel (up to 10 s) until its checkpoint_step reaches `step`; returns the last seen.
  int64_t WaitForCheckpoint(const std::string& id, int64_t step) {
    int64_t seen = -1;
    for (int i = 0; i < 1000 && seen < step; ++i) {
      seen = Info(id).checkpoint_step();
      if (seen < step) std::this_thread::sleep_for(milliseconds(10));
    }
    return seen;
  }

  milliseconds write_delay_{0};
  uint64_t seed_ = 0;
};

TEST_F(AutosaveServerTest, GetModelAndRestoreFollowTheAutomaticCheckpoints) {
  const std::string id = Create();
  for (int i = 0; i < 4; ++i) Step(id);
  EXPECT_EQ(Info(id).checkpoint_step(), -1);  // not due before step 5
  EXPECT_EQ(Step(id), 5);
  EXPECT_EQ(WaitForCheckpoint(id, 5), 5);
  EXPECT_EQ(Step(id), 6);
  EXPECT_EQ(Step(id), 7);
  v1::RestoreCheckpointRequest restore;
  restore.set_model_id(id);
  v1::RestoreCheckpointResponse restored;
  grpc::Status s = stub_->RestoreCheckpoint(Context().get(), restore, &restored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(restored.step(), 5);
  EXPECT_EQ(Info(id).step(), 5);
  // The schedule restarted at the restore: due again 5 steps later, at step 10.
  for (int i = 0; i < 4; ++i) Step(id);
  EXPECT_EQ(Info(id).checkpoint_step(), 5);
  EXPECT_EQ(Step(id), 10);
  EXPECT_EQ(WaitForCheckpoint(id, 10), 10);

  // Between two automatic ones, the shutdown checkpoint takes the latest step.
  EXPECT_EQ(Step(id), 11);
  EXPECT_EQ(Step(id), 12);
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::ModelInfo info = Info(id);
  EXPECT_EQ(info.step(), 12);
  EXPECT_EQ(info.checkpoint_step(), 12);
}

TEST_F(AutosaveServerTest, AModelDeletedMidWriteStaysDeleted) {
  write_delay_ = milliseconds(300);  // every checkpoint write holds half-way for 300 ms
  ASSERT_NO_FATAL_FAILURE(Restart());
  const std::string id = Create();
  for (int i = 0; i < 5; ++i) Step(id);  // step 5 hands a write over
  const std::filesystem::path dir = std::filesystem::path(data_dir_.path()) / "models" / id;
  v1::DeleteModelRequest request;
  request.set_model_id(id);
  v1::DeleteModelResponse response;
  grpc::Status s = stub_->DeleteModel(Context().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(std::filesystem::exists(dir));
  std::this_thread::sleep_for(milliseconds(700));  // past any write that could still land
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the automatic write recreated the directory";
  write_delay_ = milliseconds(0);
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(Context().get(), {}, &models).ok());
  EXPECT_EQ(models.models_size(), 0);
}

TEST_F(AutosaveServerTest, ShutdownWaitsForTheWriteInFlight) {
  write_delay_ = milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(Restart());
  const std::string id = Create();
  for (int i = 0; i < 5; ++i) Step(id);  // the automatic write of step 5 is in flight
  Step(id);
  ASSERT_NO_FATAL_FAILURE(Restart());  // Shutdown: that write, then the shutdown one (step 6)
  EXPECT_EQ(Info(id).step(), 6);
  EXPECT_EQ(Info(id).checkpoint_step(), 6);
}

}  // namespace
}  // namespace backflow::testing
