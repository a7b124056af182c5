// --max-memory (Note [Memory budget]): issue 21's findings under a 1 GiB ceiling. A CreateModel
// of a few hundred bytes asking for 1 GiB of parameters and a 33 KB Evaluate whose broadcast makes 1.1 GiB
// of intermediates are RESOURCE_EXHAUSTED before anything is allocated, saying what they needed;
// models that fit train, and a deleted model's share is free again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

constexpr int64_t kCeiling = int64_t{1} << 30;

v1::Graph Parse(const std::string& text) {
  StatusOr<v1::Graph> graph = ParseGraphText(text);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return graph.ok() ? *graph : v1::Graph();
}

// `layers` [8192, 8192] float32 parameters, each at --max-tensor-elements' default (2^26
// elements, 256 MiB), from a request of a few hundred bytes.
v1::CreateModelRequest HugeModel(int layers) {
  std::string text = "placeholders { name: \"x\" shape: [ -1, 8192 ] }\n";
  std::string input = "x";
  for (int i = 1; i <= layers; ++i) {
    const std::string n = std::to_string(i);
    text += "parameters { name: \"w" + n + "\" shape: [ 8192, 8192 ] }\n";
    text += "nodes { name: \"h" + n + "\" op: \"matmul\" inputs: [ \"" + input + "\", \"w" + n +
            "\" ] }\n";
    input = "h" + n;
  }
  text += "outputs: \"" + input + "\"\n";
  v1::CreateModelRequest request;
  *request.mutable_graph() = Parse(text);
  return request;
}

// tanh sixteen times over a + b, a [4096, 1] and b [1, 4096]: 17 intermediates of 64 MiB.
v1::EvaluateRequest BroadcastChain() {
  std::string text =
      "placeholders { name: \"a\" shape: [ 4096, 1 ] }\n"
      "placeholders { name: \"b\" shape: [ 1, 4096 ] }\n"
      "nodes { name: \"t0\" op: \"add\" inputs: [ \"a\", \"b\" ] }\n";
  for (int i = 1; i <= 16; ++i) {
    text += "nodes { name: \"t" + std::to_string(i) + "\" op: \"tanh\" inputs: \"t" +
            std::to_string(i - 1) + "\" }\n";
  }
  text += "outputs: \"t16\"\n";
  v1::EvaluateRequest request;
  *request.mutable_graph() = Parse(text);
  (*request.mutable_values())["a"] = WireTensor({4096, 1}, std::vector<float>(4096, 0.5f));
  (*request.mutable_values())["b"] = WireTensor({1, 4096}, std::vector<float>(4096, 0.25f));
  return request;
}

class MemoryCeilingTest : public ServerTest {
 protected:
  // No cache share (--cache-memory=0): the whole ceiling is the models' and runs', so the
  // figures below are exact.
  void Configure(server::ServerConfig& config) override {
    config.limits.max_memory = kCeiling;
    config.limits.cache_memory = 0;
  }
};

TEST_F(MemoryCeilingTest, AHugeModelIsRefusedBeforeItsParametersExist) {
  const v1::CreateModelRequest request = HugeModel(4);  // 1 GiB
  EXPECT_LT(request.ByteSizeLong(), 400u);
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "needs 2147483648 bytes (2.00 GiB), but only 1.00 GiB of the memory "
                        "ceiling of 1.00 GiB are free"));
  v1::ListModelsResponse models;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &models)));
  EXPECT_EQ(models.models_size(), 0);
  // Nothing was allocated for it: the server's resident memory stayed far below 1 GiB.
  std::ifstream status("/proc/self/status");
  std::string line;
  int64_t resident_kib = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) resident_kib = std::stoll(line.substr(6));
  }
  EXPECT_LT(resident_kib, 512 * 1024);
}

TEST_F(MemoryCeilingTest, ABroadcastThatWouldTakeMoreThanTheCeilingIsRefused) {
  const v1::EvaluateRequest request = BroadcastChain();
  EXPECT_LT(request.ByteSizeLong(), 40000u);
  v1::EvaluateResponse response;
  EXPECT_TRUE(HasStatus(stub_->Evaluate(Context().get(), request, &response),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the run's intermediates and gradients needs 1140850688 bytes"));
  // Eight tanh fit.
  v1::EvaluateRequest shorter = request;
  shorter.mutable_graph()->clear_outputs();
  shorter.mutable_graph()->add_outputs("t8");
  ASSERT_TRUE(IsOk(stub_->Evaluate(Context().get(), shorter, &response)));
  EXPECT_EQ(response.outputs().at("t8").data().size(), size_t{4096} * 4096 * 4);
}

TEST_F(MemoryCeilingTest, ModelsThatFitTrainAndADeletedModelsShareIsFreeAgain) {
  // 256 MiB of float32 parameters with momentum: they and their slot, twice, are exactly the
  // ceiling. One such model fits; a second only once the first is deleted.
  v1::CreateModelRequest request = HugeModel(1);
  request.mutable_optimizer()->set_momentum(0.9);
  v1::ModelInfo first;
  ASSERT_TRUE(IsOk(stub_->CreateModel(Context().get(), request, &first)));
  v1::ModelInfo second;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &second),
                        grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-memory"));
  v1::DeleteModelRequest remove;
  remove.set_model_id(first.id());
  v1::DeleteModelResponse removed;
  ASSERT_TRUE(IsOk(stub_->DeleteModel(Context().get(), remove, &removed)));
  ASSERT_TRUE(IsOk(stub_->CreateModel(Context().get(), request, &second)));

  // A small model trains beside nothing else.
  remove.set_model_id(second.id());
  ASSERT_TRUE(IsOk(stub_->DeleteModel(Context().get(), remove, &removed)));
  const std::string id = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.1))).id();
  WireTensorMap batch;
  TinyBatch(1).ToWire(&batch);
  EXPECT_EQ(TrainStep(*stub_, id, batch).step(), 1);
}

}  // namespace
}  // namespace backflow::testing
