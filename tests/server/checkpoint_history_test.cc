// Checkpoint history over the API: named checkpoints beside the automatic ones, restore by name
// or step, what a restart loads after a restore, listing, deleting, and the errors of each.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

namespace fs = std::filesystem;

class CheckpointHistoryTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override { config.checkpoint_keep = 2; }

  std::string Create() {
    v1::CreateModelRequest request;
    *request.mutable_graph() = TinyMlpGraph();
    request.mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
    request.mutable_optimizer()->set_learning_rate(0.01);
    request.set_seed(3);
    return CreateModel(*stub_, request).id();
  }
  int64_t Step(const std::string& id, uint64_t seed) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(seed).ToWire(request.mutable_batch());
    v1::TrainStepResponse response;
    EXPECT_TRUE(IsOk(stub_->TrainStep(Context().get(), request, &response)));
    return response.step();
  }
  grpc::Status Save(const std::string& id, const std::string& name = "", bool replace = false,
                    v1::SaveCheckpointResponse* response = nullptr) {
    v1::SaveCheckpointRequest request;
    request.set_model_id(id);
    request.set_name(name);
    request.set_replace(replace);
    v1::SaveCheckpointResponse ignored;
    return stub_->SaveCheckpoint(Context().get(), request, response ? response : &ignored);
  }
  grpc::Status Restore(const std::string& id, const std::string& name, std::optional<int64_t> step,
                       v1::RestoreCheckpointResponse* response) {
    v1::RestoreCheckpointRequest request;
    request.set_model_id(id);
    request.set_name(name);
    if (step.has_value()) request.set_step(*step);
    return stub_->RestoreCheckpoint(Context().get(), request, response);
  }
  std::vector<v1::CheckpointInfo> List(const std::string& id) {
    v1::ListCheckpointsRequest request;
    request.set_model_id(id);
    v1::ListCheckpointsResponse response;
    EXPECT_TRUE(IsOk(stub_->ListCheckpoints(Context().get(), request, &response)));
    return {response.checkpoints().begin(), response.checkpoints().end()};
  }
  grpc::Status Delete(const std::string& id, const std::string& name) {
    v1::DeleteCheckpointRequest request;
    request.set_model_id(id);
    request.set_name(name);
    v1::DeleteCheckpointResponse response;
    return stub_->DeleteCheckpoint(Context().get(), request, &response);
  }
  // The parameters' bytes, by name.
  std::map<std::string, std::string> Weights(const std::string& id) {
    std::map<std::string, std::string> weights;
    const v1::GetParametersResponse response = GetParameters(*stub_, id);  // outlives the loop
    for (const auto& [name, tensor] : response.parameters()) {
      weights[name] = tensor.data();
    }
    return weights;
  }
};

TEST_F(CheckpointHistoryTest, NamedCheckpointsSurviveAutomaticOnesAndRestoresPersist) {
  const std::string id = Create();
  ASSERT_EQ(Step(id, 1), 1);
  v1::SaveCheckpointResponse saved;
  ASSERT_TRUE(IsOk(Save(id, "first", false, &saved)));
  EXPECT_EQ(saved.step(), 1);
  EXPECT_EQ(saved.checkpoint().name(), "first");
  EXPECT_EQ(saved.checkpoint().sequence(), 1);
  EXPECT_TRUE(saved.checkpoint().current());
  EXPECT_EQ(saved.checkpoint().bytes(), saved.bytes());
  const auto at_first = Weights(id);
  for (uint64_t seed = 2; seed <= 4; ++seed) {  // automatic checkpoints at steps 2, 3, 4
    ASSERT_EQ(Step(id, seed), static_cast<int64_t>(seed));
    ASSERT_TRUE(IsOk(Save(id)));
  }
  const auto at_four = Weights(id);
  ASSERT_EQ(Step(id, 5), 5);

  // --checkpoint-keep=2: the automatic checkpoint of step 2 is gone, the named one stays.
  std::vector<v1::CheckpointInfo> listed = List(id);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].name(), "first");
  EXPECT_EQ(listed[0].step(), 1);
  EXPECT_FALSE(listed[0].current());
  EXPECT_EQ(listed[1].name(), "");
  EXPECT_EQ(listed[1].step(), 3);
  EXPECT_EQ(listed[2].step(), 4);
  EXPECT_EQ(listed[2].sequence(), 4);
  EXPECT_TRUE(listed[2].current());
  EXPECT_GT(listed[2].saved_unix_ms(), 1700000000000);
  EXPECT_EQ(listed[2].damage(), "");

  v1::RestoreCheckpointResponse restored;
  ASSERT_TRUE(IsOk(Restore(id, "first", std::nullopt, &restored)));
  EXPECT_EQ(restored.step(), 1);
  EXPECT_EQ(restored.checkpoint().name(), "first");
  EXPECT_TRUE(restored.checkpoint().current());
  EXPECT_EQ(Weights(id), at_first);
  EXPECT_EQ(GetModelInfo(*stub_, id).checkpoint_step(), 1);
  listed = List(id);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_TRUE(listed[0].current());
  EXPECT_FALSE(listed[2].current());

  // A restart loads the checkpoint restored, not the newest.
  ASSERT_NO_FATAL_FAILURE(Restart());
  EXPECT_EQ(GetModelInfo(*stub_, id).step(), 1);
  EXPECT_EQ(Weights(id), at_first);

  ASSERT_TRUE(IsOk(Restore(id, "", 4, &restored)));
  EXPECT_EQ(restored.step(), 4);
  EXPECT_EQ(restored.checkpoint().sequence(), 4);
  EXPECT_EQ(Weights(id), at_four);
  // Training goes on from there; a shutdown saves it as a new automatic checkpoint.
  ASSERT_EQ(Step(id, 5), 5);
  ASSERT_NO_FATAL_FAILURE(Restart());
  EXPECT_EQ(GetModelInfo(*stub_, id).step(), 5);
  listed = List(id);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].name(), "first");
  EXPECT_EQ(listed[1].step(), 4);
  EXPECT_EQ(listed[2].step(), 5);
  EXPECT_TRUE(listed[2].current());
}

TEST_F(CheckpointHistoryTest, ErrorsNameWhatIsWrong) {
  const std::string id = Create();
  v1::RestoreCheckpointResponse restored;
  grpc::Status s = Restore(id, "", std::nullopt, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(s.error_message(), "model '" + id + "' has no checkpoint");
  ASSERT_EQ(Step(id, 1), 1);
  ASSERT_TRUE(IsOk(Save(id, "best")));

  s = Save(id, "best");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_NE(s.error_message().find("already has a checkpoint named 'best'"), std::string::npos);
  ASSERT_EQ(Step(id, 2), 2);
  v1::SaveCheckpointResponse replaced;
  ASSERT_TRUE(IsOk(Save(id, "best", /*replace=*/true, &replaced)));
  EXPECT_EQ(replaced.checkpoint().sequence(), 2);
  ASSERT_EQ(List(id).size(), 1u);
  EXPECT_EQ(List(id)[0].step(), 2);

  s = Save(id, "../escape");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("checkpoint name '../escape'"), std::string::npos);
  s = Restore(id, "nope", std::nullopt, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(s.error_message(), "model '" + id + "' has no checkpoint named 'nope'");
  s = Restore(id, "", 7, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(s.error_message(), "model '" + id + "' has no checkpoint at step 7");
  s = Restore(id, "best", 2, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  s = Delete(id, "best");  // the model is at it
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  s = Delete(id, "other");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  ASSERT_TRUE(IsOk(Save(id)));
  ASSERT_TRUE(IsOk(Delete(id, "best")));
  ASSERT_EQ(List(id).size(), 1u);
  EXPECT_EQ(List(id)[0].name(), "");

  v1::ListCheckpointsRequest request;
  request.set_model_id("m-none");
  v1::ListCheckpointsResponse response;
  EXPECT_EQ(stub_->ListCheckpoints(Context().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A checkpoint file damaged on disk is listed with its damage, restoring it is DATA_LOSS naming
// the file, and the model is unchanged.
TEST_F(CheckpointHistoryTest, ADamagedFileIsListedAndRefused) {
  const std::string id = Create();
  ASSERT_EQ(Step(id, 1), 1);
  ASSERT_TRUE(IsOk(Save(id, "old")));
  ASSERT_EQ(Step(id, 2), 2);
  ASSERT_TRUE(IsOk(Save(id)));
  const fs::path file =
      fs::path(data_dir_.path()) / "models" / id / "checkpoints" / "000000000001.named.old.bfck";
  ASSERT_TRUE(fs::exists(file));
  fs::resize_file(file, fs::file_size(file) - 5);
  std::vector<v1::CheckpointInfo> listed = List(id);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].damage(), "");  // the manifest still reads
  const auto before = Weights(id);
  v1::RestoreCheckpointResponse restored;
  const grpc::Status s = Restore(id, "old", std::nullopt, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_EQ(
      s.error_message().rfind("models/" + id + "/checkpoints/000000000001.named.old.bfck: ", 0), 0u)
      << s.error_message();
  EXPECT_EQ(Weights(id), before);
  EXPECT_TRUE(List(id)[1].current());
}

}  // namespace
}  // namespace backflow::testing
