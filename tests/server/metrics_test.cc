// /metrics of an in-process server (Note [Metrics] in server/metrics_text.h): every series a
// request feeds equals what the test sent, the per-model series equal what the answers said,
// refusals are counted by reason, and nothing is served or counted with --metrics-listen empty.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>

#include <cmath>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <string>

#include "server/auth/tokens.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

class MetricsTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.metrics_listen = "127.0.0.1:0";
    const std::string path = token_dir_.path() + "/tokens";
    std::ofstream(path) << "sha256:" << server::auth::ToHex(server::auth::Sha256("admin-token"))
                        << " admin\n";
    config.auth_tokens = path;
  }

  std::unique_ptr<grpc::ClientContext> Admin() {
    auto context = Context();
    context->AddMetadata("authorization", "Bearer admin-token");
    return context;
  }

  std::string Scrape() {
    httplib::Client client("127.0.0.1", server_->metrics_port());
    client.set_read_timeout(10, 0);
    httplib::Result result = client.Get("/metrics");
    EXPECT_TRUE(result) << "no answer from /metrics";
    if (!result) return "";
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return result->body;
  }

  // The value of the sample `series` (name and labels exactly as exposed); NaN when absent.
  static double Sample(const std::string& text, const std::string& series) {
    const std::string prefix = series + " ";
    for (size_t at = 0; at < text.size();) {
      const size_t end = text.find('\n', at);
      const std::string line = text.substr(at, end == std::string::npos ? end : end - at);
      if (line.starts_with(prefix)) return std::stod(line.substr(prefix.size()));
      if (end == std::string::npos) break;
      at = end + 1;
    }
    return std::nan("");
  }

  std::string CreateTinyModel() {
    v1::CreateModelRequest request;
    *request.mutable_graph() = TinyMlpGraph();
    request.set_name("tiny");
    request.mutable_optimizer()->set_learning_rate(0.1);
    v1::ModelInfo info;
    grpc::Status status = stub_->CreateModel(Admin().get(), request, &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return info.id();
  }

  TempDir token_dir_;
};

TEST_F(MetricsTest, RequestAndModelSeriesEqualWhatTheClientSaw) {
  const std::string id = CreateTinyModel();
  ASSERT_FALSE(id.empty());
  constexpr int kSteps = 7;
  constexpr int64_t kRows = 5;
  double received = 0, sent = 0, last_loss = 0;
  int64_t last_step = 0;
  for (int i = 0; i < kSteps; ++i) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(i, kRows).ToWire(request.mutable_batch());
    v1::TrainStepResponse response;
    ASSERT_TRUE(stub_->TrainStep(Admin().get(), request, &response).ok());
    received += static_cast<double>(request.ByteSizeLong());
    sent += static_cast<double>(response.ByteSizeLong());
    last_loss = response.loss();
    last_step = response.step();
  }
  v1::InferRequest infer;
  infer.set_model_id(id);
  (*infer.mutable_inputs())["x"] = WireTensor({3, 8}, std::vector<float>(24, 0.5f));
  infer.add_outputs("logits");
  v1::InferResponse inferred;
  ASSERT_TRUE(stub_->Infer(Admin().get(), infer, &inferred).ok());
  v1::GetModelRequest missing;
  missing.set_model_id("m-000000000000");
  v1::ModelInfo none;
  EXPECT_EQ(stub_->GetModel(Admin().get(), missing, &none).error_code(), grpc::NOT_FOUND);
  // No token: refused before any work, counted by reason and by code.
  v1::ListModelsResponse listed;
  EXPECT_EQ(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &listed).error_code(),
            grpc::UNAUTHENTICATED);

  const std::string text = Scrape();
  const std::string step = "{code=\"OK\",method=\"TrainStep\"}";
  EXPECT_EQ(Sample(text, "backflow_requests_total" + step), kSteps);
  EXPECT_EQ(Sample(text, "backflow_request_duration_seconds_count" + step), kSteps);
  EXPECT_GT(Sample(text, "backflow_request_duration_seconds_sum" + step), 0);
  EXPECT_EQ(Sample(text,
                   "backflow_request_duration_seconds_bucket{code=\"OK\",method=\"TrainStep\","
                   "le=\"+Inf\"}"),
            kSteps);
  EXPECT_EQ(Sample(text, "backflow_request_queue_seconds_count{method=\"TrainStep\"}"), kSteps);
  EXPECT_EQ(Sample(text, "backflow_request_compute_seconds_count{method=\"TrainStep\"}"), kSteps);
  EXPECT_EQ(Sample(text, "backflow_received_bytes_total{method=\"TrainStep\"}"), received);
  EXPECT_EQ(Sample(text, "backflow_sent_bytes_total{method=\"TrainStep\"}"), sent);
  EXPECT_EQ(Sample(text, "backflow_requests_total{code=\"OK\",method=\"Infer\"}"), 1);
  EXPECT_EQ(Sample(text, "backflow_requests_total{code=\"NOT_FOUND\",method=\"GetModel\"}"), 1);
  EXPECT_EQ(Sample(text, "backflow_requests_total{code=\"UNAUTHENTICATED\",method=\"ListModels\"}"),
            1);
  EXPECT_EQ(Sample(text, "backflow_rejected_requests_total{reason=\"auth\"}"), 1);
  EXPECT_EQ(Sample(text, "backflow_rejected_requests_total{reason=\"limit\"}"), 0);

  const std::string model = "{model=\"" + id + "\"}";
  EXPECT_EQ(Sample(text, "backflow_model_step" + model), static_cast<double>(last_step));
  EXPECT_EQ(Sample(text, "backflow_model_loss" + model), last_loss);
  EXPECT_EQ(Sample(text, "backflow_train_steps_total" + model), kSteps);
  EXPECT_EQ(Sample(text, "backflow_trained_samples_total" + model), kSteps * kRows);
  EXPECT_EQ(Sample(text, "backflow_inferred_samples_total" + model), 3);
  EXPECT_EQ(Sample(text, "backflow_train_step_seconds_count" + model), kSteps);
  EXPECT_EQ(Sample(text, "backflow_models{state=\"ready\"}"), 1);
  EXPECT_EQ(
      Sample(text, "backflow_model_info{dtype=\"float32\",model=\"" + id + "\",name=\"tiny\"}"), 1);
  EXPECT_GT(Sample(text, "backflow_plan_cache_entries" + model), 0);
  EXPECT_EQ(Sample(text, "backflow_requests_in_flight"), 0);
  EXPECT_EQ(Sample(text, "backflow_requests_queued"), 0);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);
}

TEST_F(MetricsTest, ADeletedModelsSeriesEndWithIt) {
  const std::string id = CreateTinyModel();
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Sample(Scrape(), "backflow_model_step{model=\"" + id + "\"}"), 0);
  v1::DeleteModelRequest request;
  request.set_model_id(id);
  v1::DeleteModelResponse response;
  ASSERT_TRUE(stub_->DeleteModel(Admin().get(), request, &response).ok());
  const std::string text = Scrape();
  EXPECT_EQ(text.find(id), std::string::npos) << text;
  EXPECT_EQ(Sample(text, "backflow_models{state=\"ready\"}"), 0);
}

TEST_F(MetricsTest, AnUndecodableRequestIsCountedAsInvalidArgument) {
  grpc::GenericStub generic(channel_);
  grpc::ByteBuffer junk, answer;
  const grpc::Slice bytes(std::string("\xff\xff\xff", 3));
  junk = grpc::ByteBuffer(&bytes, 1);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer admin-token");
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/backflow.v1.Backflow/TrainStep", grpc::StubOptions(), &junk,
                    &answer, [&done](grpc::Status s) { done.set_value(s); });
  std::future<grpc::Status> status = done.get_future();
  ASSERT_EQ(status.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(status.get().error_code(), grpc::INVALID_ARGUMENT);
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "backflow_requests_total{code=\"INVALID_ARGUMENT\",method=\"TrainStep\"}"),
            1);
  EXPECT_EQ(Sample(text, "backflow_received_bytes_total{method=\"TrainStep\"}"), 3);
}

TEST_F(MetricsTest, TheStatusPageAndItsJsonShowTheModels) {
  v1::CreateModelRequest create;
  *create.mutable_graph() = TinyMlpGraph();
  create.set_name("</script><b>bold</b>");  // a client's bytes, never markup
  v1::ModelInfo created;
  ASSERT_TRUE(stub_->CreateModel(Admin().get(), create, &created).ok());
  std::vector<v1::TrainStepResponse> answers;
  for (int i = 0; i < 4; ++i) {
    v1::TrainStepRequest request;
    request.set_model_id(created.id());
    TinyBatch(i, 5).ToWire(request.mutable_batch());
    ASSERT_TRUE(stub_->TrainStep(Admin().get(), request, &answers.emplace_back()).ok());
  }
  httplib::Client client("127.0.0.1", server_->metrics_port());
  client.set_read_timeout(10, 0);
  httplib::Result json = client.Get("/api/status");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 200);
  EXPECT_EQ(json->get_header_value("Content-Type"), "application/json");
  const nlohmann::json status = nlohmann::json::parse(json->body);
  ASSERT_EQ(status["models"].size(), 1u);
  const nlohmann::json& model = status["models"][0];
  EXPECT_EQ(model["id"], created.id());
  EXPECT_EQ(model["name"], "</script><b>bold</b>");
  EXPECT_EQ(model["step"], 4);
  EXPECT_EQ(model["samples"], 20);
  EXPECT_EQ(model["state"], "training");
  EXPECT_EQ(model["last_loss"].get<double>(), answers.back().loss());
  ASSERT_EQ(model["curve"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(model["curve"][i][0], answers[i].step());
    EXPECT_EQ(model["curve"][i][1].get<double>(), answers[i].loss());
  }
  bool counted = false;
  for (const nlohmann::json& method : status["methods"]) {
    if (method["method"] != "TrainStep") continue;
    counted = true;
    EXPECT_EQ(method["requests"], 4);
    EXPECT_EQ(method["errors"], 0);
    EXPECT_GT(method["p50_seconds"].get<double>(), 0);
    EXPECT_GE(method["p99_seconds"].get<double>(), method["p50_seconds"].get<double>());
  }
  EXPECT_TRUE(counted) << json->body;

  httplib::Result page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("\\u003c/script>\\u003cb>bold\\u003c/b>"), std::string::npos);
  EXPECT_EQ(page->body.find("<b>bold"), std::string::npos) << "the name reached the markup";
  EXPECT_NE(page->body.find(created.id()), std::string::npos) << "the first answer is inline";
  // Self-contained: nothing loaded from elsewhere.
  for (const char* outside : {"src=", "<link", "https://", "@import", "url("}) {
    EXPECT_EQ(page->body.find(outside), std::string::npos) << outside;
  }
  EXPECT_EQ(client.Get("/nothing-here")->status, 404);
}

// The Evaluate cache (Note [Evaluate cache] in server/evaluate_cache.h), two entries here: a graph
// sent again is a hit and answers bitwise what it answered as a miss; other wrt is another entry;
// the least recently used entry goes first; a hit's errors are a miss's.
class EvaluateCacheTest : public MetricsTest {
 protected:
  using MessageDifferencer = google::protobuf::util::MessageDifferencer;
  void Configure(server::ServerConfig& config) override {
    MetricsTest::Configure(config);
    config.evaluate_cache_entries = 2;
  }
  // Evaluate of seeds/`file` with its inputs x and y and the gradients of `wrt`.
  grpc::Status Evaluate(const std::string& file, double x, double y,
                        const std::vector<std::string>& wrt, v1::EvaluateResponse* response) {
    v1::EvaluateRequest request;
    *request.mutable_graph() = ModelGraph("seeds/" + file + ".pbtxt");
    (*request.mutable_values())["x"] = WireTensor64({}, {x});
    if (!std::isnan(y)) (*request.mutable_values())["y"] = WireTensor64({}, {y});
    for (const std::string& name : wrt) request.add_wrt(name);
    return stub_->Evaluate(Admin().get(), request, response);
  }
  void ExpectCounts(double hits, double misses, double entries) {
    const std::string text = Scrape();
    EXPECT_EQ(Sample(text, "backflow_evaluate_cache_hits_total"), hits);
    EXPECT_EQ(Sample(text, "backflow_evaluate_cache_misses_total"), misses);
    EXPECT_EQ(Sample(text, "backflow_evaluate_cache_entries"), entries);
  }
};

TEST_F(EvaluateCacheTest, HitsAnswerAsMissesAndTheLeastRecentlyUsedGoesFirst) {
  v1::EvaluateResponse first, again;
  ASSERT_TRUE(Evaluate("staged", 3, -4, {"x", "y"}, &first).ok());
  ExpectCounts(0, 1, 1);
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(Evaluate("staged", 3, -4, {"x", "y"}, &again).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(again, first));  // tensors bitwise
  }
  // Other values on the same entry: the staged circuit's golden case at (3, -4) is above; at
  // (1, 2) the answer is a fresh server's (an uncached one), bitwise.
  ASSERT_TRUE(Evaluate("staged", 1, 2, {"x", "y"}, &again).ok());
  ExpectCounts(4, 1, 1);
  {
    TempDir other_dir;
    server::ServerConfig config = TestConfig(other_dir.path());
    config.evaluate_cache_entries = 0;
    std::unique_ptr<server::Server> uncached = StartServer(config);
    ASSERT_NE(uncached, nullptr);
    v1::EvaluateRequest request;
    *request.mutable_graph() = ModelGraph("seeds/staged.pbtxt");
    (*request.mutable_values())["x"] = WireTensor64({}, {1});
    (*request.mutable_values())["y"] = WireTensor64({}, {2});
    request.add_wrt("x");
    request.add_wrt("y");
    v1::EvaluateResponse fresh;
    ASSERT_TRUE(v1::Backflow::NewStub(Connect(uncached->address()))
                    ->Evaluate(Context().get(), request, &fresh)
                    .ok());
    EXPECT_TRUE(MessageDifferencer::Equals(again, fresh));
    EXPECT_TRUE(uncached->Shutdown().ok());
  }

  // A hit fails as a miss does, with the same message.
  v1::EvaluateResponse failed;
  const grpc::Status hit = Evaluate("staged", 3, std::nan(""), {"x", "y"}, &failed);
  const grpc::Status miss = Evaluate("staged", 3, std::nan(""), {"y", "x"}, &failed);
  EXPECT_EQ(hit.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(hit.error_message(), "placeholder 'y' has no value");
  EXPECT_EQ(miss.error_code(), hit.error_code());
  EXPECT_EQ(miss.error_message(), hit.error_message());
  ExpectCounts(5, 2, 2);  // the miss kept its entry: wrt (y, x) is another key than (x, y)

  // Two entries: a third graph drops the least recently used, (y, x).
  ASSERT_TRUE(Evaluate("staged", 3, -4, {"x", "y"}, &again).ok());  // (x, y) most recent
  ASSERT_TRUE(Evaluate("two_paths", 3, std::nan(""), {"x"}, &again).ok());
  ExpectCounts(6, 3, 2);
  ASSERT_TRUE(Evaluate("staged", 3, -4, {"x", "y"}, &again).ok());
  ExpectCounts(7, 3, 2);
  ASSERT_TRUE(Evaluate("staged", 3, -4, {"y", "x"}, &again).ok());  // dropped: a miss
  ExpectCounts(7, 4, 2);
}

class MetricsOffTest : public ServerTest {};

TEST_F(MetricsOffTest, NoEndpointWithoutAnAddress) { EXPECT_EQ(server_->metrics_port(), 0); }

TEST(MetricsListenTest, AnAddressInUseFailsTheStartUnlessItIsTheDefault) {
  TempDir first_dir, second_dir;
  server::ServerConfig config = TestConfig(first_dir.path());
  config.metrics_listen = "127.0.0.1:0";
  std::unique_ptr<server::Server> first = StartServer(config);
  ASSERT_NE(first, nullptr);
  ASSERT_GT(first->metrics_port(), 0);
  server::ServerConfig second = TestConfig(second_dir.path());
  second.metrics_listen = "127.0.0.1:" + std::to_string(first->metrics_port());
  StatusOr<std::unique_ptr<server::Server>> refused = server::Server::Start(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find(second.metrics_listen), std::string::npos)
      << refused.status().message();
  second.metrics_listen_defaulted = true;  // as if the flag's default: a warning, no metrics
  std::unique_ptr<server::Server> started = StartServer(second);
  ASSERT_NE(started, nullptr);
  EXPECT_EQ(started->metrics_port(), 0);
  EXPECT_TRUE(started->Shutdown().ok());
  EXPECT_TRUE(first->Shutdown().ok());
}

}  // namespace
}  // namespace backflow::testing
