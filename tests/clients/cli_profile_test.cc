// backflow profile against a backflow-server child: the table and the JSON of a LeNet-5
// profile in each mode, what each mode does to the model, and its usage errors.
#include <regex>
#include <set>
#include <string>

#include "backflow/v1/service.grpc.pb.h"
#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

class CliProfileTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
  }

  std::string CreateLenet() {
    std::string out = CliOk({"models", "create", Source("models/lenet5.pbtxt")});
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  int64_t Step(const std::string& id) {
    v1::GetModelRequest request;
    request.set_model_id(id);
    v1::ModelInfo info;
    EXPECT_TRUE(stub_->GetModel(Deadline().get(), request, &info).ok());
    return info.step();
  }

  std::unique_ptr<v1::Backflow::Stub> stub_;
};

TEST_F(CliProfileTest, TheTableListsTheSlowestNodesWithTheirPhaseAndOneDnnUse) {
  const std::string id = CreateLenet();
  const std::string out = CliOk({"profile", id, "--batch", "16", "--runs", "3", "--top", "0"});
  EXPECT_TRUE(std::regex_search(
      out, std::regex("^profile of " + id +
                      " \\(gradients, batch 16\\): run [123] of 3, the fastest: [0-9.]+ ms on "
                      "the server\n  plan [0-9.]+ ms \\((cached|compiled)\\); nodes busy [0-9.]+ "
                      "ms \\([0-9.]+% of the run\\)\n  node time: forward [0-9.]+ ms in 14 nodes, "
                      "backward [0-9.]+ ms in [0-9]+; oneDNN [0-9.]+ ms in "
                      "[0-9]+ of [0-9]+ nodes\n")))
      << out;
  EXPECT_NE(out.find("\nNODE "), std::string::npos) << out;
  // c1: conv2d, forward, 16 x 6 x 28 x 28 float32 at least (a blocked layout may pad).
  EXPECT_TRUE(std::regex_search(
      out, std::regex("\nc1 +conv2d +forward +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[1-9][0-9]* +"
                      "[0-9.]+ (KiB|MiB)\n")))
      << out;
  EXPECT_TRUE(std::regex_search(
      out, std::regex("\nlogits +linear +forward +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+ +"
                      "640 B\n")))
      << out;
  EXPECT_EQ(Step(id), 0) << "--mode gradients changes nothing";

  const std::string top = CliOk({"profile", id, "--runs", "1", "--top", "3"});
  EXPECT_TRUE(std::regex_search(top, std::regex("\n\\([0-9]+ more nodes; --top 0 shows all\\)\n")))
      << top;
}

TEST_F(CliProfileTest, TrainModeAppliesItsStepsAndInferModeRunsTheForwardOnly) {
  const std::string id = CreateLenet();
  const nlohmann::json train = nlohmann::json::parse(
      CliOk({"profile", id, "--mode", "train", "--batch", "8", "--runs", "2", "--json"}));
  EXPECT_EQ(Step(id), 2) << "two profiled training steps";
  EXPECT_EQ(train["mode"], "train");
  EXPECT_EQ(train["batch"], 8);
  EXPECT_EQ(train["runs"], 2);
  EXPECT_GT(train["wall_ms"].get<double>(), 0);
  EXPECT_LE(train["busy_ms"].get<double>(), train["wall_ms"].get<double>());
  const nlohmann::json& nodes = train["nodes"];
  ASSERT_TRUE(nodes.is_array());
  ASSERT_FALSE(nodes.empty());
  EXPECT_EQ(nodes.back()["name"], "optimizer");
  EXPECT_EQ(nodes.back()["phase"], "optimizer");
  EXPECT_EQ(nodes.back()["op"], "sgd");
  EXPECT_EQ(nodes.back()["output_bytes"], 61706 * 4);

  const nlohmann::json infer =
      nlohmann::json::parse(CliOk({"profile", id, "--mode", "infer", "--runs", "1", "--json"}));
  std::set<std::string> phases;
  for (const nlohmann::json& node : infer["nodes"]) phases.insert(node["phase"]);
  EXPECT_EQ(phases, std::set<std::string>{"forward"});
  EXPECT_EQ(infer["nodes"].size(), 12u) << "the nodes logits needs";
  EXPECT_EQ(Step(id), 2);
}

TEST_F(CliProfileTest, BadFlagsAreUsageErrors) {
  const std::string id = CreateLenet();
  const CliResult mode = Cli({"profile", id, "--mode", "fast"});
  EXPECT_EQ(mode.exit_code, 2) << mode;
  EXPECT_NE(mode.err.find("--mode"), std::string::npos) << mode;
  const CliResult batch = Cli({"profile", id, "--batch", "0"});
  EXPECT_EQ(batch.exit_code, 2) << batch;
  const CliResult missing = Cli({"profile", "m-404"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_TRUE(missing.err.starts_with("backflow: profile m-404: NOT_FOUND: ")) << missing;
}

}  // namespace
}  // namespace backflow::testing
