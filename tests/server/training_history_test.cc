// ModelInfo.statistics over the API (Note [Training history] in server/training_stats.h): after
// N steps the samples, last loss and every point of the curve equal what the TrainStep answers
// said; the curve survives a restart, follows RestoreCheckpoint back in time, moves with a
// downloaded checkpoint to another server, and an upload with a curve that cannot be the model's
// is refused naming what is wrong.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/server/checkpoint_stream_client.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

constexpr int64_t kRows = 6;

class TrainingHistoryTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.autosave.every_steps = 0;
    config.autosave.every_seconds = std::chrono::seconds(0);
  }

  // Steps `count` batches on `id`, appending each answer to answers_.
  void Train(const std::string& id, int count) {
    for (int i = 0; i < count; ++i) {
      v1::TrainStepRequest request;
      request.set_model_id(id);
      TinyBatch(answers_.size() + 1, kRows).ToWire(request.mutable_batch());
      v1::TrainStepResponse response;
      ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), request, &response)));
      answers_.push_back(response);
    }
  }
  v1::ModelInfo Get(const std::string& id, bool history = true) {
    v1::GetModelRequest request;
    request.set_model_id(id);
    request.set_history(history);
    v1::ModelInfo info;
    EXPECT_TRUE(IsOk(stub_->GetModel(Context().get(), request, &info)));
    return info;
  }
  // The curve holds one point per answer so far (fewer than the capacity), equal to it.
  void ExpectCurveIsTheAnswers(const v1::ModelInfo& info, size_t answers) {
    const v1::TrainingStatistics& statistics = info.statistics();
    ASSERT_EQ(static_cast<size_t>(statistics.history().points_size()), answers);
    EXPECT_EQ(statistics.history().stride(), 1);
    EXPECT_EQ(statistics.samples(), static_cast<int64_t>(answers) * kRows);
    ASSERT_EQ(info.metrics_size(), 1);
    for (size_t i = 0; i < answers; ++i) {
      const v1::TrainingPoint& point = statistics.history().points(static_cast<int>(i));
      EXPECT_EQ(point.step(), answers_[i].step());
      EXPECT_EQ(point.loss(), answers_[i].loss()) << "step " << point.step();
      ASSERT_EQ(point.metrics_size(), 1);
      EXPECT_EQ(point.metrics(0), answers_[i].metrics().at(info.metrics(0)));
      EXPECT_GT(point.unix_ms(), 0);
    }
    EXPECT_TRUE(statistics.has_loss());
    EXPECT_EQ(statistics.last_loss(), answers_[answers - 1].loss());
  }

  std::vector<v1::TrainStepResponse> answers_;
};

TEST_F(TrainingHistoryTest, StatisticsEqualWhatTheClientSaw) {
  const std::string id = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.1), 1)).id();
  v1::ModelInfo fresh = Get(id);
  EXPECT_FALSE(fresh.statistics().has_loss());
  EXPECT_EQ(fresh.statistics().samples(), 0);
  Train(id, 12);
  const v1::ModelInfo info = Get(id);
  EXPECT_EQ(info.step(), 12);
  ExpectCurveIsTheAnswers(info, 12);
  EXPECT_GT(info.statistics().steps_per_second(), 0);
  EXPECT_DOUBLE_EQ(info.statistics().samples_per_second(),
                   info.statistics().steps_per_second() * kRows);
  // Without asking, and in ListModels: the statistics without the curve.
  const v1::ModelInfo plain = Get(id, /*history=*/false);
  EXPECT_EQ(plain.statistics().samples(), 12 * kRows);
  EXPECT_EQ(plain.statistics().history().points_size(), 0);
  v1::ListModelsResponse listed;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &listed)));
  ASSERT_EQ(listed.models_size(), 1);
  EXPECT_EQ(listed.models(0).statistics().last_loss(), answers_.back().loss());
  EXPECT_EQ(listed.models(0).statistics().history().points_size(), 0);
}

TEST_F(TrainingHistoryTest, TheCurveSurvivesARestart) {
  const std::string id = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.1), 1)).id();
  Train(id, 9);
  Restart();  // the shutdown checkpoint carries the curve
  const v1::ModelInfo info = Get(id);
  EXPECT_EQ(info.step(), 9);
  ExpectCurveIsTheAnswers(info, 9);
  EXPECT_EQ(info.statistics().steps_per_second(), 0) << "no step in this process yet";
  Train(id, 2);
  ExpectCurveIsTheAnswers(Get(id), 11);
}

TEST_F(TrainingHistoryTest, RestoringAnEarlierCheckpointTakesItsCurve) {
  const std::string id = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.1), 1)).id();
  Train(id, 5);
  v1::SaveCheckpointRequest save;
  save.set_model_id(id);
  save.set_name("five");
  v1::SaveCheckpointResponse saved;
  ASSERT_TRUE(IsOk(stub_->SaveCheckpoint(Context().get(), save, &saved)));
  Train(id, 4);
  v1::RestoreCheckpointRequest restore;
  restore.set_model_id(id);
  restore.set_name("five");
  v1::RestoreCheckpointResponse restored;
  ASSERT_TRUE(IsOk(stub_->RestoreCheckpoint(Context().get(), restore, &restored)));
  ExpectCurveIsTheAnswers(Get(id), 5);
  // Training on from step 5 draws on from there; the curve after a restart is the same.
  answers_.resize(5);
  Train(id, 3);
  ExpectCurveIsTheAnswers(Get(id), 8);
  Restart();
  ExpectCurveIsTheAnswers(Get(id), 8);
}

TEST_F(TrainingHistoryTest, ADownloadedCheckpointCarriesTheCurveToTheNewModel) {
  const std::string id = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.1), 1)).id();
  Train(id, 7);
  v1::SaveCheckpointRequest save;
  save.set_model_id(id);
  v1::SaveCheckpointResponse saved;
  ASSERT_TRUE(IsOk(stub_->SaveCheckpoint(Context().get(), save, &saved)));
  DownloadedCheckpoint downloaded;
  ASSERT_TRUE(IsOk(DownloadCheckpoint(*stub_, id, &downloaded)));
  ASSERT_EQ(downloaded.header.history().points_size(), 7);
  v1::ModelInfo uploaded;
  ASSERT_TRUE(IsOk(UploadCheckpoint(*stub_, downloaded.header, downloaded.data, &uploaded)));
  EXPECT_NE(uploaded.id(), id);
  ExpectCurveIsTheAnswers(Get(uploaded.id()), 7);

  // A curve that cannot be the model's (a step past the checkpoint's) creates nothing.
  v1::CheckpointHeader bad = downloaded.header;
  bad.mutable_history()->mutable_points(6)->set_step(8);
  v1::ModelInfo refused;
  const grpc::Status status = UploadCheckpoint(*stub_, bad, downloaded.data, &refused);
  EXPECT_TRUE(
      HasStatus(status, grpc::INVALID_ARGUMENT, "header: training history: step 8 after step 6"));
  v1::ListModelsResponse listed;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &listed)));
  EXPECT_EQ(listed.models_size(), 2);
}

}  // namespace
}  // namespace backflow::testing
