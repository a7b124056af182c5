// A data directory that refuses writes: every write (CreateModel, SaveCheckpoint, DeleteModel,
// the shutdown checkpoint) fails with a precise code whose message names the path relative to
// the data directory and the system's reason, the server goes on serving from memory, a failed
// DeleteModel changes nothing, and after a restart every model is back at its last checkpoint.
//
// Read-only: chmod 0555 on the data directory's folders. Root ignores permissions, so when the
// test runs as root the server runs as user 65534 (setpriv) on a directory it owns, where the
// modes bind it. Full: a file-size limit (prlimit --fsize) makes the checkpoint write fail with
// EFBIG, as ENOSPC would on a full disk (which needs a mount to produce), and proves that the
// server ignores SIGXFSZ instead of dying of it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "engine/ir/tensor_proto.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// A [512, 512] weight: a 1 MiB parameter, 2 MiB with momentum, in a model.pb of a few hundred
// bytes.
constexpr char kGraph[] = R"graph(
  name: "wide"
  placeholders { name: "x" shape: [-1, 512] }
  placeholders { name: "t" shape: [-1, 512] }
  parameters { name: "w" shape: [512, 512] init { uniform { low: -0.05 high: 0.05 } } }
  nodes { name: "y" op: "matmul" inputs: ["x", "w"] }
  nodes {
    name: "loss" op: "squared_error" inputs: ["y", "t"]
    attrs { key: "reduction" value { s: "mean" } }
  }
  outputs: "y"
  loss: "loss"
)graph";

constexpr uid_t kNobody = 65534;

v1::CreateModelRequest CreateRequest() {
  v1::CreateModelRequest create;
  *create.mutable_graph() = *ParseGraphText(kGraph);
  create.set_seed(5);
  create.mutable_optimizer()->set_kind(v1::OptimizerSpec::SGD);
  create.mutable_optimizer()->set_momentum(0.9);
  create.mutable_optimizer()->set_learning_rate(0.01);
  return create;
}

v1::TrainStepRequest StepRequest(const std::string& id, int i) {
  Tensor x(DType::kFloat32, Shape{2, 512}), t(DType::kFloat32, Shape{2, 512});
  for (int k = 0; k < 1024; ++k) {
    x.data<float>()[k] = float((k * 13 + i * 7) % 17) / 8.0f - 1.0f;
    t.data<float>()[k] = float((k * 5 + i) % 11) / 5.0f - 1.0f;
  }
  v1::TrainStepRequest request;
  request.set_model_id(id);
  TensorToProto(x, &(*request.mutable_batch())["x"]);
  TensorToProto(t, &(*request.mutable_batch())["t"]);
  return request;
}

class StorageFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = (fs::path(temp_.path()) / "data").string();
    fs::create_directories(data_dir_);
    if (geteuid() == 0) {
      ASSERT_EQ(chown(data_dir_.c_str(), kNobody, kNobody), 0);
      launcher_ = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    }
  }
  void TearDown() override { SetWritable(true); }

  void Launch(std::vector<std::string> launcher = {}) {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>();
    launcher.insert(launcher.begin(), launcher_.begin(), launcher_.end());
    server_->set_launcher(launcher);
    ASSERT_GT(server_->Start(data_dir_), 0);
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
  }
  // The data directory and every folder in it read-only (or writable again).
  void SetWritable(bool writable) {
    const fs::perms mode = writable ? fs::perms(0755) : fs::perms(0555);
    std::error_code ec;
    fs::permissions(data_dir_, mode, ec);
    for (auto it = fs::recursive_directory_iterator(data_dir_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory()) fs::permissions(it->path(), mode, ec);
    }
  }
  std::string Create() {
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Deadline(seconds(60)).get(), CreateRequest(), &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.id();
  }
  int64_t Step(const std::string& id, int i) {
    v1::TrainStepResponse response;
    grpc::Status s = stub_->TrainStep(Deadline().get(), StepRequest(id, i), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.step();
  }
  grpc::Status Save(const std::string& id) {
    v1::SaveCheckpointRequest save;
    save.set_model_id(id);
    v1::SaveCheckpointResponse saved;
    return stub_->SaveCheckpoint(Deadline(seconds(60)).get(), save, &saved);
  }
  std::string Weights(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    grpc::Status s = stub_->GetParameters(Deadline().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.parameters().at("w").data();
  }
  std::vector<v1::ModelInfo> Models() {
    v1::ListModelsResponse response;
    grpc::Status s = stub_->ListModels(Deadline().get(), {}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {response.models().begin(), response.models().end()};
  }
  // `status` has `code` and a message naming `relative_path` and `reason`, never the data
  // directory's absolute path.
  void ExpectFailure(const grpc::Status& status, grpc::StatusCode code,
                     const std::string& relative_path, const std::string& reason) {
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(relative_path, 0), 0u) << status.error_message();
    EXPECT_NE(status.error_message().find(reason), std::string::npos) << status.error_message();
    EXPECT_EQ(status.error_message().find(temp_.path()), std::string::npos)
        << status.error_message();
  }

  ProcessTempDir temp_;
  std::string data_dir_;
  std::vector<std::string> launcher_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

TEST_F(StorageFailureTest, ReadOnlyDataDirectoryFailsWritesAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  const std::string id = Create();
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Step(id, 1), 1);
  EXPECT_EQ(Step(id, 2), 2);
  ASSERT_TRUE(Save(id).ok());
  const std::string saved_weights = Weights(id);
  EXPECT_EQ(Step(id, 3), 3);

  SetWritable(false);
  const std::string model_path = "models/" + id;

  v1::DeleteModelRequest del;
  del.set_model_id(id);
  v1::DeleteModelResponse deleted;
  ExpectFailure(stub_->DeleteModel(Deadline().get(), del, &deleted),
                grpc::StatusCode::FAILED_PRECONDITION, model_path + ": cannot rename",
                "Permission denied");
  std::vector<v1::ModelInfo> models = Models();
  ASSERT_EQ(models.size(), 1u) << "a failed DeleteModel removed the model";
  EXPECT_EQ(models[0].id(), id);
  EXPECT_EQ(models[0].step(), 3);
  EXPECT_EQ(Step(id, 4), 4) << "the model no longer trains after a failed DeleteModel";

  ExpectFailure(Save(id), grpc::StatusCode::FAILED_PRECONDITION,
                model_path + "/checkpoints/.000000000002.auto.bfck.tmp.", "Permission denied");
  v1::ModelInfo created;
  ExpectFailure(stub_->CreateModel(Deadline(seconds(60)).get(), CreateRequest(), &created),
                grpc::StatusCode::FAILED_PRECONDITION, "models/m-", "Permission denied");
  EXPECT_EQ(Models().size(), 1u);
  EXPECT_EQ(Step(id, 5), 5) << "the server stopped serving from memory";

  // The shutdown checkpoint fails too: the log names the file, and the exit status says so.
  const std::optional<int> exit = server_->Stop(SIGTERM, seconds(60));
  EXPECT_TRUE(ExitedWith(exit, 1)) << DescribeStatus(exit) << "\n" << server_->output();
  const std::string log = server_->output();
  EXPECT_NE(log.find("checkpoint failed: FAILED_PRECONDITION: " + model_path +
                     "/checkpoints/.000000000002.auto.bfck.tmp."),
            std::string::npos)
      << log;
  // The start-up lines name the configured directory; the errors name paths inside it only.
  const std::string shutdown_log = log.substr(log.find("shutting down"));
  EXPECT_EQ(shutdown_log.find(temp_.path()), std::string::npos) << shutdown_log;

  SetWritable(true);
  ASSERT_NO_FATAL_FAILURE(Launch());
  models = Models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].id(), id);
  EXPECT_EQ(models[0].step(), 2) << "not back at its last checkpoint";
  EXPECT_EQ(Weights(id), saved_weights);
}

TEST_F(StorageFailureTest, FullDataDirectoryFailsTheCheckpointAndKeepsServing) {
  // 64 KiB files at most: model.pb fits, the 2 MiB checkpoint does not.
  ASSERT_NO_FATAL_FAILURE(Launch({"/usr/bin/prlimit", "--fsize=65536"}));
  const std::string id = Create();
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Step(id, 1), 1);
  const std::string trained_weights = Weights(id);

  ExpectFailure(Save(id), grpc::StatusCode::RESOURCE_EXHAUSTED,
                "models/" + id + "/checkpoints/.000000000001.auto.bfck.tmp.", "File too large");
  EXPECT_EQ(Step(id, 2), 2) << "the server stopped serving after a failed write";
  const std::optional<int> exit = server_->Stop(SIGTERM, seconds(60));
  EXPECT_TRUE(ExitedWith(exit, 1)) << DescribeStatus(exit) << "\n" << server_->output();

  ASSERT_NO_FATAL_FAILURE(Launch());
  std::vector<v1::ModelInfo> models = Models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].id(), id);
  EXPECT_EQ(models[0].step(), 0) << "no checkpoint was ever written";
  EXPECT_TRUE(TemporaryFiles(data_dir_).empty());
  EXPECT_NE(Weights(id), trained_weights);
}

}  // namespace
}  // namespace backflow::testing
