// Load: 16 client threads mix every RPC on four models for a bounded time; then a serial replay
// on direct engine Trainers checks what they saw.
//
// The replay is possible because every batch is a pure function of a seed the client chose
// (TinyBatch), and every answer names the step it belongs to: a TrainStep's step orders the
// steps of a model (they apply in arrival order), and an Infer / ComputeGradients /
// GetParameters answer names the snapshot it read. Sorting the recorded steps by step number and
// replaying them must reproduce every loss, every read at its step and the final parameters,
// bitwise. A read that mixed two snapshots (a torn update) or a step applied out of its reported
// order would show up as a mismatch. SetParameters writes back the values just read with
// if_step, so when it applies it changes no value; RestoreCheckpoint rewinds steps, so it runs
// only on a fifth model that the replay leaves out.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kModels = 4;  // replayed
constexpr int kThreads = 16;
constexpr auto kRunTime = std::chrono::seconds(3);
constexpr int kMaxCallsPerThread = 400;
constexpr auto kCallTimeout = std::chrono::seconds(60);

struct StepRecord {
  int64_t step;
  uint64_t seed;
  std::optional<double> learning_rate;
  double loss;
};
// A read of the snapshot at `step`: Infer (bytes = logits), ComputeGradients (loss, bytes =
// gradients) or GetParameters (bytes = values).
struct ReadRecord {
  enum Kind { kInfer, kGradients, kParameters } kind;
  int64_t step;
  uint64_t seed;
  double loss = 0.0;
  std::map<std::string, std::string> bytes;
};
struct ModelLog {
  std::vector<StepRecord> steps;
  std::vector<ReadRecord> reads;
};

v1::CreateModelRequest ModelRequest(int m) {
  v1::CreateModelRequest request;
  *request.mutable_graph() = TinyMlpGraph();
  request.set_seed(100 + m);
  request.set_name("load-" + std::to_string(m));
  v1::OptimizerSpec* opt = request.mutable_optimizer();
  switch (m % 4) {
    case 0:
      opt->set_kind(v1::OptimizerSpec::SGD);
      break;
    case 1:
      opt->set_kind(v1::OptimizerSpec::SGD);
      opt->set_momentum(0.9);
      opt->set_nesterov(true);
      break;
    case 2:
      opt->set_kind(v1::OptimizerSpec::ADAM);
      break;
    default:
      opt->set_kind(v1::OptimizerSpec::ADAMW);
      opt->set_weight_decay(0.01);
      opt->set_clip_norm(1.0);
  }
  return request;
}

// One client thread: a deterministic mix of calls, recording what the replay needs.
class Client {
 public:
  Client(v1::Backflow::Stub* stub, std::vector<std::string> ids, std::string scratch, int index)
      : stub_(stub),
        ids_(std::move(ids)),
        scratch_(std::move(scratch)),
        index_(index),
        rng_(7919 * (index + 1)) {}

  void Run(Clock::time_point end) {
    // Steps and reads dominate, as in a training job watched by a dashboard.
    using Call = void (Client::*)(int model);
    static constexpr Call kMix[] = {
        &Client::TrainStep, &Client::TrainStep,  &Client::TrainStep,      &Client::TrainStream,
        &Client::Infer,     &Client::Infer,      &Client::Gradients,      &Client::WriteBack,
        &Client::GetModel,  &Client::ListModels, &Client::SaveCheckpoint, &Client::Evaluate,
        &Client::Rewind};
    for (int call = 0; call < kMaxCallsPerThread && Clock::now() < end; ++call) {
      const int m = static_cast<int>(rng_() % kModels);
      (this->*kMix[rng_() % std::size(kMix)])(m);
    }
  }

  ModelLog logs[kModels];
  std::vector<int64_t> scratch_saves, scratch_restores;
  int failures = 0;
  int writes_applied = 0, writes_refused = 0;

 private:
  uint64_t NextSeed() { return (uint64_t(index_ + 1) << 32) | ++counter_; }
  std::optional<double> LearningRateFor(uint64_t seed) {
    return seed % 4 == 0 ? std::optional<double>(0.05) : std::nullopt;
  }
  void Check(const grpc::Status& status, const char* what) {
    if (status.ok()) return;
    ++failures;
    ADD_FAILURE() << what << " failed: " << status.error_code() << " " << status.error_message();
  }
  v1::TrainStepRequest StepRequest(const std::string& id, uint64_t seed) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(seed).ToWire(request.mutable_batch());
    if (auto lr = LearningRateFor(seed)) request.set_learning_rate(*lr);
    return request;
  }

  void TrainStep(int m) {
    const uint64_t seed = NextSeed();
    v1::TrainStepResponse response;
    grpc::Status s =
        stub_->TrainStep(Context(kCallTimeout).get(), StepRequest(ids_[m], seed), &response);
    Check(s, "TrainStep");
    if (s.ok()) {
      logs[m].steps.push_back({response.step(), seed, LearningRateFor(seed), response.loss()});
    }
  }

  // A short stream of 1-4 steps, written ahead of reading the answers.
  void TrainStream(int m) {
    auto context = Context(kCallTimeout);
    auto stream = stub_->Train(context.get());
    std::vector<uint64_t> seeds(1 + rng_() % 4);
    for (size_t i = 0; i < seeds.size(); ++i) {
      seeds[i] = NextSeed();
      v1::TrainStepRequest request = StepRequest(i == 0 ? ids_[m] : "", seeds[i]);
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
    v1::TrainStepResponse response;
    size_t answered = 0;
    while (stream->Read(&response)) {
      if (answered < seeds.size()) {
        const uint64_t seed = seeds[answered];
        logs[m].steps.push_back({response.step(), seed, LearningRateFor(seed), response.loss()});
      }
      ++answered;
    }
    Check(stream->Finish(), "Train stream");
    EXPECT_EQ(answered, seeds.size()) << "one answer per request";
  }

  void Infer(int m) {
    const uint64_t seed = NextSeed();
    v1::InferRequest request;
    request.set_model_id(ids_[m]);
    TinyBatch(seed).ToWire(request.mutable_inputs());
    request.mutable_inputs()->erase("labels");  // logits do not need them
    request.add_outputs("logits");
    v1::InferResponse response;
    grpc::Status s = stub_->Infer(Context(kCallTimeout).get(), request, &response);
    Check(s, "Infer");
    if (s.ok()) {
      logs[m].reads.push_back(
          {ReadRecord::kInfer, response.step(), seed, 0.0, TensorBytes(response.outputs())});
    }
  }

  void Gradients(int m) {
    const uint64_t seed = NextSeed();
    v1::ComputeGradientsRequest request;
    request.set_model_id(ids_[m]);
    TinyBatch(seed).ToWire(request.mutable_batch());
    v1::ComputeGradientsResponse response;
    grpc::Status s = stub_->ComputeGradients(Context(kCallTimeout).get(), request, &response);
    Check(s, "ComputeGradients");
    if (s.ok()) {
      logs[m].reads.push_back({ReadRecord::kGradients, response.step(), seed, response.loss(),
                               TensorBytes(response.gradients())});
    }
  }

  // GetParameters, then SetParameters of the same values at the step read: no value changes.
  void WriteBack(int m) {
    v1::GetParametersRequest get;
    get.set_model_id(ids_[m]);
    v1::GetParametersResponse read;
    grpc::Status s = stub_->GetParameters(Context(kCallTimeout).get(), get, &read);
    Check(s, "GetParameters");
    if (!s.ok()) return;
    logs[m].reads.push_back(
        {ReadRecord::kParameters, read.step(), 0, 0.0, TensorBytes(read.parameters())});
    v1::SetParametersRequest set;
    set.set_model_id(ids_[m]);
    *set.mutable_parameters() = read.parameters();
    set.set_if_step(read.step());
    v1::SetParametersResponse written;
    s = stub_->SetParameters(Context(kCallTimeout).get(), set, &written);
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {  // a step came between
      ++writes_refused;
      return;
    }
    Check(s, "SetParameters");
    if (s.ok()) {
      ++writes_applied;
      EXPECT_EQ(written.step(), read.step());
    }
  }

  void GetModel(int m) {
    v1::GetModelRequest request;
    request.set_model_id(ids_[m]);
    v1::ModelInfo info;
    grpc::Status s = stub_->GetModel(Context(kCallTimeout).get(), request, &info);
    Check(s, "GetModel");
    EXPECT_EQ(info.id(), ids_[m]);
    EXPECT_EQ(info.parameter_count(), kTinyMlpParameterCount);
    EXPECT_GE(info.step(), 0);
  }

  void ListModels(int) {
    v1::ListModelsResponse response;
    grpc::Status s = stub_->ListModels(Context(kCallTimeout).get(), {}, &response);
    Check(s, "ListModels");
    EXPECT_EQ(response.models_size(), kModels + 1);
  }

  void SaveCheckpoint(int m) {
    v1::SaveCheckpointRequest request;
    request.set_model_id(ids_[m]);
    v1::SaveCheckpointResponse response;
    grpc::Status s = stub_->SaveCheckpoint(Context(kCallTimeout).get(), request, &response);
    Check(s, "SaveCheckpoint");
    if (s.ok()) {
      EXPECT_GT(response.bytes(), 0);
    }
  }

  // f = (x + y) * z on small integers: exact in float64.
  void Evaluate(int) {
    static const v1::Graph graph = ModelGraph("seeds/add_mul.pbtxt");
    const double x = double(rng_() % 21) - 10, y = double(rng_() % 21) - 10,
                 z = double(rng_() % 21) - 10;
    v1::EvaluateRequest request;
    *request.mutable_graph() = graph;
    (*request.mutable_values())["x"] = WireTensor64({}, {x});
    (*request.mutable_values())["y"] = WireTensor64({}, {y});
    (*request.mutable_values())["z"] = WireTensor64({}, {z});
    for (const char* w : {"x", "y", "z"}) request.add_wrt(w);
    v1::EvaluateResponse response;
    grpc::Status s = stub_->Evaluate(Context(kCallTimeout).get(), request, &response);
    Check(s, "Evaluate");
    if (!s.ok()) return;
    EXPECT_EQ(Doubles(response.outputs().at("f")), std::vector<double>{(x + y) * z});
    EXPECT_EQ(Doubles(response.gradients().at("x")), std::vector<double>{z});
    EXPECT_EQ(Doubles(response.gradients().at("z")), std::vector<double>{x + y});
  }

  // On the scratch model: a step, a save and a restore, racing the other threads doing the same.
  void Rewind(int) {
    v1::TrainStepResponse stepped;
    Check(
        stub_->TrainStep(Context(kCallTimeout).get(), StepRequest(scratch_, NextSeed()), &stepped),
        "TrainStep (scratch)");
    v1::SaveCheckpointRequest save;
    save.set_model_id(scratch_);
    v1::SaveCheckpointResponse saved;
    grpc::Status s = stub_->SaveCheckpoint(Context(kCallTimeout).get(), save, &saved);
    Check(s, "SaveCheckpoint (scratch)");
    if (s.ok()) scratch_saves.push_back(saved.step());
    v1::RestoreCheckpointRequest restore;
    restore.set_model_id(scratch_);
    v1::RestoreCheckpointResponse restored;
    s = stub_->RestoreCheckpoint(Context(kCallTimeout).get(), restore, &restored);
    Check(s, "RestoreCheckpoint (scratch)");
    if (s.ok()) scratch_restores.push_back(restored.step());
  }

  v1::Backflow::Stub* stub_;
  std::vector<std::string> ids_;
  std::string scratch_;
  int index_;
  uint64_t counter_ = 0;
  std::mt19937_64 rng_;
};

bool Fail(const Status& status) {
  ADD_FAILURE() << "replay: " << status.ToString();
  return false;
}

// Whether `read` saw what the replay computes on `snapshot` (the one at the read's step).
bool ReadMatches(const Trainer& trainer, const ParameterSnapshot& snapshot, const ReadRecord& read,
                 int m) {
  const TinyBatch batch(read.seed);
  std::map<std::string, std::string> expected;
  double expected_loss = 0.0;
  if (read.kind == ReadRecord::kParameters) {
    expected = TensorBytes(snapshot.values);
  } else if (read.kind == ReadRecord::kInfer) {
    StatusOr<std::vector<Tensor>> out = trainer.Infer(snapshot, batch.feeds(), {"logits"});
    if (!out.ok()) return Fail(out.status());
    expected = TensorBytes(ParameterMap{{"logits", (*out)[0]}});
  } else {
    StatusOr<StepResult> grads = trainer.ComputeGradients(batch.feeds());  // at `snapshot`
    if (!grads.ok()) return Fail(grads.status());
    expected = TensorBytes(grads->gradients);
    expected_loss = grads->loss;
  }
  if (read.bytes == expected && read.loss == expected_loss) return true;
  static const char* const kKinds[] = {"Infer", "ComputeGradients", "GetParameters"};
  ADD_FAILURE() << "model " << m << ": " << kKinds[read.kind] << " reporting step " << read.step
                << " does not match the replay at that step (loss " << read.loss << " vs "
                << expected_loss << ")";
  return false;
}

// Replays `log` serially on a direct Trainer; returns false at the first disagreement.
bool Replay(const v1::CreateModelRequest& request, ModelLog log,
            const v1::GetParametersResponse& final_params, int m) {
  std::unique_ptr<Trainer> trainer = DirectTrainer(request);
  if (trainer == nullptr) return false;
  std::sort(log.steps.begin(), log.steps.end(),
            [](const StepRecord& a, const StepRecord& b) { return a.step < b.step; });
  std::stable_sort(log.reads.begin(), log.reads.end(),
                   [](const ReadRecord& a, const ReadRecord& b) { return a.step < b.step; });
  for (size_t i = 0; i < log.steps.size(); ++i) {
    if (log.steps[i].step != int64_t(i) + 1) {
      ADD_FAILURE() << "model " << m << ": step numbers are not 1.." << log.steps.size()
                    << " without gaps or repeats: position " << i << " holds step "
                    << log.steps[i].step;
      return false;
    }
  }
  size_t next_read = 0;
  for (int64_t step = 0; step <= int64_t(log.steps.size()); ++step) {
    std::shared_ptr<const ParameterSnapshot> snapshot = trainer->parameters();
    for (; next_read < log.reads.size() && log.reads[next_read].step == step; ++next_read) {
      if (!ReadMatches(*trainer, *snapshot, log.reads[next_read], m)) return false;
    }
    if (step == int64_t(log.steps.size())) break;
    const StepRecord& record = log.steps[step];
    const TinyBatch batch(record.seed);
    StepOptions options;
    options.learning_rate = record.learning_rate;
    StatusOr<StepResult> result = trainer->Step(batch.feeds(), options);
    if (!result.ok()) return Fail(result.status());
    if (result->loss != record.loss) {
      ADD_FAILURE() << "model " << m << ": step " << record.step << " loss " << record.loss
                    << " but the replay has " << result->loss;
      return false;
    }
  }
  EXPECT_EQ(next_read, log.reads.size()) << "model " << m << ": reads past the last step";
  EXPECT_EQ(final_params.step(), int64_t(log.steps.size())) << "model " << m;
  EXPECT_TRUE(TensorBytes(final_params.parameters()) == TensorBytes(trainer->parameters()->values))
      << "model " << m << ": final parameters differ from the replay";
  return true;
}

class LoadTest : public ServerTest {};

TEST_F(LoadTest, MixedCallsReplayBitwiseOnADirectTrainer) {
  std::vector<v1::CreateModelRequest> requests;
  std::vector<std::string> ids;
  for (int m = 0; m <= kModels; ++m) {  // the last one is the scratch model
    requests.push_back(ModelRequest(m));
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Context().get(), requests.back(), &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ids.push_back(info.id());
  }
  const std::string scratch = ids.back();
  ids.pop_back();

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kThreads; ++i) {
    clients.push_back(std::make_unique<Client>(stub_.get(), ids, scratch, i));
  }
  const Clock::time_point end = Clock::now() + kRunTime;
  std::vector<std::thread> threads;
  for (auto& client : clients) threads.emplace_back([&client, end] { client->Run(end); });
  for (std::thread& t : threads) t.join();

  ModelLog merged[kModels];
  std::set<int64_t> saves;
  size_t reads = 0;
  int writes_applied = 0, writes_refused = 0;
  for (const auto& client : clients) {
    ASSERT_EQ(client->failures, 0);
    writes_applied += client->writes_applied;
    writes_refused += client->writes_refused;
    for (int m = 0; m < kModels; ++m) {
      auto& steps = client->logs[m].steps;
      merged[m].steps.insert(merged[m].steps.end(), steps.begin(), steps.end());
      auto& read_log = client->logs[m].reads;
      merged[m].reads.insert(merged[m].reads.end(), read_log.begin(), read_log.end());
      reads += read_log.size();
    }
    saves.insert(client->scratch_saves.begin(), client->scratch_saves.end());
  }
  // A restore goes back to the latest save, whose step some SaveCheckpoint reported.
  for (const auto& client : clients) {
    for (int64_t step : client->scratch_restores) EXPECT_TRUE(saves.count(step)) << step;
  }
  EXPECT_GT(reads, 0u);
  EXPECT_GT(writes_applied, 0) << "no write-back applied: SetParameters was not exercised";
  std::cout << "steps per model:";
  for (const ModelLog& log : merged) std::cout << " " << log.steps.size();
  std::cout << "; reads: " << reads << "; write-backs applied " << writes_applied
            << ", refused as stale " << writes_refused << "\n";

  for (int m = 0; m < kModels; ++m) {
    v1::GetParametersRequest get;
    get.set_model_id(ids[m]);
    v1::GetParametersResponse final_params;
    ASSERT_TRUE(stub_->GetParameters(Context().get(), get, &final_params).ok());
    EXPECT_GT(merged[m].steps.size(), 0u) << "model " << m << " was never trained";
    EXPECT_TRUE(Replay(requests[m], std::move(merged[m]), final_params, m));
  }
}

}  // namespace
}  // namespace backflow::testing
