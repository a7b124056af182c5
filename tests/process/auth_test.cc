// --auth-tokens on a real server: every method of backflow.v1.Backflow without a token, with an
// unknown one, with each role and with a prefix-limited token gets exactly its code; a refused
// call changes nothing; ListModels shows a prefix-limited token only its models; health needs no
// token; the token file is re-read when it changes (server/auth/, server/caller_check.h).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "engine/ir/tensor_proto.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/auth/tokens.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {
namespace {

using grpc::StatusCode;
using server::auth::Sha256;
using server::auth::ToHex;

constexpr char kGraph[] = R"graph(
  name: "tiny"
  placeholders { name: "x" shape: [-1, 2] }
  placeholders { name: "t" shape: [-1, 1] }
  parameters { name: "w" shape: [2, 1] init { constant { value: 0.5 } } }
  nodes { name: "y" op: "matmul" inputs: ["x", "w"] }
  nodes {
    name: "loss" op: "squared_error" inputs: ["y", "t"]
    attrs { key: "reduction" value { s: "mean" } }
  }
  outputs: "y"
  loss: "loss"
)graph";

std::string TokenLine(const std::string& token, const std::string& rest) {
  return "sha256:" + ToHex(Sha256(token)) + " " + rest + "\n";
}

// ops: admin; trainer: train on team-a/...; viewer: read on every model; scout: read on team-a/.
const std::string kTokens = TokenLine("ops-secret", "admin name=ops") +
                            TokenLine("trainer-secret", "train name=trainer prefix=team-a/") +
                            TokenLine("viewer-secret", "read name=viewer") +
                            TokenLine("scout-secret", "read name=scout prefix=team-a/");

void AddTensor(const std::string& name, Shape shape, std::vector<double> values,
               google::protobuf::Map<std::string, v1::Tensor>* map) {
  TensorToProto(Tensor::FromValues(DType::kFloat32, std::move(shape), values), &(*map)[name]);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = temp_.path() + "/tokens.txt";
    std::ofstream(tokens_path_) << kTokens;
    ASSERT_GT(server_.Start(temp_.path() + "/data", {"--auth-tokens=" + tokens_path_}), 0);
    stub_ = v1::Backflow::NewStub(ConnectTo(server_.address()));
    team_a_ = Create("team-a/tiny", "ops-secret");
    team_b_ = Create("team-b/tiny", "ops-secret");
  }
  void TearDown() override { server_.Stop(SIGTERM, std::chrono::seconds(30)); }

  std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = Deadline();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }
  std::string Create(const std::string& name, const std::string& token) {
    v1::CreateModelRequest request;
    *request.mutable_graph() = *ParseGraphText(kGraph);
    request.set_name(name);
    v1::ModelInfo info;
    const grpc::Status status = stub_->CreateModel(As(token).get(), request, &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return info.id();
  }
  // Every method of the service, called on `model` as `token`; the status of each.
  std::map<std::string, grpc::Status> CallEverything(const std::string& token,
                                                     const std::string& model);

  ProcessTempDir temp_;
  std::string tokens_path_;
  ServerProcess server_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
  std::string team_a_, team_b_;
};

std::map<std::string, grpc::Status> AuthTest::CallEverything(const std::string& token,
                                                             const std::string& model) {
  std::map<std::string, grpc::Status> out;
  v1::Backflow::Stub& s = *stub_;
  {
    v1::CreateModelRequest r;
    *r.mutable_graph() = *ParseGraphText(kGraph);
    r.set_name("team-a/new");
    v1::ModelInfo info;
    out["CreateModel"] = s.CreateModel(As(token).get(), r, &info);
    if (out["CreateModel"].ok()) {  // not part of what is compared afterwards
      v1::DeleteModelRequest d;
      d.set_model_id(info.id());
      v1::DeleteModelResponse gone;
      EXPECT_TRUE(s.DeleteModel(As("ops-secret").get(), d, &gone).ok());
    }
  }
  v1::GetModelRequest get;
  get.set_model_id(model);
  v1::ModelInfo info;
  out["GetModel"] = s.GetModel(As(token).get(), get, &info);
  v1::ListModelsResponse listed;
  out["ListModels"] = s.ListModels(As(token).get(), {}, &listed);
  v1::InferRequest infer;
  infer.set_model_id(model);
  AddTensor("x", Shape{1, 2}, {1, 2}, infer.mutable_inputs());
  v1::InferResponse inferred;
  out["Infer"] = s.Infer(As(token).get(), infer, &inferred);
  v1::ComputeGradientsRequest gradients;
  gradients.set_model_id(model);
  AddTensor("x", Shape{1, 2}, {1, 2}, gradients.mutable_batch());
  AddTensor("t", Shape{1, 1}, {3}, gradients.mutable_batch());
  v1::ComputeGradientsResponse computed;
  out["ComputeGradients"] = s.ComputeGradients(As(token).get(), gradients, &computed);
  v1::TrainStepRequest step;
  step.set_model_id(model);
  *step.mutable_batch() = gradients.batch();
  v1::TrainStepResponse stepped;
  out["TrainStep"] = s.TrainStep(As(token).get(), step, &stepped);
  {
    auto context = As(token);
    auto stream = s.Train(context.get());
    stream->Write(step);
    stream->WritesDone();
    while (stream->Read(&stepped)) {
    }
    out["Train"] = stream->Finish();
  }
  v1::GetParametersRequest params;
  params.set_model_id(model);
  v1::GetParametersResponse got;
  out["GetParameters"] = s.GetParameters(As(token).get(), params, &got);
  v1::SetParametersRequest set;
  set.set_model_id(model);
  AddTensor("w", Shape{2, 1}, {0.5, 0.5}, set.mutable_parameters());
  v1::SetParametersResponse was_set;
  out["SetParameters"] = s.SetParameters(As(token).get(), set, &was_set);
  v1::SaveCheckpointRequest save;
  save.set_model_id(model);
  v1::SaveCheckpointResponse saved;
  out["SaveCheckpoint"] = s.SaveCheckpoint(As(token).get(), save, &saved);
  v1::RestoreCheckpointRequest restore;
  restore.set_model_id(model);
  v1::RestoreCheckpointResponse restored;
  out["RestoreCheckpoint"] = s.RestoreCheckpoint(As(token).get(), restore, &restored);
  v1::EvaluateRequest evaluate;
  *evaluate.mutable_graph() = *ParseGraphText(kGraph);
  AddTensor("x", Shape{1, 2}, {1, 2}, evaluate.mutable_values());
  AddTensor("t", Shape{1, 1}, {3}, evaluate.mutable_values());
  v1::EvaluateResponse evaluated;
  out["Evaluate"] = s.Evaluate(As(token).get(), evaluate, &evaluated);
  v1::CheckGradientsRequest check;
  check.set_model_id(model);
  AddTensor("x", Shape{1, 2}, {1, 2}, check.mutable_values());
  AddTensor("t", Shape{1, 1}, {3}, check.mutable_values());
  v1::CheckGradientsResponse checked;
  out["CheckGradients"] = s.CheckGradients(As(token).get(), check, &checked);
  v1::ExportModelRequest export_request;
  export_request.set_model_id(model);
  v1::ExportModelResponse exported;
  out["ExportModel"] = s.ExportModel(As(token).get(), export_request, &exported);
  v1::DeleteModelRequest remove;
  remove.set_model_id(model);
  v1::DeleteModelResponse removed;
  out["DeleteModel"] = s.DeleteModel(As(token).get(), remove, &removed);
  return out;
}

// What a refused call leaves: the parameters and step of both models, and the model list.
std::string State(v1::Backflow::Stub& stub, const std::vector<std::string>& ids) {
  std::string state;
  for (const std::string& id : ids) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    auto context = Deadline();
    context->AddMetadata("authorization", "Bearer ops-secret");
    EXPECT_TRUE(stub.GetParameters(context.get(), request, &response).ok());
    state += id + "@" + std::to_string(response.step()) + ":" +
             response.parameters().at("w").SerializeAsString() + ";";
  }
  return state;
}

TEST_F(AuthTest, NoTokenOrAnUnknownOneIsUnauthenticatedEverywhereAndChangesNothing) {
  const std::string before = State(*stub_, {team_a_, team_b_});
  for (const std::string& token : {std::string(), std::string("not-a-token")}) {
    for (const auto& [rpc, status] : CallEverything(token, team_a_)) {
      EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED)
          << rpc << ": " << status.error_message();
      if (token.empty()) {
        EXPECT_NE(status.error_message().find("the server requires a token"), std::string::npos)
            << rpc << ": " << status.error_message();
      }
    }
  }
  EXPECT_EQ(State(*stub_, {team_a_, team_b_}), before);
}

TEST_F(AuthTest, EachRoleGetsExactlyItsMethods) {
  const std::map<std::string, int> needs = {// 0 read, 1 train, 2 admin
                                            {"Infer", 0},
                                            {"Evaluate", 0},
                                            {"CheckGradients", 0},
                                            {"GetModel", 0},
                                            {"ListModels", 0},
                                            {"GetParameters", 0},
                                            {"ExportModel", 0},
                                            {"TrainStep", 1},
                                            {"Train", 1},
                                            {"ComputeGradients", 1},
                                            {"SetParameters", 1},
                                            {"SaveCheckpoint", 1},
                                            {"RestoreCheckpoint", 1},
                                            {"CreateModel", 2},
                                            {"DeleteModel", 2}};
  const std::string before = State(*stub_, {team_b_});
  for (const auto& [token, role] :
       std::vector<std::pair<std::string, int>>{{"viewer-secret", 0}, {"trainer-secret", 1}}) {
    const std::map<std::string, grpc::Status> got = CallEverything(token, team_a_);
    ASSERT_EQ(got.size(), needs.size());
    for (const auto& [rpc, status] : got) {
      if (needs.at(rpc) <= role) {
        EXPECT_NE(status.error_code(), StatusCode::PERMISSION_DENIED) << token << " " << rpc;
        EXPECT_NE(status.error_code(), StatusCode::UNAUTHENTICATED) << token << " " << rpc;
      } else {
        EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED)
            << token << " " << rpc << ": " << status.error_message();
        EXPECT_NE(status.error_message().find(" needs "), std::string::npos)
            << status.error_message();
      }
    }
  }
  EXPECT_TRUE(CallEverything("trainer-secret", team_a_).at("TrainStep").ok());
  EXPECT_EQ(State(*stub_, {team_b_}), before);
  // ops may do everything, DeleteModel last (it removes team-a's model).
  for (const auto& [rpc, status] : CallEverything("ops-secret", team_a_)) {
    EXPECT_NE(status.error_code(), StatusCode::PERMISSION_DENIED) << rpc;
    EXPECT_NE(status.error_code(), StatusCode::UNAUTHENTICATED) << rpc;
  }
}

TEST_F(AuthTest, PrefixesKeepTokensToTheirModels) {
  const std::string before = State(*stub_, {team_b_});
  for (const std::string& token : {"trainer-secret", "scout-secret"}) {
    for (const auto& [rpc, status] : CallEverything(token, team_b_)) {
      if (rpc == "Evaluate" || rpc == "ListModels") {
        EXPECT_TRUE(status.ok()) << token << " " << rpc << ": " << status.error_message();
      } else {
        EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED) << token << " " << rpc;
      }
    }
  }
  EXPECT_EQ(State(*stub_, {team_b_}), before);
  v1::ListModelsResponse listed;
  ASSERT_TRUE(stub_->ListModels(As("scout-secret").get(), {}, &listed).ok());
  ASSERT_EQ(listed.models_size(), 1);
  EXPECT_EQ(listed.models(0).name(), "team-a/tiny");
  ASSERT_TRUE(stub_->ListModels(As("viewer-secret").get(), {}, &listed).ok());
  EXPECT_EQ(listed.models_size(), 2);
  v1::GetModelRequest get;
  get.set_model_id(team_b_);
  v1::ModelInfo info;
  const grpc::Status denied = stub_->GetModel(As("scout-secret").get(), get, &info);
  EXPECT_EQ(denied.error_message(),
            "token 'scout' is limited to models named 'team-a/...'; this model is named "
            "'team-b/tiny'");
  EXPECT_EQ(denied.error_message().find("scout-secret"), std::string::npos);
}

TEST_F(AuthTest, HealthIsOpenAndTheTokenFileIsReReadWhenItChanges) {
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  auto health = grpc::health::v1::Health::NewStub(ConnectTo(server_.address()));
  ASSERT_TRUE(health->Check(Deadline().get(), request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  v1::ListModelsResponse listed;
  ASSERT_TRUE(stub_->ListModels(As("viewer-secret").get(), {}, &listed).ok());
  std::ofstream(tokens_path_) << TokenLine("ops-secret", "admin name=ops")
                              << TokenLine("new-secret", "read name=new");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  grpc::Status revoked;
  while (std::chrono::steady_clock::now() < deadline) {
    revoked = stub_->ListModels(As("viewer-secret").get(), {}, &listed);
    if (!revoked.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(revoked.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stub_->ListModels(As("new-secret").get(), {}, &listed).ok());
  // A broken file keeps the tokens that were in force.
  std::ofstream(tokens_path_) << "this is not a token line\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(stub_->ListModels(As("new-secret").get(), {}, &listed).ok());
  EXPECT_TRUE(server_.WaitForOutput("keeping the previous 2 tokens", std::chrono::seconds(10)));
}

// max-in-flight: a token with a quota of one has its second concurrent request refused, and
// the quota comes back when the first ends. SaveCheckpoint is held open by the testing aid
// --checkpoint-write-delay-ms.
TEST(AuthQuotaTest, MaxInFlightBoundsOneTokensConcurrentRequests) {
  ProcessTempDir temp;
  const std::string tokens = temp.path() + "/tokens.txt";
  std::ofstream(tokens) << TokenLine("ops-secret", "admin name=ops max-in-flight=1")
                        << TokenLine("other-secret", "train name=other");
  ServerProcess server;
  ASSERT_GT(server.Start(temp.path() + "/data",
                         {"--auth-tokens=" + tokens, "--checkpoint-write-delay-ms=1500"}),
            0);
  auto stub = v1::Backflow::NewStub(ConnectTo(server.address()));
  auto as = [](const std::string& token) {
    auto context = Deadline();
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  };
  v1::CreateModelRequest create;
  *create.mutable_graph() = *ParseGraphText(kGraph);
  create.set_name("quota");
  v1::ModelInfo info;
  ASSERT_TRUE(stub->CreateModel(as("ops-secret").get(), create, &info).ok());
  v1::SaveCheckpointRequest save;
  save.set_model_id(info.id());
  grpc::Status slow;
  std::thread first([&] {
    v1::SaveCheckpointResponse saved;
    slow = stub->SaveCheckpoint(as("ops-secret").get(), save, &saved);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the first is writing
  v1::SaveCheckpointResponse saved;
  const grpc::Status refused = stub->SaveCheckpoint(as("ops-secret").get(), save, &saved);
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(refused.error_message(),
            "token 'ops' has 1 requests in flight, its max-in-flight quota");
  {  // a stream counts too
    auto context = as("ops-secret");
    auto stream = stub->Train(context.get());
    stream->WritesDone();
    const grpc::Status stream_refused = stream->Finish();
    EXPECT_EQ(stream_refused.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  }
  // Another token is not held back by this one's quota.
  v1::GetParametersRequest get;
  get.set_model_id(info.id());
  v1::GetParametersResponse got;
  EXPECT_TRUE(stub->GetParameters(as("other-secret").get(), get, &got).ok());
  first.join();
  EXPECT_TRUE(slow.ok()) << slow.error_message();
  EXPECT_TRUE(stub->SaveCheckpoint(as("ops-secret").get(), save, &saved).ok());
  server.Stop(SIGTERM, std::chrono::seconds(30));
}

// max-models: a token holds at most that many of the models it created, counted again from the
// data directory after a restart; deleting one gives the place back; other tokens are not
// counted against it.
TEST(AuthQuotaTest, MaxModelsBoundsTheModelsATokenHolds) {
  ProcessTempDir temp;
  const std::string tokens = temp.path() + "/tokens.txt";
  std::ofstream(tokens) << TokenLine("team-secret", "admin name=team max-models=2")
                        << TokenLine("ops-secret", "admin name=ops");
  auto as = [](const std::string& token) {
    auto context = Deadline();
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  };
  ServerProcess server;
  ASSERT_GT(server.Start(temp.path() + "/data", {"--auth-tokens=" + tokens}), 0);
  auto stub = v1::Backflow::NewStub(ConnectTo(server.address()));
  auto create = [&](const std::string& token, std::string* id = nullptr) {
    v1::CreateModelRequest request;
    *request.mutable_graph() = *ParseGraphText(kGraph);
    v1::ModelInfo info;
    const grpc::Status status = stub->CreateModel(as(token).get(), request, &info);
    if (id != nullptr) *id = info.id();
    return status;
  };
  std::string first;
  ASSERT_TRUE(create("team-secret", &first).ok());
  ASSERT_TRUE(create("ops-secret").ok());  // not the team's
  ASSERT_TRUE(create("team-secret").ok());
  const std::string full = "token 'team' holds 2 models, its max-models quota; delete one first";
  grpc::Status refused = create("team-secret");
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(refused.error_message(), full);
  v1::ListModelsResponse listed;
  ASSERT_TRUE(stub->ListModels(as("ops-secret").get(), {}, &listed).ok());
  EXPECT_EQ(listed.models_size(), 3);  // the refused call created nothing

  // A restart counts the team's models again from the data directory.
  server.Stop(SIGTERM, std::chrono::seconds(30));
  ServerProcess restarted;
  ASSERT_GT(restarted.Start(temp.path() + "/data", {"--auth-tokens=" + tokens}), 0);
  stub = v1::Backflow::NewStub(ConnectTo(restarted.address()));
  refused = create("team-secret");
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(refused.error_message(), full);
  v1::DeleteModelRequest remove;
  remove.set_model_id(first);
  v1::DeleteModelResponse removed;
  ASSERT_TRUE(stub->DeleteModel(as("team-secret").get(), remove, &removed).ok());
  EXPECT_TRUE(create("team-secret").ok());
  restarted.Stop(SIGTERM, std::chrono::seconds(30));
}

}  // namespace
}  // namespace backflow::testing
