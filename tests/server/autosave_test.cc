// AutoCheckpointer on a real data directory and model, without gRPC: a due step hands a
// snapshot over and the writer puts it on disk; a model with a write in flight is skipped, not
// queued; a deleted model's directory is never recreated; an older snapshot never overwrites a
// newer checkpoint; a failed write is counted and retried an interval later; Stop waits.
#include "server/autosave.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "tests/server/server_fixture.h"

namespace backflow::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class AutoCheckpointerTest : public ::testing::Test {
 protected:
  void OpenStore(milliseconds write_delay = milliseconds(0)) {
    StatusOr<std::unique_ptr<CheckpointStore>> store =
        CheckpointStore::Open(dir_.path(), CheckpointStoreOptions{.write_delay = write_delay});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  std::shared_ptr<Model> NewModel(const std::string& id) {
    v1::ModelRecord record;
    record.set_id(id);
    *record.mutable_request()->mutable_graph() = testing::TinyMlpGraph();
    record.mutable_request()->mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
    StatusOr<std::shared_ptr<Model>> model = Model::Create(record, {}, 1 << 20, &pool_);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_TRUE(store_->CreateModel(record).ok());
    return model.ok() ? *model : nullptr;
  }
  // One step, as ops::TrainStepOnBatch applies it; returns what AfterStep returned.
  bool Step(AutoCheckpointer& autosave, Model& model) {
    testing::TinyBatch batch(static_cast<uint64_t>(model.generation()) + 1);
    EXPECT_TRUE(model.trainer().Step(batch.feeds()).ok());
    model.MarkChanged();
    return autosave.AfterStep(model);
  }
  int64_t StepOnDisk(const std::string& id) {
    StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint(id);
    return loaded.ok() ? loaded->record.step() : -1;
  }

  testing::TempDir dir_;
  ComputePool pool_{1};
  std::unique_ptr<CheckpointStore> store_;
};

TEST_F(AutoCheckpointerTest, WritesTheLatestCheckpointEveryNSteps) {
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  std::shared_ptr<Model> model = NewModel("m-a");
  AutoCheckpointer autosave({.every_steps = 3}, store_.get());
  EXPECT_FALSE(Step(autosave, *model));
  EXPECT_FALSE(Step(autosave, *model));
  EXPECT_TRUE(Step(autosave, *model));  // step 3
  autosave.Stop();                      // waits for the write
  EXPECT_EQ(autosave.written(), 1);
  EXPECT_EQ(StepOnDisk("m-a"), 3);
  EXPECT_EQ(model->checkpoint_step(), 3);
  EXPECT_FALSE(model->dirty());
  EXPECT_FALSE(Step(autosave, *model));  // stopped: nothing more is handed over
}

TEST_F(AutoCheckpointerTest, AModelWithAWriteInFlightIsSkippedNotQueued) {
  ASSERT_NO_FATAL_FAILURE(OpenStore(milliseconds(300)));
  std::shared_ptr<Model> model = NewModel("m-b");
  AutoCheckpointer autosave({.every_steps = 1}, store_.get());
  EXPECT_TRUE(Step(autosave, *model));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Step(autosave, *model)) << "step " << i + 2;
  autosave.Stop();
  EXPECT_EQ(autosave.written(), 1);
  EXPECT_EQ(StepOnDisk("m-b"), 1);
  EXPECT_EQ(model->checkpoint_step(), 1);
  EXPECT_TRUE(model->dirty());  // steps 2 to 6 are for the next one (or the shutdown one)
}

TEST_F(AutoCheckpointerTest, ADeletedModelIsNeverWrittenBack) {
  ASSERT_NO_FATAL_FAILURE(OpenStore(milliseconds(200)));
  std::shared_ptr<Model> model = NewModel("m-c");
  AutoCheckpointer autosave({.every_steps = 1}, store_.get());
  EXPECT_TRUE(Step(autosave, *model));
  {  // what ops::DeleteModel does, on the model's queue
    std::lock_guard<std::mutex> lock(model->checkpoint_mu());
    ASSERT_TRUE(store_->DeleteModel("m-c").ok());
    model->MarkDeleted();
  }
  autosave.Stop();
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_.path()) / "models" / "m-c"));
  EXPECT_EQ(autosave.failed(), 0);  // skipped, not attempted
}

TEST_F(AutoCheckpointerTest, AnOlderSnapshotNeverReplacesANewerCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(OpenStore(milliseconds(200)));
  std::shared_ptr<Model> model = NewModel("m-d");
  AutoCheckpointer autosave({.every_steps = 1}, store_.get());
  EXPECT_TRUE(Step(autosave, *model));   // step 1 handed over
  EXPECT_FALSE(Step(autosave, *model));  // step 2, coalesced
  {  // a SaveCheckpoint of step 2 on the queue, while step 1 is being written or waits
    const int64_t generation = model->generation();
    const v1::CheckpointRecord record = model->TakeCheckpoint();
    std::lock_guard<std::mutex> lock(model->checkpoint_mu());
    ASSERT_TRUE(store_->SaveCheckpoint("m-d", record).ok());
    model->MarkSaved(generation, record.step());
  }
  autosave.Stop();
  EXPECT_EQ(StepOnDisk("m-d"), 2);
  EXPECT_EQ(model->checkpoint_step(), 2);
  EXPECT_FALSE(model->dirty());
}

TEST_F(AutoCheckpointerTest, AFailedWriteIsCountedAndRetriedAnIntervalLater) {
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  std::shared_ptr<Model> model = NewModel("m-e");
  // The directory vanishes behind the server's back: SaveCheckpoint answers NOT_FOUND.
  std::filesystem::remove_all(std::filesystem::path(dir_.path()) / "models" / "m-e");
  AutoCheckpointer autosave({.every_steps = 2}, store_.get());
  EXPECT_FALSE(Step(autosave, *model));
  EXPECT_TRUE(Step(autosave, *model));  // step 2: attempted, fails
  for (int i = 0; i < 200 && autosave.failed() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(autosave.failed(), 1);
  EXPECT_FALSE(Step(autosave, *model));  // step 3: one step after the attempt, not due
  EXPECT_TRUE(Step(autosave, *model));   // step 4: the retry
  autosave.Stop();
  EXPECT_EQ(autosave.failed(), 2);
  EXPECT_EQ(autosave.written(), 0);
  EXPECT_EQ(model->checkpoint_step(), -1);
  EXPECT_TRUE(model->dirty());
}

TEST_F(AutoCheckpointerTest, ADisabledPolicyHandsNothingOver) {
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  std::shared_ptr<Model> model = NewModel("m-f");
  AutoCheckpointer autosave({}, store_.get());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Step(autosave, *model));
  autosave.Stop();
  EXPECT_EQ(StepOnDisk("m-f"), -1);
}

TEST_F(AutoCheckpointerTest, ByTimeTheFirstStepAfterTheIntervalIsDue) {
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  std::shared_ptr<Model> model = NewModel("m-g");
  AutoCheckpointer autosave({.every_seconds = seconds(1)}, store_.get());
  EXPECT_FALSE(Step(autosave, *model));
  std::this_thread::sleep_for(milliseconds(1050));
  EXPECT_TRUE(Step(autosave, *model));
  autosave.Stop();
  EXPECT_EQ(StepOnDisk("m-g"), 2);
}

}  // namespace
}  // namespace backflow::server
