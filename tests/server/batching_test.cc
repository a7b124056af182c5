// Dynamic batching of Infer and ModelInfer (server/batcher.h) against an in-process server with a
// long batch delay, so that concurrent requests surely meet: each answer equals the engine's for
// the request alone, runs are shared (ModelStatistics counts them), max rows hold, requests of
// other outputs or shapes do not mix, deadlines and cancellation hold per request, and a model
// can turn batching off.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/inference_fixture.h"

namespace backflow::testing {
namespace {

// Under TSan a request takes several times longer to reach the batcher, and two sent at once
// arrived more than 300 ms apart (2 of 6 runs of ModelInferBatchesWithInferAndConfigSaysSo).
// BACKFLOW_TSAN: the TSan build hides __SANITIZE_THREAD__.
#ifdef BACKFLOW_TSAN
constexpr auto kDelay = std::chrono::milliseconds(1500);
#else
constexpr auto kDelay = std::chrono::milliseconds(300);
#endif
constexpr int64_t kWidth = 64;

// x [-1, 64] -> 64 tanh -> 4 logits: past the inline threshold (Note [Tiny requests run where
// they arrive]), so its requests reach the batcher.
v1::Graph WideMlp() {
  StatusOr<v1::Graph> g = ParseGraphText(R"graph(
    name: "wide_mlp"
    placeholders { name: "x" shape: [ -1, 64 ] }
    parameters { name: "w1" shape: [ 64, 64 ] init { glorot {} } }
    parameters { name: "b1" shape: [ 64 ] init { uniform { low: -0.1 high: 0.1 } } }
    parameters { name: "w2" shape: [ 64, 4 ] init { glorot {} } }
    nodes { name: "h" op: "tanh" inputs: "h_pre" }
    nodes { name: "h_pre" op: "linear" inputs: [ "x", "w1", "b1" ] }
    nodes { name: "logits" op: "matmul" inputs: [ "h", "w2" ] }
    outputs: "logits"
  )graph");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : v1::Graph();
}

// `rows` rows of x in [-1, 1], a function of `seed`.
Tensor Rows(uint64_t seed, int64_t rows) {
  Tensor x(DType::kFloat32, Shape{rows, kWidth});
  std::mt19937_64 bits(seed);
  for (int64_t i = 0; i < rows * kWidth; ++i) {
    x.data<float>()[i] = static_cast<float>(static_cast<int>(bits() % 2001) - 1000) / 1000.0f;
  }
  return x;
}

class BatchingTest : public InferenceTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.batch_delay = kDelay;
    config.max_batch_rows = 16;
  }

  v1::CreateModelRequest Mlp(int64_t max_rows = 0) {
    v1::CreateModelRequest request = ModelRequest(WideMlp(), SgdSpec(0.1), 5);
    if (max_rows > 0) request.mutable_batching()->set_max_rows(max_rows);
    return request;
  }

  // Infer of Rows(seed, rows) for `outputs`, the call's status in *status.
  v1::InferResponse InferRows(const std::string& id, int64_t rows, uint64_t seed,
                              const std::vector<std::string>& outputs, grpc::Status* status,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    v1::InferRequest request;
    request.set_model_id(id);
    TensorToProto(Rows(seed, rows), &(*request.mutable_inputs())["x"]);
    for (const std::string& name : outputs) request.add_outputs(name);
    v1::InferResponse response;
    *status = stub_->Infer(Context(timeout).get(), request, &response);
    return response;
  }

  uint64_t Executions(const std::string& id) {
    inference::ModelStatisticsRequest request;
    request.set_name(id);
    inference::ModelStatisticsResponse stats;
    EXPECT_TRUE(IsOk(oip_->ModelStatistics(Context().get(), request, &stats)));
    return stats.model_stats_size() == 1 ? stats.model_stats(0).execution_count() : 0;
  }
};

// Within 1e-6 relative (float32): stacking changes the matrix products' blocking, not the math.
void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_LE(std::abs(actual[i] - expected[i]), 1e-6 * std::max(1.0f, std::abs(expected[i])))
        << "element " << i;
  }
}

TEST_F(BatchingTest, ConcurrentRequestsShareRunsAndGetTheirOwnAnswers) {
  const v1::CreateModelRequest create = Mlp();
  const v1::ModelInfo info = CreateModel(*stub_, create);
  std::unique_ptr<Trainer> engine = DirectTrainer(create);
  constexpr int kRequests = 6;
  std::vector<v1::InferResponse> answers(kRequests);
  std::vector<grpc::Status> statuses(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back(
        [&, i] { answers[i] = InferRows(info.id(), i + 1, 100 + i, {"logits"}, &statuses[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(IsOk(statuses[i])) << i;
    const Tensor x = Rows(100 + i, i + 1);
    StatusOr<std::vector<Tensor>> alone = engine->Infer({{"x", &x}}, {"logits"});
    ASSERT_TRUE(alone.ok()) << alone.status().ToString();
    const v1::Tensor& logits = answers[i].outputs().at("logits");
    EXPECT_EQ(logits.shape(0), i + 1);
    ExpectClose(Floats(logits), std::vector<float>((*alone)[0].data<float>(),
                                                   (*alone)[0].data<float>() + 4 * (i + 1)));
  }
  // 21 rows in all, at most 16 a run: at least 2 runs, and fewer than one per request.
  const uint64_t runs = Executions(info.id());
  EXPECT_GE(runs, 2u);
  EXPECT_LT(runs, static_cast<uint64_t>(kRequests));
}

TEST_F(BatchingTest, OtherOutputsDoNotMixAndAModelCanTurnBatchingOff) {
  const v1::ModelInfo info = CreateModel(*stub_, Mlp());
  grpc::Status a_status, b_status;
  v1::InferResponse a, b;
  std::thread first([&] { a = InferRows(info.id(), 2, 1, {"logits"}, &a_status); });
  std::thread second([&] { b = InferRows(info.id(), 2, 1, {"h"}, &b_status); });
  first.join();
  second.join();
  ASSERT_TRUE(IsOk(a_status));
  ASSERT_TRUE(IsOk(b_status));
  EXPECT_EQ(a.outputs().at("logits").shape(1), 4);
  EXPECT_EQ(b.outputs().at("h").shape(1), kWidth);
  EXPECT_EQ(Executions(info.id()), 2u);

  const v1::ModelInfo off = CreateModel(*stub_, Mlp(/*max_rows=*/1));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(3);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { InferRows(off.id(), 1, i, {"logits"}, &statuses[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (const grpc::Status& s : statuses) EXPECT_TRUE(IsOk(s));
  EXPECT_EQ(Executions(off.id()), 3u);
  // Without batching nothing waits for the delay.
  EXPECT_LT(std::chrono::steady_clock::now() - start, kDelay);
}

TEST_F(BatchingTest, OutputsThatMixRowsAreNeverStacked) {
  // col: a softmax over the batch axis, so each request's column sums are over its own rows.
  v1::Graph graph = WideMlp();
  StatusOr<v1::Graph> extra = ParseGraphText(R"graph(
    nodes { name: "col" op: "softmax" inputs: "logits"
            attrs { key: "axis" value { i: 0 } } }
  )graph");
  ASSERT_TRUE(extra.ok()) << extra.status().ToString();
  graph.MergeFrom(*extra);
  const v1::CreateModelRequest create = ModelRequest(graph, SgdSpec(0.1), 5);
  const v1::ModelInfo info = CreateModel(*stub_, create);
  std::unique_ptr<Trainer> engine = DirectTrainer(create);
  constexpr int kRequests = 3;
  std::vector<v1::InferResponse> answers(kRequests);
  std::vector<grpc::Status> statuses(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back(
        [&, i] { answers[i] = InferRows(info.id(), 2, 200 + i, {"col"}, &statuses[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(IsOk(statuses[i])) << i;
    const Tensor x = Rows(200 + i, 2);
    StatusOr<std::vector<Tensor>> alone = engine->Infer({{"x", &x}}, {"col"});
    ASSERT_TRUE(alone.ok()) << alone.status().ToString();
    ExpectClose(Floats(answers[i].outputs().at("col")),
                std::vector<float>((*alone)[0].data<float>(), (*alone)[0].data<float>() + 8));
  }
  EXPECT_EQ(Executions(info.id()), static_cast<uint64_t>(kRequests));
}

TEST_F(BatchingTest, DeadlinesAndCancellationHoldPerRequest) {
  const v1::ModelInfo info = CreateModel(*stub_, Mlp());
  grpc::Status patient, hurried;
  std::thread first([&] { InferRows(info.id(), 2, 1, {"logits"}, &patient); });
  std::thread second(
      [&] { InferRows(info.id(), 2, 2, {"logits"}, &hurried, std::chrono::milliseconds(50)); });
  first.join();
  second.join();
  EXPECT_TRUE(IsOk(patient));
  EXPECT_EQ(hurried.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // A cancelled request is answered CANCELLED; the server goes on serving.
  v1::InferRequest request;
  request.set_model_id(info.id());
  TensorToProto(Rows(3, 2), &(*request.mutable_inputs())["x"]);
  auto context = Context();
  v1::InferResponse response;
  std::thread cancel([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    context->TryCancel();
  });
  const grpc::Status cancelled = stub_->Infer(context.get(), request, &response);
  cancel.join();
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::CANCELLED);
  grpc::Status after;
  InferRows(info.id(), 1, 4, {"logits"}, &after);
  EXPECT_TRUE(IsOk(after));
}

TEST_F(BatchingTest, ModelInferBatchesWithInferAndConfigSaysSo) {
  const v1::ModelInfo info = CreateModel(*stub_, Mlp());
  v1::Tensor x;
  TensorToProto(Rows(8, 3), &x);
  inference::ModelInferRequest oip_request;
  oip_request.set_model_name(info.id());
  AddRawInput(oip_request, "x", x);
  oip_request.add_outputs()->set_name("logits");
  inference::ModelInferResponse oip_response;
  grpc::Status oip_status, v1_status;
  v1::InferResponse v1_response;
  std::thread first([&] { oip_status = Infer(oip_request, &oip_response); });
  std::thread second([&] { v1_response = InferRows(info.id(), 3, 8, {"logits"}, &v1_status); });
  first.join();
  second.join();
  ASSERT_TRUE(IsOk(oip_status));
  ASSERT_TRUE(IsOk(v1_status));
  ExpectClose(RawFloats(oip_response.raw_output_contents(0)),
              Floats(v1_response.outputs().at("logits")));
  EXPECT_EQ(Executions(info.id()), 1u);

  inference::ModelConfigRequest config_request;
  config_request.set_name(info.id());
  inference::ModelConfigResponse config;
  ASSERT_TRUE(IsOk(oip_->ModelConfig(Context().get(), config_request, &config)));
  EXPECT_EQ(config.config().dynamic_batching().max_queue_delay_microseconds(),
            static_cast<uint64_t>(std::chrono::microseconds(kDelay).count()));
}

TEST_F(BatchingTest, BatchingSettingsAreChecked) {
  v1::CreateModelRequest request = Mlp();
  request.mutable_batching()->set_max_rows(0);
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::INVALID_ARGUMENT, "batching.max_rows is 0"));
  request = Mlp();
  request.mutable_batching()->set_delay_us(-1);
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::INVALID_ARGUMENT, "batching.delay_us is -1"));
}

}  // namespace
}  // namespace backflow::testing
