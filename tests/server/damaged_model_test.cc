// Checkpoints that do not fit their model and model files that cannot be read: a checkpoint is
// validated against the model before it loads (DATA_LOSS naming the slot and both shapes, the
// model keeping its values), and messages name files relative to the data directory.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_file.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

namespace fs = std::filesystem;

class DamagedModelTest : public ServerTest {
 public:

  std::string Create() {
    v1::CreateModelRequest request;
    *request.mutable_graph() = TinyMlpGraph();
    request.mutable_optimizer()->set_kind(v1::OptimizerSpec::SGD);
    request.mutable_optimizer()->set_momentum(0.9);
    request.mutable_optimizer()->set_learning_rate(0.05);
    request.set_seed(7);
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Context().get(), request, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.id();
  }
  grpc::Status Step(const std::string& id, uint64_t seed, int64_t* step = nullptr) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(seed).ToWire(request.mutable_batch());
    v1::TrainStepResponse response;
    grpc::Status s = stub_->TrainStep(Context().get(), request, &response);
    if (step != nullptr) *step = response.step();
    return s;
  }
  grpc::Status Save(const std::string& id) {
    v1::SaveCheckpointRequest request;
    request.set_model_id(id);
    v1::SaveCheckpointResponse response;
    return stub_->SaveCheckpoint(Context().get(), request, &response);
  }
  grpc::Status Restore(const std::string& id) {
    v1::RestoreCheckpointRequest request;
    request.set_model_id(id);
    v1::RestoreCheckpointResponse response;
    return stub_->RestoreCheckpoint(Context().get(), request, &response);
  }
  v1::GetParametersResponse Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    grpc::Status s = stub_->GetParameters(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  // The model's newest checkpoint file.
  fs::path CheckpointFile(const std::string& id) {
    const fs::path dir = fs::path(data_dir_.path()) / "models" / id / "checkpoints";
    fs::path newest;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.front() != '.' && (newest.empty() || it->path() > newest)) newest = it->path();
    }
    EXPECT_FALSE(newest.empty()) << "no checkpoint in " << dir;
    return newest;
  }
  v1::CheckpointRecord ReadCheckpoint(const std::string& id) {
    StatusOr<v1::CheckpointRecord> record =
        server::ReadCheckpointFile(CheckpointFile(id).string(), &manifest_);
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? *record : v1::CheckpointRecord();
  }
  // Over the file ReadCheckpoint read, as the same checkpoint (name, sequence).
  void WriteCheckpoint(const std::string& id, const v1::CheckpointRecord& record) {
    ASSERT_TRUE(server::WriteCheckpointFile(
                    CheckpointFile(id).string(), record,
                    {.model_id = id, .name = manifest_.name(), .sequence = manifest_.sequence()})
                    .ok());
  }
  // `status` is DATA_LOSS and its message holds every one of `parts`, and no absolute path.
  void ExpectDataLoss(const grpc::Status& status, const std::vector<std::string>& parts) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
    for (const std::string& part : parts) {
      EXPECT_NE(status.error_message().find(part), std::string::npos)
          << "'" << part << "' not in: " << status.error_message();
    }
    EXPECT_EQ(status.error_message().find(data_dir_.path()), std::string::npos)
        << status.error_message();
  }

  v1::CheckpointManifest manifest_;  // of the file ReadCheckpoint read last
};

// A momentum slot of [16, 8] for the [8, 16] parameter w1: the same number of elements, so
// only a check of the shape can tell.
v1::CheckpointRecord WithTransposedMomentum(v1::CheckpointRecord record) {
  v1::Tensor& slot = (*record.mutable_optimizer_state())["momentum/w1"];
  slot.clear_shape();
  slot.add_shape(16);
  slot.add_shape(8);
  return record;
}

TEST_F(DamagedModelTest, CheckpointWithAWrongShapedMomentumSlotIsDataLossAndChangesNothing) {
  const std::string id = Create();
  ASSERT_TRUE(Step(id, 1).ok());
  ASSERT_TRUE(Step(id, 2).ok());
  ASSERT_TRUE(Save(id).ok());
  v1::CheckpointRecord record = ReadCheckpoint(id);
  ASSERT_EQ(record.optimizer_state().at("momentum/w1").shape_size(), 2);
  ASSERT_NO_FATAL_FAILURE(WriteCheckpoint(id, WithTransposedMomentum(record)));
  ASSERT_TRUE(Step(id, 3).ok());
  const v1::GetParametersResponse before = Parameters(id);

  ExpectDataLoss(Restore(id), {"models/" + id + "/checkpoints/", "momentum/w1", "float32[16, 8]",
                               "float32[8, 16]"});
  const v1::GetParametersResponse after = Parameters(id);
  EXPECT_EQ(after.step(), 3);
  EXPECT_EQ(TensorBytes(after.parameters()), TensorBytes(before.parameters()));
  int64_t step = 0;
  grpc::Status stepped = Step(id, 4, &step);
  EXPECT_TRUE(stepped.ok()) << "a step after the refused restore failed: "
                            << stepped.error_message();
  EXPECT_EQ(step, 4);
}

// After a restart, a model whose files cannot be used stays listed and answers DATA_LOSS naming
// what is damaged to every call, until DeleteModel removes it.
void ExpectListedAsDamaged(DamagedModelTest& test, v1::Backflow::Stub& stub, const std::string& id,
                           const std::vector<std::string>& parts) {
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub.ListModels(Context().get(), {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1) << "the damaged model vanished";
  EXPECT_EQ(list.models(0).id(), id);
  v1::GetModelRequest get;
  get.set_model_id(id);
  v1::ModelInfo info;
  test.ExpectDataLoss(stub.GetModel(Context().get(), get, &info), parts);
  test.ExpectDataLoss(test.Step(id, 9), parts);
  test.ExpectDataLoss(test.Restore(id), parts);
}

void DeleteAndExpectGone(DamagedModelTest& test, v1::Backflow::Stub& stub, const std::string& id) {
  v1::DeleteModelRequest del;
  del.set_model_id(id);
  v1::DeleteModelResponse deleted;
  grpc::Status s = stub.DeleteModel(Context().get(), del, &deleted);
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::GetModelRequest get;
  get.set_model_id(id);
  v1::ModelInfo info;
  EXPECT_EQ(stub.GetModel(Context().get(), get, &info).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(DamagedModelTest, ModelWithADamagedCheckpointStaysListedAfterARestart) {
  const std::string id = Create();
  ASSERT_TRUE(Step(id, 1).ok());
  ASSERT_TRUE(Save(id).ok());
  ASSERT_NO_FATAL_FAILURE(Restart());  // shuts the server down first: nothing is dirty
  std::string bytes = *server::ReadFile(CheckpointFile(id).string());
  bytes[bytes.size() / 2] ^= 0x10;
  ASSERT_TRUE(server::WriteFileAtomically(CheckpointFile(id).string(), bytes).ok());
  ASSERT_NO_FATAL_FAILURE(Restart());
  ExpectListedAsDamaged(*this, *stub_, id, {"models/" + id + "/checkpoints/", "checksum mismatch"});
  DeleteAndExpectGone(*this, *stub_, id);
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(Context().get(), {}, &list).ok());
  EXPECT_EQ(list.models_size(), 0);
  EXPECT_FALSE(fs::exists(fs::path(data_dir_.path()) / "models" / id));
}

TEST_F(DamagedModelTest, ModelWithAWrongShapedSlotStaysListedAfterARestart) {
  const std::string id = Create();
  ASSERT_TRUE(Step(id, 1).ok());
  ASSERT_TRUE(Save(id).ok());
  ASSERT_NO_FATAL_FAILURE(Restart());
  ASSERT_NO_FATAL_FAILURE(WriteCheckpoint(id, WithTransposedMomentum(ReadCheckpoint(id))));
  ASSERT_NO_FATAL_FAILURE(Restart());
  ExpectListedAsDamaged(*this, *stub_, id,
                        {"models/" + id + "/checkpoints/", "momentum/w1", "float32[16, 8]"});
  DeleteAndExpectGone(*this, *stub_, id);
}

// An old server stored infinities in a float32 model's checkpoint; this one refuses them, and
// the model used to vanish after a restart (NOT_FOUND, its files still on disk).
TEST_F(DamagedModelTest, CheckpointHoldingInfinitiesStaysListedAfterARestart) {
  const std::string id = Create();
  ASSERT_TRUE(Step(id, 1).ok());
  ASSERT_TRUE(Save(id).ok());
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::CheckpointRecord record = ReadCheckpoint(id);
  std::string& data = *(*record.mutable_parameters())["b2"].mutable_data();
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(data.data(), &inf, sizeof inf);
  ASSERT_NO_FATAL_FAILURE(WriteCheckpoint(id, record));
  ASSERT_NO_FATAL_FAILURE(Restart());
  ExpectListedAsDamaged(*this, *stub_, id, {"models/" + id + "/checkpoints/", "'b2'"});
  DeleteAndExpectGone(*this, *stub_, id);
}

}  // namespace
}  // namespace backflow::testing
