// `profile: true` on TrainStep, ComputeGradients, Infer and Evaluate (Note [Run profiles] in
// engine/exec/run_profile.h): the answer carries every node of the run, with its phase, and a
// request without it carries none; a profile counts in the answer's size before a step applies.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "server/run_profile_proto.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

std::map<std::string, const v1::NodeProfile*> ByName(const v1::RunProfile& profile) {
  std::map<std::string, const v1::NodeProfile*> nodes;
  for (const v1::NodeProfile& node : profile.nodes()) nodes[node.name()] = &node;
  return nodes;
}

int CountPhase(const v1::RunProfile& profile, v1::NodeProfile::Phase phase) {
  int count = 0;
  for (const v1::NodeProfile& node : profile.nodes()) count += node.phase() == phase;
  return count;
}

// Every node inside the run, its wait inside its time; the busy time at most the run's.
void ExpectConsistent(const v1::RunProfile& profile) {
  EXPECT_GT(profile.wall_ns(), 0);
  EXPECT_GT(profile.busy_ns(), 0);
  EXPECT_LE(profile.busy_ns(), profile.wall_ns());
  for (const v1::NodeProfile& node : profile.nodes()) {
    EXPECT_NE(node.phase(), v1::NodeProfile::PHASE_UNSPECIFIED) << node.name();
    EXPECT_GE(node.start_ns(), 0) << node.name();
    EXPECT_GT(node.duration_ns(), 0) << node.name();
    EXPECT_LE(node.wait_ns(), node.duration_ns()) << node.name();
    EXPECT_LE(node.start_ns() + node.duration_ns(), profile.wall_ns()) << node.name();
    EXPECT_GT(node.output_bytes(), 0) << node.name();
  }
}

class ProfileTest : public ServerTest {
 protected:
  std::string CreateLenet() {
    return CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05, 0.9), 3))
        .id();
  }
};

TEST_F(ProfileTest, ATrainStepAnswersWithItsProfileOnlyWhenAsked) {
  const std::string id = CreateLenet();
  const v1::TrainStepResponse plain = TrainStep(*stub_, id, ImageBatch(16, 1));
  EXPECT_FALSE(plain.has_profile());

  v1::TrainStepRequest request;
  request.set_model_id(id);
  *request.mutable_batch() = ImageBatch(16, 2);
  request.set_profile(true);
  v1::TrainStepResponse response;
  ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), request, &response)));
  EXPECT_EQ(response.step(), 2);
  const v1::RunProfile& profile = response.profile();
  ExpectConsistent(profile);
  EXPECT_FALSE(profile.plan_compiled()) << "the first step compiled the plan for 16 rows";
  EXPECT_EQ(CountPhase(profile, v1::NodeProfile::PHASE_FORWARD), 14);
  EXPECT_GE(CountPhase(profile, v1::NodeProfile::PHASE_BACKWARD), 10);
  ASSERT_EQ(CountPhase(profile, v1::NodeProfile::PHASE_OPTIMIZER), 1);
  const v1::NodeProfile& optimizer = profile.nodes(profile.nodes_size() - 1);
  EXPECT_EQ(optimizer.name(), "optimizer");
  EXPECT_EQ(optimizer.op(), "sgd");
  EXPECT_EQ(optimizer.output_bytes(), 61706 * 4);
  auto nodes = ByName(profile);
  ASSERT_TRUE(nodes.count("c1"));
  EXPECT_EQ(nodes["c1"]->op(), "conv2d");
  EXPECT_GE(nodes["c1"]->onednn_primitives(), 1);
  EXPECT_EQ(nodes["logits"]->output_bytes(), 16 * 10 * 4);

  // Its encoded size is inside the bound the answer's size check counts for it.
  const std::unique_ptr<Trainer> twin =
      DirectTrainer(ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05, 0.9), 3));
  ASSERT_NE(twin, nullptr);
  EXPECT_LE(static_cast<int64_t>(profile.ByteSizeLong()), server::ProfileBytesBound(twin->graph()));
}

TEST_F(ProfileTest, GradientsAndInferenceProfileWithoutChangingTheModel) {
  const std::string id = CreateLenet();
  v1::ComputeGradientsRequest gradients;
  gradients.set_model_id(id);
  *gradients.mutable_batch() = ImageBatch(8, 3);
  gradients.set_profile(true);
  v1::ComputeGradientsResponse answer;
  ASSERT_TRUE(IsOk(stub_->ComputeGradients(Context().get(), gradients, &answer)));
  ExpectConsistent(answer.profile());
  EXPECT_TRUE(answer.profile().plan_compiled());
  EXPECT_GE(CountPhase(answer.profile(), v1::NodeProfile::PHASE_BACKWARD), 10);
  EXPECT_EQ(CountPhase(answer.profile(), v1::NodeProfile::PHASE_OPTIMIZER), 0);

  // Infer goes through the dynamic batcher unless profiled; profiled, it runs alone.
  v1::InferRequest infer;
  infer.set_model_id(id);
  WireTensorMap batch = ImageBatch(8, 4);
  (*infer.mutable_inputs())["images"] = batch.at("images");
  infer.add_outputs("logits");
  infer.set_profile(true);
  v1::InferResponse inferred;
  ASSERT_TRUE(IsOk(stub_->Infer(Context().get(), infer, &inferred)));
  ExpectConsistent(inferred.profile());
  std::set<std::string> names;
  for (const v1::NodeProfile& node : inferred.profile().nodes()) {
    names.insert(node.name());
    EXPECT_EQ(node.phase(), v1::NodeProfile::PHASE_FORWARD) << node.name();
  }
  EXPECT_EQ(names, (std::set<std::string>{"c1", "c1_relu", "s2", "c3", "c3_relu", "s4", "s4_flat",
                                          "f5", "f5_relu", "f6", "f6_relu", "logits"}));
  infer.set_profile(false);
  ASSERT_TRUE(IsOk(stub_->Infer(Context().get(), infer, &inferred)));
  EXPECT_FALSE(inferred.has_profile());
  EXPECT_EQ(GetModelInfo(*stub_, id).step(), 0);
}

TEST_F(ProfileTest, EvaluateProfilesTheGraphItCompiles) {
  v1::EvaluateRequest request;
  *request.mutable_graph() = ModelGraph("seeds/staged.pbtxt");
  (*request.mutable_values())["x"] = WireTensor({}, {3.0f});
  (*request.mutable_values())["y"] = WireTensor({}, {-4.0f});
  request.set_seed(7);
  request.set_profile(true);
  v1::EvaluateResponse response;
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), request, &response)));
  ExpectConsistent(response.profile());
  EXPECT_TRUE(response.profile().plan_compiled());
  EXPECT_EQ(CountPhase(response.profile(), v1::NodeProfile::PHASE_BACKWARD), 0);
  const int forward = response.profile().nodes_size();
  EXPECT_GT(forward, 0);
  for (const v1::Placeholder& placeholder : request.graph().placeholders()) {
    request.add_wrt(placeholder.name());
  }
  ASSERT_GT(request.wrt_size(), 0);
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), request, &response)));
  EXPECT_GT(CountPhase(response.profile(), v1::NodeProfile::PHASE_BACKWARD), 0);
  EXPECT_EQ(CountPhase(response.profile(), v1::NodeProfile::PHASE_FORWARD), forward);
}

// A chain of 120 tanh: its request and every answer without a profile fit in 12,000 bytes, a
// profile of its 240 forward and backward nodes does not.
constexpr int kChain = 120;
constexpr int64_t kSmallMessages = 12000;

class ProfileSizeTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.limits.max_message_bytes = kSmallMessages;
  }
};

TEST_F(ProfileSizeTest, AProfileTooLargeToSendIsRefusedBeforeTheStep) {
  std::string text = R"(name: "chain"
    placeholders { name: "x" shape: [-1, 2] }
    placeholders { name: "labels" shape: [-1] }
    parameters { name: "w" shape: [2, 2] init { glorot {} } }
    nodes { name: "t0" op: "matmul" inputs: ["x", "w"] }
  )";
  for (int i = 1; i <= kChain; ++i) {
    text += "nodes { name: \"t" + std::to_string(i) + "\" op: \"tanh\" inputs: \"t" +
            std::to_string(i - 1) + "\" }\n";
  }
  text += "nodes { name: \"loss\" op: \"softmax_cross_entropy\" inputs: [\"t" +
          std::to_string(kChain) + "\", \"labels\"] }\nloss: \"loss\"\n";
  StatusOr<v1::Graph> graph = ParseGraphText(text);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const std::string id = CreateModel(*stub_, ModelRequest(*graph, SgdSpec(0.1))).id();
  ASSERT_FALSE(id.empty());

  v1::TrainStepRequest request;
  request.set_model_id(id);
  (*request.mutable_batch())["x"] = WireTensor({2, 2}, {0.5f, -0.5f, 0.25f, 1.0f});
  (*request.mutable_batch())["labels"] = WireTensor({2}, {0.0f, 1.0f});
  request.set_profile(true);
  v1::TrainStepResponse response;
  EXPECT_TRUE(HasStatus(stub_->TrainStep(Context().get(), request, &response),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "over the server's --max-message-bytes of 12000; the step was not "
                        "applied"));
  EXPECT_EQ(GetModelInfo(*stub_, id).step(), 0);

  request.set_profile(false);
  ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), request, &response)));
  EXPECT_EQ(response.step(), 1);
}

}  // namespace
}  // namespace backflow::testing
