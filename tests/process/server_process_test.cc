// backflow-server as a process: health and reflection, flag errors, and graceful shutdown on
// SIGTERM / SIGINT (exit 0, models saved, back bitwise after a restart on the same directory).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using std::chrono::milliseconds;
using std::chrono::seconds;

// y = x . w + b fitted by squared error: small, with optimizer state (momentum).
constexpr char kGraph[] = R"graph(
  name: "line"
  placeholders { name: "x" shape: [-1, 4] }
  placeholders { name: "t" shape: [-1, 2] }
  parameters { name: "w" shape: [4, 2] init { glorot {} } }
  parameters { name: "b" shape: [2] }
  nodes { name: "y" op: "linear" inputs: ["x", "w", "b"] }
  nodes {
    name: "loss" op: "squared_error" inputs: ["y", "t"]
    attrs { key: "reduction" value { s: "mean" } }
  }
  outputs: "y"
  loss: "loss"
)graph";
constexpr uint64_t kSeed = 5;

v1::CreateModelRequest ModelRequest() {
  v1::CreateModelRequest request;
  *request.mutable_graph() = *ParseGraphText(kGraph);
  request.set_seed(kSeed);
  request.mutable_optimizer()->set_kind(v1::OptimizerSpec::SGD);
  request.mutable_optimizer()->set_learning_rate(0.05);
  request.mutable_optimizer()->set_momentum(0.5);
  return request;
}

// Batch `i`: a pure function of i, so a direct Trainer can replay any prefix of the steps.
struct Batch {
  explicit Batch(uint64_t i) : x(DType::kFloat32, Shape{3, 4}), t(DType::kFloat32, Shape{3, 2}) {
    for (int k = 0; k < 12; ++k) x.data<float>()[k] = float((i * 7 + k * 3) % 11) / 5.0f - 1.0f;
    for (int k = 0; k < 6; ++k) t.data<float>()[k] = float((i * 5 + k) % 7) / 3.0f - 1.0f;
  }
  v1::TrainStepRequest Request(const std::string& id) const {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TensorToProto(x, &(*request.mutable_batch())["x"]);
    TensorToProto(t, &(*request.mutable_batch())["t"]);
    return request;
  }
  Tensor x, t;
};

// The parameters (raw bytes by name) after batches 1..steps on a Trainer built like the server's.
std::map<std::string, std::string> ReplayedParameters(int64_t steps) {
  TrainerOptions options;
  options.seed = kSeed;
  options.optimizer.learning_rate = 0.05;
  options.optimizer.momentum = 0.5;
  auto trainer = Trainer::Create(*ImportGraph(*ParseGraphText(kGraph)), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  if (!trainer.ok()) return {};
  for (int64_t i = 1; i <= steps; ++i) {
    Batch batch(i);
    EXPECT_TRUE((*trainer)->Step({{"x", &batch.x}, {"t", &batch.t}}).ok());
  }
  std::map<std::string, std::string> bytes;
  for (const auto& [name, t] : (*trainer)->parameters()->values) {
    bytes.emplace(name, std::string(reinterpret_cast<const char*>(t.raw()), t.byte_size()));
  }
  return bytes;
}

class ServerProcessTest : public ::testing::Test {
 protected:
  // (Re)starts the server on the test's data directory.
  void Launch(const std::vector<std::string>& flags = {}) {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>();
    ASSERT_GT(server_->Start(data_dir_.path(), flags), 0);
    channel_ = ConnectTo(server_->address());
    stub_ = v1::Backflow::NewStub(channel_);
  }
  std::string CreateModel() {
    v1::ModelInfo info;
    grpc::Status s = stub_->CreateModel(Deadline().get(), ModelRequest(), &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.id();
  }
  v1::GetParametersResponse Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    grpc::Status s = stub_->GetParameters(Deadline().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  std::map<std::string, std::string> Bytes(const v1::GetParametersResponse& response) {
    std::map<std::string, std::string> bytes;
    for (const auto& [name, t] : response.parameters()) bytes.emplace(name, t.data());
    return bytes;
  }
  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status s = health->Check(Deadline().get(), request, &response);
    EXPECT_TRUE(s.ok()) << service << ": " << s.error_message();
    return response.status();
  }

  ProcessTempDir data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

TEST_F(ServerProcessTest, HealthIsServing) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("backflow.v1.Backflow"), HealthCheckResponse::SERVING);
  EXPECT_TRUE(ExitedWith(server_->Stop(SIGTERM, seconds(20)), 0)) << server_->output();
}

TEST_F(ServerProcessTest, ReflectionListsTheServices) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  auto context = Deadline();
  auto stream = reflection->ServerReflectionInfo(context.get());
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("*");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  grpc::reflection::v1alpha::ServerReflectionResponse extra;
  while (stream->Read(&extra)) {  // one answer per request: nothing more is expected
    ADD_FAILURE() << "unexpected " << extra.ShortDebugString();
  }
  std::set<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.insert(s.name());
  grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_TRUE(services.count("backflow.v1.Backflow")) << response.ShortDebugString();
  EXPECT_TRUE(services.count("grpc.health.v1.Health")) << response.ShortDebugString();
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"))
      << response.ShortDebugString();
}

TEST_F(ServerProcessTest, BadFlagsExitWithCode2NamingTheFlag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--bogus", "bogus"},
      {"--max-models=many", "max-models"},
      {"--tls-cert=/nonexistent/server.pem", "--tls-cert needs --tls-key"},
      {"--tls-client-ca=/nonexistent/ca.pem", "--tls-client-ca needs --tls-cert and --tls-key"},
      {"--tls-reload-seconds=0", "tls-reload-seconds"}};
  for (const auto& [flag, named] : cases) {
    ServerProcess process;
    ASSERT_TRUE(process.Spawn(
        {"--listen=127.0.0.1:0", "--data-dir=" + data_dir_.path(), "--metrics-listen=", flag}));
    const std::optional<int> status = process.WaitForExit(seconds(20));
    EXPECT_TRUE(ExitedWith(status, 2)) << flag << ": " << DescribeStatus(status);
    EXPECT_NE(process.output().find(named), std::string::npos)
        << flag << ": the message does not name the flag:\n"
        << process.output();
  }
}

// gRPC sets SO_REUSEPORT by default, so a second server on another data directory used to share
// 127.0.0.1:PORT silently and clients alternated between the two. It must refuse to start.
TEST_F(ServerProcessTest, ASecondServerOnTheSamePortRefusesToStart) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  ProcessTempDir other_dir;
  ServerProcess second;
  ASSERT_TRUE(second.Spawn(
      {"--listen=" + server_->address(), "--data-dir=" + other_dir.path(), "--metrics-listen="}));
  const std::optional<int> status = second.WaitForExit(seconds(30));
  EXPECT_TRUE(ExitedWith(status, 1)) << DescribeStatus(status) << "\n" << second.output();
  EXPECT_NE(second.output().find("cannot listen on " + server_->address()), std::string::npos)
      << second.output();
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);  // the first one is unaffected
}

// Started without GOMP_SPINCOUNT, the server sets it and runs itself again (server/main.cc): by
// its own path, so that ps and top still call it backflow-server, with its arguments intact.
TEST_F(ServerProcessTest, ItsReexecutionKeepsItsNameArgumentsAndPid) {
  ProcessTempDir dir;
  ServerProcess server;
  server.set_launcher({"/usr/bin/env", "-u", "GOMP_SPINCOUNT"});
  ASSERT_NE(server.Start(dir.path()), 0);
  const std::string proc = "/proc/" + std::to_string(server.pid());
  std::ifstream comm(proc + "/comm");
  std::string name;
  std::getline(comm, name);
  EXPECT_EQ(name, "backflow-server");
  std::ifstream environ_file(proc + "/environ");
  const std::string environment((std::istreambuf_iterator<char>(environ_file)), {});
  EXPECT_NE(environment.find(std::string("GOMP_SPINCOUNT=0") + '\0'), std::string::npos);
  std::ifstream cmdline(proc + "/cmdline");
  const std::string args((std::istreambuf_iterator<char>(cmdline)), {});
  EXPECT_NE(args.find("--data-dir=" + dir.path()), std::string::npos);
  const std::optional<int> status = server.Stop(SIGTERM, seconds(30));
  EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server.output();
}

class SignalTest : public ServerProcessTest, public ::testing::WithParamInterface<int> {};

TEST_P(SignalTest, ExitsZeroAndRestartsWithIdenticalModels) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  const std::string trained = CreateModel(), untrained = CreateModel();
  for (uint64_t i = 1; i <= 3; ++i) {
    v1::TrainStepResponse response;
    ASSERT_TRUE(stub_->TrainStep(Deadline().get(), Batch(i).Request(trained), &response).ok());
  }
  const auto trained_before = Parameters(trained), untrained_before = Parameters(untrained);
  const std::optional<int> status = server_->Stop(GetParam(), seconds(20));
  EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server_->output();

  ASSERT_NO_FATAL_FAILURE(Launch());
  const auto trained_after = Parameters(trained), untrained_after = Parameters(untrained);
  EXPECT_EQ(trained_after.step(), 3);
  EXPECT_EQ(Bytes(trained_after), Bytes(trained_before));
  EXPECT_EQ(Bytes(trained_after), ReplayedParameters(3));
  EXPECT_EQ(untrained_after.step(), 0);
  EXPECT_EQ(Bytes(untrained_after), Bytes(untrained_before));
}

INSTANTIATE_TEST_SUITE_P(TermAndInt, SignalTest, ::testing::Values(SIGTERM, SIGINT));

// `make run 2>&1 | tee log`, then Ctrl-C: the signal ends tee too, so every log line the server
// writes while it drains goes to a pipe nobody reads. The server must still drain, checkpoint
// and exit 0 (not die of SIGPIPE at its first shutdown line), and the model come back at its step.
TEST_F(ServerProcessTest, CtrlCWithItsLogPipeClosedStillCheckpointsAndExitsZero) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  const std::string id = CreateModel();
  for (uint64_t i = 1; i <= 3; ++i) {
    v1::TrainStepResponse response;
    ASSERT_TRUE(stub_->TrainStep(Deadline().get(), Batch(i).Request(id), &response).ok());
  }
  server_->HangUpLogAfterNextWrite();
  const std::optional<int> status = server_->Stop(SIGINT, seconds(20));
  EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server_->output();

  ASSERT_NO_FATAL_FAILURE(Launch());
  const auto after = Parameters(id);
  EXPECT_EQ(after.step(), 3);
  EXPECT_EQ(Bytes(after), ReplayedParameters(3));
}

// A client pipelining steps on a Train stream until the server goes away.
struct StreamingClient {
  void Run(v1::Backflow::Stub* stub, const std::string& id) {
    auto context = Deadline(seconds(60));
    auto stream = stub->Train(context.get());
    for (uint64_t i = 1; i <= 100000; ++i) {
      if (!stream->Write(Batch(i).Request(i == 1 ? id : ""))) break;
      written = i;
      v1::TrainStepResponse response;
      if (!stream->Read(&response)) break;
      last_step = response.step();
    }
    stream->WritesDone();
    status = stream->Finish();
  }
  std::atomic<uint64_t> written{0};
  std::atomic<int64_t> last_step{0};
  grpc::Status status;
};

TEST_F(ServerProcessTest, SigtermDuringATrainStreamEndsItAndKeepsTheReportedSteps) {
  constexpr int kGraceMs = 2000;
  ASSERT_NO_FATAL_FAILURE(Launch({"--shutdown-grace-ms=" + std::to_string(kGraceMs)}));
  const std::string id = CreateModel();
  StreamingClient client;
  std::thread streaming([&] { client.Run(stub_.get(), id); });
  for (int i = 0; i < 2000 && client.last_step < 5; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(client.last_step, 5) << "the stream made no progress";

  const auto signalled = std::chrono::steady_clock::now();
  const std::optional<int> status = server_->Stop(SIGTERM, milliseconds(kGraceMs) + seconds(15));
  const auto took = std::chrono::steady_clock::now() - signalled;
  streaming.join();
  EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server_->output();
  EXPECT_LT(took, milliseconds(kGraceMs) + seconds(10));
  const grpc::StatusCode code = client.status.error_code();
  EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::UNAVAILABLE ||
              code == grpc::StatusCode::CANCELLED)
      << code << " " << client.status.error_message();

  ASSERT_NO_FATAL_FAILURE(Launch());
  const v1::GetParametersResponse after = Parameters(id);
  EXPECT_GE(after.step(), client.last_step) << "a step the server answered was lost";
  EXPECT_LE(after.step(), int64_t(client.written));
  EXPECT_EQ(Bytes(after), ReplayedParameters(after.step()));
}

TEST_F(ServerProcessTest, HealthTurnsNotServingWhileDraining) {
  ASSERT_NO_FATAL_FAILURE(Launch({"--shutdown-grace-ms=3000"}));
  const std::string id = CreateModel();
  // A client in the middle of training: a Train stream open, idle between two steps.
  auto train_context = Deadline(seconds(60));
  auto train = stub_->Train(train_context.get());
  ASSERT_TRUE(train->Write(Batch(1).Request(id)));
  v1::TrainStepResponse stepped;
  ASSERT_TRUE(train->Read(&stepped));

  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto watch_context = Deadline(seconds(30));
  HealthCheckRequest watch_request;
  auto watch = health->Watch(watch_context.get(), watch_request);
  HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);

  kill(server_->pid(), SIGTERM);
  bool not_serving = false;
  while (!not_serving && watch->Read(&seen)) {
    not_serving = seen.status() == HealthCheckResponse::NOT_SERVING;
  }
  EXPECT_TRUE(not_serving) << "the health watch never reported NOT_SERVING";
  if (not_serving) {
    v1::ModelInfo info;
    v1::GetModelRequest get;
    get.set_model_id(id);
    // NOT_SERVING is published just before the server stops taking calls: allow it a moment.
    grpc::Status refused;
    for (int i = 0; i < 40 && refused.ok(); ++i) {
      refused = stub_->GetModel(Deadline(seconds(5)).get(), get, &info);
      if (refused.ok()) std::this_thread::sleep_for(milliseconds(25));
    }
    // UNAVAILABLE from the server's drain or gRPC's refusal; CANCELLED when the call raced
    // gRPC's own shutdown of the connection.
    EXPECT_TRUE(refused.error_code() == grpc::StatusCode::UNAVAILABLE ||
                refused.error_code() == grpc::StatusCode::CANCELLED)
        << "new calls are still served 1 s into the drain: " << refused.error_code() << " "
        << refused.error_message();
  }
  watch_context->TryCancel();
  watch->Finish();
  train->WritesDone();
  const grpc::Status train_status = train->Finish();
  EXPECT_TRUE(train_status.ok() || train_status.error_code() == grpc::StatusCode::UNAVAILABLE ||
              train_status.error_code() == grpc::StatusCode::CANCELLED)
      << train_status.error_code() << " " << train_status.error_message();
  const std::optional<int> status = server_->WaitForExit(seconds(20));
  EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server_->output();
}

}  // namespace
}  // namespace backflow::testing
