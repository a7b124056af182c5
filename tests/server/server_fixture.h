// Test support for in-process servers: a backflow::server::Server on 127.0.0.1 with a free
// port and a fresh data directory, a stub connected to it, and tensor helpers.
#ifndef BACKFLOW_TESTS_SERVER_SERVER_FIXTURE_H_
#define BACKFLOW_TESTS_SERVER_SERVER_FIXTURE_H_

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace backflow::testing {

// Config for a test server: loopback, free port, small limits that tests can reach.
inline server::ServerConfig TestConfig(const std::string& data_dir) {
  server::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.data_dir = data_dir;
  config.log_level = "warn";
  config.shutdown_grace = std::chrono::milliseconds(5000);
  return config;
}

inline std::unique_ptr<server::Server> StartServer(const server::ServerConfig& config) {
  StatusOr<std::unique_ptr<server::Server>> started = server::Server::Start(config);
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  return started.ok() ? std::move(*started) : nullptr;
}

inline std::shared_ptr<grpc::Channel> Connect(const std::string& address,
                                              int max_message_bytes = 512 << 20) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// A context with a deadline, so no test call can hang.
inline std::unique_ptr<grpc::ClientContext> Context(
    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// Server + stub + data directory, for TEST_F.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(); }
  void TearDown() override { Stop(); }

  // Override to change limits; called by SetUp and Restart.
  virtual void Configure(server::ServerConfig& config) {}

  void Restart() {
    Stop();
    server::ServerConfig config = TestConfig(data_dir_.path());
    Configure(config);
    server_ = StartServer(config);
    ASSERT_NE(server_, nullptr);
    channel_ = Connect(server_->address());
    stub_ = v1::Backflow::NewStub(channel_);
  }
  void Stop() {
    stub_.reset();
    channel_.reset();
    if (server_) {
      Status s = server_->Shutdown();
      EXPECT_TRUE(s.ok()) << s.ToString();
      server_.reset();
    }
  }

  TempDir data_dir_;
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

// Wire tensors.
inline v1::Tensor WireTensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.set_dtype(v1::FLOAT32);
  t.set_data(std::string(reinterpret_cast<const char*>(values.data()),
                         values.size() * sizeof(float)));
  return t;
}
inline v1::Tensor WireTensor64(std::vector<int64_t> shape, const std::vector<double>& values) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.set_dtype(v1::FLOAT64);
  t.set_data(std::string(reinterpret_cast<const char*>(values.data()),
                         values.size() * sizeof(double)));
  return t;
}
inline std::vector<float> Floats(const v1::Tensor& t) {
  std::vector<float> out(t.data().size() / sizeof(float));
  std::memcpy(out.data(), t.data().data(), out.size() * sizeof(float));
  return out;
}
inline std::vector<double> Doubles(const v1::Tensor& t) {
  std::vector<double> out(t.data().size() / sizeof(double));
  std::memcpy(out.data(), t.data().data(), out.size() * sizeof(double));
  return out;
}

// A graph file from models/ ("lenet5.pbtxt", "seeds/staged.pbtxt").
inline v1::Graph ModelGraph(const std::string& relative) {
  StatusOr<v1::Graph> g = LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + relative);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : v1::Graph();
}

// A small classifier, 8 inputs -> 16 tanh -> 4 classes (212 parameters): cheap enough for
// thousands of steps under ThreadSanitizer.
inline v1::Graph TinyMlpGraph() {
  StatusOr<v1::Graph> g = ParseGraphText(R"graph(
    name: "tiny_mlp"
    placeholders { name: "x" shape: [ -1, 8 ] }
    placeholders { name: "labels" shape: [ -1 ] }
    parameters { name: "w1" shape: [ 8, 16 ] init { glorot {} } }
    parameters { name: "b1" shape: [ 16 ] init { uniform { low: -0.1 high: 0.1 } } }
    parameters { name: "w2" shape: [ 16, 4 ] init { glorot {} } }
    parameters { name: "b2" shape: [ 4 ] }
    nodes { name: "h_pre" op: "linear" inputs: [ "x", "w1", "b1" ] }
    nodes { name: "h" op: "tanh" inputs: "h_pre" }
    nodes { name: "logits" op: "linear" inputs: [ "h", "w2", "b2" ] }
    nodes { name: "loss" op: "softmax_cross_entropy" inputs: [ "logits", "labels" ] }
    nodes { name: "accuracy" op: "accuracy" inputs: [ "logits", "labels" ] }
    outputs: [ "logits", "accuracy" ]
    loss: "loss"
  )graph");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : v1::Graph();
}
inline constexpr int64_t kTinyMlpParameterCount = 8 * 16 + 16 + 16 * 4 + 4;

// A batch for TinyMlpGraph that is a pure function of `seed` (float32): x in [-1, 1], labels
// in {0, 1, 2, 3}. Clients and an engine replay rebuild the same batch from the seed alone.
struct TinyBatch {
  explicit TinyBatch(uint64_t seed, int64_t rows = 4)
      : x(DType::kFloat32, Shape{rows, 8}), labels(DType::kFloat32, Shape{rows}) {
    std::mt19937_64 bits(seed);
    for (int64_t i = 0; i < rows * 8; ++i) {
      x.data<float>()[i] = static_cast<float>(static_cast<int>(bits() % 2001) - 1000) / 1000.0f;
    }
    for (int64_t i = 0; i < rows; ++i) labels.data<float>()[i] = static_cast<float>(bits() % 4);
  }
  FeedMap feeds() const { return {{"x", &x}, {"labels", &labels}}; }
  void ToWire(google::protobuf::Map<std::string, v1::Tensor>* wire) const {
    TensorToProto(x, &(*wire)["x"]);
    TensorToProto(labels, &(*wire)["labels"]);
  }
  Tensor x, labels;
};

// The engine's optimizer settings for `spec`, unset optionals at the documented defaults.
inline OptimizerConfig OptimizerConfigFromSpec(const v1::OptimizerSpec& spec) {
  OptimizerConfig config;
  config.kind = spec.kind() == v1::OptimizerSpec::ADAM    ? OptimizerConfig::Kind::kAdam
                : spec.kind() == v1::OptimizerSpec::ADAMW ? OptimizerConfig::Kind::kAdamW
                                                          : OptimizerConfig::Kind::kSgd;
  if (spec.has_learning_rate()) config.learning_rate = spec.learning_rate();
  config.momentum = spec.momentum();
  config.nesterov = spec.nesterov();
  config.weight_decay = spec.weight_decay();
  if (spec.has_beta1()) config.beta1 = spec.beta1();
  if (spec.has_beta2()) config.beta2 = spec.beta2();
  if (spec.has_epsilon()) config.epsilon = spec.epsilon();
  config.clip_norm = spec.clip_norm();
  if (spec.has_clip_epsilon()) config.clip_epsilon = spec.clip_epsilon();
  return config;
}

// The engine Trainer that CreateModel builds for `request`, the way the server contract says
// (ImportGraph, Trainer::Create with the request's dtype, seed, optimizer and metrics, then
// initial_parameters): a replay on it is bitwise comparable with the server's model.
inline std::unique_ptr<Trainer> DirectTrainer(const v1::CreateModelRequest& request) {
  StatusOr<Graph> graph = ImportGraph(request.graph());
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return nullptr;
  TrainerOptions options;
  options.dtype = request.dtype() == v1::FLOAT64 ? DType::kFloat64 : DType::kFloat32;
  options.seed = request.seed();
  options.optimizer = OptimizerConfigFromSpec(request.optimizer());
  options.metrics.assign(request.metrics().begin(), request.metrics().end());
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(*graph), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  if (!trainer.ok()) return nullptr;
  ParameterMap initial;
  for (const auto& [name, wire] : request.initial_parameters()) {
    StatusOr<Tensor> t = TensorFromProto(wire, name, int64_t{1} << 40);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) initial.emplace(name, std::move(*t));
  }
  if (!initial.empty()) {
    Status s = (*trainer)->SetParameters(initial);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return std::move(*trainer);
}

// Raw bytes of every tensor, by name: what "bitwise equal" compares.
inline std::map<std::string, std::string> TensorBytes(
    const google::protobuf::Map<std::string, v1::Tensor>& wire) {
  std::map<std::string, std::string> bytes;
  for (const auto& [name, t] : wire) bytes.emplace(name, t.data());
  return bytes;
}
inline std::map<std::string, std::string> TensorBytes(const ParameterMap& tensors) {
  std::map<std::string, std::string> bytes;
  for (const auto& [name, t] : tensors) {
    bytes.emplace(name, std::string(reinterpret_cast<const char*>(t.raw()), t.byte_size()));
  }
  return bytes;
}


// --- Comparing the server with the engine called directly (service, parity and stream tests).

using WireTensorMap = google::protobuf::Map<std::string, v1::Tensor>;

// Assertions on a call's status that print its code and message when they fail:
// ASSERT_TRUE(IsOk(status)), EXPECT_TRUE(HasStatus(status, code, "'images'")).
inline ::testing::AssertionResult IsOk(const grpc::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "status " << status.error_code() << ": " << status.error_message();
}
inline ::testing::AssertionResult HasStatus(const grpc::Status& status, grpc::StatusCode code,
                                            const std::string& fragment) {
  if (status.error_code() == code && status.error_message().find(fragment) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "status " << status.error_code() << ": \"" << status.error_message()
         << "\"; expected " << code << " with a message containing \"" << fragment << "\"";
}

// A deterministic batch for models/lenet5.pbtxt and mlp_tanh.pbtxt: images [n, 1, 28, 28]
// uniform in [0, 1) and labels [n] (class ids 0..9 as floats), drawn from std::mt19937(seed).
inline WireTensorMap ImageBatch(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> images(static_cast<size_t>(n) * 28 * 28);
  std::vector<float> labels(static_cast<size_t>(n));
  for (float& v : images) v = pixel(rng);
  for (float& v : labels) v = static_cast<float>(rng() % 10);
  WireTensorMap batch;
  batch["images"] = WireTensor({n, 1, 28, 28}, images);
  batch["labels"] = WireTensor({n}, labels);
  return batch;
}

// Wire tensors decoded for the engine (the test's own data, so failures are test bugs).
inline std::unordered_map<std::string, Tensor> EngineTensors(const WireTensorMap& wire) {
  std::unordered_map<std::string, Tensor> out;
  for (const auto& [name, proto] : wire) {
    StatusOr<Tensor> t = TensorFromProto(proto, name, std::numeric_limits<int64_t>::max());
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) out.emplace(name, std::move(*t));
  }
  return out;
}
// Points into `tensors`, which must outlive the FeedMap.
inline FeedMap EngineFeeds(const std::unordered_map<std::string, Tensor>& tensors) {
  FeedMap feeds;
  for (const auto& [name, tensor] : tensors) feeds[name] = &tensor;
  return feeds;
}

// Expects `wire` to hold exactly the tensors of `engine`, each with the same shape, dtype and
// bytes (bitwise: -0.0 and NaN payloads count).
inline void ExpectBitwiseEqual(const WireTensorMap& wire,
                               const std::unordered_map<std::string, Tensor>& engine) {
  EXPECT_EQ(wire.size(), engine.size());
  for (const auto& [name, tensor] : engine) {
    auto it = wire.find(name);
    if (it == wire.end()) {
      ADD_FAILURE() << "missing tensor '" << name << "'";
      continue;
    }
    EXPECT_EQ(std::vector<int64_t>(it->second.shape().begin(), it->second.shape().end()),
              tensor.shape().dims())
        << name;
    EXPECT_EQ(it->second.dtype(), tensor.dtype() == DType::kFloat64 ? v1::FLOAT64 : v1::FLOAT32)
        << name;
    EXPECT_TRUE(it->second.data() ==
                std::string(reinterpret_cast<const char*>(tensor.raw()), tensor.byte_size()))
        << "tensor '" << name << "' differs";
  }
}

// The same between two wire maps.
inline void ExpectBitwiseEqual(const WireTensorMap& actual, const WireTensorMap& expected) {
  EXPECT_EQ(actual.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << "missing tensor '" << name << "'";
      continue;
    }
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(it->second, tensor))
        << "tensor '" << name << "' differs";
  }
}

// Optimizer settings for requests.
inline v1::OptimizerSpec SgdSpec(double learning_rate, double momentum = 0.0) {
  v1::OptimizerSpec spec;
  spec.set_kind(v1::OptimizerSpec::SGD);
  spec.set_learning_rate(learning_rate);
  spec.set_momentum(momentum);
  return spec;
}
inline v1::OptimizerSpec AdamSpec(double learning_rate) {
  v1::OptimizerSpec spec;
  spec.set_kind(v1::OptimizerSpec::ADAM);
  spec.set_learning_rate(learning_rate);
  return spec;
}

// A CreateModelRequest for `graph`; DirectTrainer(request) is its engine twin.
inline v1::CreateModelRequest ModelRequest(const v1::Graph& graph,
                                           const v1::OptimizerSpec& optimizer = {},
                                           uint64_t seed = 1, v1::DataType dtype = v1::FLOAT32) {
  v1::CreateModelRequest request;
  *request.mutable_graph() = graph;
  *request.mutable_optimizer() = optimizer;
  request.set_seed(seed);
  request.set_dtype(dtype);
  return request;
}

// CreateModel; an empty ModelInfo (and a test failure) on error.
inline v1::ModelInfo CreateModel(v1::Backflow::Stub& stub, const v1::CreateModelRequest& request) {
  v1::ModelInfo info;
  grpc::Status s = stub.CreateModel(Context().get(), request, &info);
  EXPECT_TRUE(IsOk(s));
  return info;
}

// GetModel; an empty ModelInfo (and a test failure) on error.
inline v1::ModelInfo GetModelInfo(v1::Backflow::Stub& stub, const std::string& id) {
  v1::GetModelRequest request;
  request.set_model_id(id);
  v1::ModelInfo info;
  EXPECT_TRUE(IsOk(stub.GetModel(Context().get(), request, &info)));
  return info;
}

// Every parameter of a model (or the named ones) as the server holds them.
inline v1::GetParametersResponse GetParameters(v1::Backflow::Stub& stub, const std::string& id,
                                               const std::vector<std::string>& names = {}) {
  v1::GetParametersRequest request;
  request.set_model_id(id);
  for (const std::string& name : names) request.add_names(name);
  v1::GetParametersResponse response;
  grpc::Status s = stub.GetParameters(Context().get(), request, &response);
  EXPECT_TRUE(IsOk(s));
  return response;
}

// One TrainStep on `batch`; a failed call fails the test and returns an empty response.
inline v1::TrainStepResponse TrainStep(v1::Backflow::Stub& stub, const std::string& id,
                                       const WireTensorMap& batch, bool return_gradients = false,
                                       bool return_parameters = false) {
  v1::TrainStepRequest request;
  request.set_model_id(id);
  *request.mutable_batch() = batch;
  request.set_return_gradients(return_gradients);
  request.set_return_parameters(return_parameters);
  v1::TrainStepResponse response;
  grpc::Status s = stub.TrainStep(Context().get(), request, &response);
  EXPECT_TRUE(IsOk(s));
  return response;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_SERVER_SERVER_FIXTURE_H_
