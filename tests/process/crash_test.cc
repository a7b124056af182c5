// Crash safety: backflow-server killed (SIGKILL) half-way through writing a checkpoint loses
// nothing it had saved. The testing flag --checkpoint-write-delay-ms holds every checkpoint write
// half-written for a while, long enough to kill the process with the temporary file on disk; a
// restart must load the previous checkpoint intact and sweep the leftover away
// (Note [Atomic files] in server/storage/checkpoint_store.h).
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A [512, 512] weight (262 144 parameters, a 1 MiB checkpoint): a write that takes a moment.
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
constexpr int kDelayMs = 3000;

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

class CrashTest : public ::testing::Test {
 protected:
  void Launch(const std::vector<std::string>& flags) {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>();
    ASSERT_GT(server_->Start(data_dir_.path(), flags), 0);
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
  }
  void Train(const std::string& id, int first, int last) {
    for (int i = first; i <= last; ++i) {
      v1::TrainStepResponse response;
      grpc::Status s = stub_->TrainStep(Deadline().get(), StepRequest(id, i), &response);
      ASSERT_TRUE(s.ok()) << s.error_message() << "\nserver output:\n" << server_->output();
      EXPECT_EQ(response.step(), i);
    }
  }
  v1::GetParametersResponse Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    grpc::Status s = stub_->GetParameters(Deadline().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  std::string ModelDir(const std::string& id) {
    return (std::filesystem::path(data_dir_.path()) / "models" / id).string();
  }

  ProcessTempDir data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

TEST_F(CrashTest, KillMidCheckpointKeepsThePreviousCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(Launch({"--checkpoint-write-delay-ms=" + std::to_string(kDelayMs)}));
  v1::CreateModelRequest create;
  *create.mutable_graph() = *ParseGraphText(kGraph);
  create.set_seed(3);
  create.mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
  v1::ModelInfo info;
  grpc::Status s = stub_->CreateModel(Deadline(seconds(60)).get(), create, &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.parameter_count(), 512 * 512);
  const std::string id = info.id();

  Train(id, 1, 2);
  v1::SaveCheckpointRequest save;
  save.set_model_id(id);
  v1::SaveCheckpointResponse saved;
  const auto save_start = std::chrono::steady_clock::now();
  s = stub_->SaveCheckpoint(Deadline(seconds(60)).get(), save, &saved);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\nserver output:\n" << server_->output();
  EXPECT_GE(std::chrono::steady_clock::now() - save_start, milliseconds(kDelayMs - 500))
      << "the write delay did not hold the checkpoint write";
  EXPECT_EQ(saved.step(), 2);
  const v1::GetParametersResponse checkpointed = Parameters(id);
  ASSERT_EQ(checkpointed.step(), 2);
  Train(id, 3, 3);
  const v1::GetParametersResponse after_step3 = Parameters(id);
  Train(id, 4, 5);

  grpc::Status interrupted;
  std::thread saving([&] {
    v1::SaveCheckpointResponse ignored;
    interrupted = stub_->SaveCheckpoint(Deadline(seconds(60)).get(), save, &ignored);
  });
  bool mid_write = false;
  for (int i = 0; i < 2000 && !mid_write; ++i) {
    mid_write = !TemporaryFiles(ModelDir(id)).empty();
    if (!mid_write) std::this_thread::sleep_for(milliseconds(5));
  }
  const std::optional<int> killed = server_->Stop(SIGKILL, seconds(10));
  saving.join();
  ASSERT_TRUE(mid_write) << "no temporary file appeared in " << ModelDir(id) << " within 10 s";
  EXPECT_TRUE(killed && WIFSIGNALED(*killed)) << DescribeStatus(killed);
  EXPECT_FALSE(interrupted.ok()) << "a save answered OK although the process died mid-write";
  EXPECT_FALSE(TemporaryFiles(ModelDir(id)).empty()) << "the crash should leave the temp file";

  ASSERT_NO_FATAL_FAILURE(Launch({}));
  v1::GetModelRequest get;
  get.set_model_id(id);
  s = stub_->GetModel(Deadline().get(), get, &info);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->output();
  EXPECT_EQ(info.step(), 2);
  EXPECT_EQ(info.checkpoint_step(), 2);
  const v1::GetParametersResponse restored = Parameters(id);
  EXPECT_EQ(restored.step(), 2);
  ASSERT_EQ(restored.parameters().size(), 1);
  EXPECT_TRUE(restored.parameters().at("w").data() == checkpointed.parameters().at("w").data())
      << "the parameters are not the checkpoint's, bitwise";
  const std::vector<std::string> leftovers = TemporaryFiles(data_dir_.path());
  EXPECT_TRUE(leftovers.empty()) << "left over after start: " << leftovers.front();

  // Training resumes from there: the Adam state came back too, so step 3 repeats bitwise.
  Train(id, 3, 3);
  EXPECT_TRUE(Parameters(id).parameters().at("w").data() == after_step3.parameters().at("w").data())
      << "step 3 after the crash differs from step 3 before it";
}

}  // namespace
}  // namespace backflow::testing
