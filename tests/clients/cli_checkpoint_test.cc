// `backflow checkpoint save | restore | list | delete` as a child process against a
// backflow-server child: named and automatic checkpoints, the list's table and JSON, restores
// by name, by step and to the current checkpoint, deletes, and the errors of each. Steps and
// the current checkpoint are checked against direct RPCs.
#include <chrono>
#include <iterator>
#include <regex>
#include <sstream>
#include <utility>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/ir/tensor_proto.h"
#include "tests/clients/cli_fixture.h"
#include "tests/clients/image_step.h"

namespace backflow::testing {
namespace {

using Cells = std::vector<std::string>;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Each line of `out` split on whitespace.
std::vector<Cells> SplitTable(const std::string& out) {
  std::vector<Cells> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    rows.emplace_back(std::istream_iterator<std::string>(words),
                      std::istream_iterator<std::string>());
  }
  return rows;
}

class CliCheckpointTest : public CliTest {
 protected:
  // The suite's own server, without automatic checkpoints by time: a slow run must not add
  // rows the lists below do not expect.
  static void SetUpTestSuite() {
    data_dir_ = new ProcessTempDir();
    server_ = new ServerProcess();
    server_->Start(data_dir_->path(), {"--checkpoint-every-seconds=0"});
  }

  void SetUp() override {
    CliTest::SetUp();
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
  }

  static std::string CreateModel() {
    std::string out =
        CliOk({"models", "create", Source("models/mlp_tanh.pbtxt"), "--momentum", "0.5"});
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  int64_t TrainOneStep(const std::string& id) { return TrainOneImageStep(*stub_, id); }
  int64_t ModelStep(const std::string& id) {
    v1::GetModelRequest request;
    request.set_model_id(id);
    v1::ModelInfo info;
    EXPECT_TRUE(stub_->GetModel(Deadline().get(), request, &info).ok());
    return info.step();
  }
  static nlohmann::json ListJson(const std::string& id) {
    return nlohmann::json::parse(CliOk({"checkpoint", "list", id, "--json"}));
  }
  // Runs a command that must fail with exit 1 and an error line naming `code`.
  static void ExpectCallFails(const std::vector<std::string>& args, const std::string& code) {
    const CliResult result = Cli(args);
    EXPECT_EQ(result.exit_code, 1) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_NE(result.err.find(": " + code + ": "), std::string::npos) << result.err;
  }

  std::unique_ptr<v1::Backflow::Stub> stub_;
};

TEST_F(CliCheckpointTest, NamedAndAutomaticCheckpointsListRestoreAndDelete) {
  const std::string id = CreateModel();
  const int64_t before_ms = NowUnixMs();
  ASSERT_EQ(TrainOneStep(id), 1);
  const std::string named = CliOk({"checkpoint", "save", id, "--name", "best"});
  std::smatch match;
  ASSERT_TRUE(std::regex_match(named, match,
                               std::regex("saved (.+) at step 1 as best \\((\\d+) bytes\\)\n")))
      << named;
  EXPECT_EQ(match[1], id);
  const std::string named_bytes = match[2];
  ASSERT_EQ(TrainOneStep(id), 2);
  // Without --name: the line `checkpoint save` printed before checkpoints had names.
  const std::string automatic = CliOk({"checkpoint", "save", id});
  ASSERT_TRUE(
      std::regex_match(automatic, match, std::regex("saved (.+) at step 2 \\((\\d+) bytes\\)\n")))
      << automatic;
  const std::string automatic_bytes = match[2];
  const int64_t after_ms = NowUnixMs();
  ASSERT_EQ(TrainOneStep(id), 3);

  const std::vector<Cells> table = SplitTable(CliOk({"checkpoint", "list", id}));
  ASSERT_EQ(table.size(), 3u) << ::testing::PrintToString(table);
  EXPECT_EQ(table[0], (Cells{"SEQ", "NAME", "STEP", "SAVED", "BYTES", "CURRENT"}));
  const std::regex iso_utc("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");
  for (size_t row = 1; row < table.size(); ++row) {
    ASSERT_EQ(table[row].size(), 6u) << ::testing::PrintToString(table[row]);
    EXPECT_TRUE(std::regex_match(table[row][3], iso_utc)) << table[row][3];
  }
  EXPECT_EQ(table[1][1], "best");
  EXPECT_EQ(table[1][2], "1");
  EXPECT_EQ(table[1][4], named_bytes);
  EXPECT_EQ(table[1][5], "-");
  EXPECT_EQ(table[2][1], "-");  // automatic
  EXPECT_EQ(table[2][2], "2");
  EXPECT_EQ(table[2][4], automatic_bytes);
  EXPECT_EQ(table[2][5], "*");  // the latest save is what a restart would load
  EXPECT_LT(std::stoll(table[1][0]), std::stoll(table[2][0]));

  const nlohmann::json list = ListJson(id);
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0]["name"], "best");
  EXPECT_EQ(list[0]["step"], 1);
  EXPECT_EQ(list[0]["current"], false);
  EXPECT_EQ(list[1]["name"], "");
  EXPECT_EQ(list[1]["step"], 2);
  EXPECT_EQ(list[1]["current"], true);
  EXPECT_EQ(list[1]["bytes"], std::stoll(automatic_bytes));
  EXPECT_EQ(list[0]["sequence"], std::stoll(table[1][0]));
  for (const nlohmann::json& info : list) {
    EXPECT_EQ(info["damage"], "");
    EXPECT_GE(info["saved_unix_ms"].get<int64_t>(), before_ms);
    EXPECT_LE(info["saved_unix_ms"].get<int64_t>(), after_ms);
  }

  EXPECT_EQ(CliOk({"checkpoint", "restore", id, "--name", "best"}),
            "restored " + id + " to step 1 from best\n");
  EXPECT_EQ(ModelStep(id), 1);
  EXPECT_EQ(ListJson(id)[0]["current"], true);
  ExpectCallFails({"checkpoint", "delete", id, "--name", "best"}, "FAILED_PRECONDITION");

  EXPECT_EQ(CliOk({"checkpoint", "restore", id, "--step", "2"}), "restored " + id + " to step 2\n");
  EXPECT_EQ(ModelStep(id), 2);
  // A plain restore returns to the checkpoint the model is at: the one restored last.
  ASSERT_EQ(TrainOneStep(id), 3);
  EXPECT_EQ(CliOk({"checkpoint", "restore", id}), "restored " + id + " to step 2\n");
  EXPECT_EQ(ModelStep(id), 2);

  EXPECT_EQ(CliOk({"checkpoint", "delete", id, "--name", "best"}),
            "deleted checkpoint best of " + id + "\n");
  const nlohmann::json left = ListJson(id);
  ASSERT_EQ(left.size(), 1u) << left.dump();
  EXPECT_EQ(left[0]["name"], "");
  EXPECT_EQ(left[0]["step"], 2);
  EXPECT_EQ(left[0]["current"], true);
}

TEST_F(CliCheckpointTest, ServerErrorsExitOneWithTheirCode) {
  const std::string id = CreateModel();
  ASSERT_EQ(TrainOneStep(id), 1);
  CliOk({"checkpoint", "save", id, "--name", "best"});

  const CliResult nope = Cli({"checkpoint", "restore", id, "--name", "nope"});
  EXPECT_EQ(nope.exit_code, 1) << nope;
  EXPECT_NE(nope.err.find("backflow: checkpoint restore " + id + ": NOT_FOUND: "),
            std::string::npos)
      << nope.err;
  EXPECT_EQ(nope.out, "");
  ExpectCallFails({"checkpoint", "restore", id, "--step", "99"}, "NOT_FOUND");
  ExpectCallFails({"checkpoint", "delete", id, "--name", "nope"}, "NOT_FOUND");
  ExpectCallFails({"checkpoint", "list", "m-missing"}, "NOT_FOUND");
  ExpectCallFails({"checkpoint", "save", id, "--name", ".hidden"}, "INVALID_ARGUMENT");

  ASSERT_EQ(TrainOneStep(id), 2);
  ExpectCallFails({"checkpoint", "save", id, "--name", "best"}, "ALREADY_EXISTS");
  EXPECT_EQ(ListJson(id)[0]["step"], 1);  // the refused save left it alone
  const std::string replaced = CliOk({"checkpoint", "save", id, "--name", "best", "--replace"});
  EXPECT_TRUE(
      std::regex_match(replaced, std::regex("saved .+ at step 2 as best \\(\\d+ bytes\\)\n")))
      << replaced;
  const nlohmann::json list = ListJson(id);
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["name"], "best");
  EXPECT_EQ(list[0]["step"], 2);
}

TEST_F(CliCheckpointTest, ConflictingOrMissingFlagsAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"checkpoint", "restore", "m-1", "--name", "best", "--step", "1"}, "not both"},
      {{"checkpoint", "restore", "m-1", "--step", "two"}, "--step"},
      {{"checkpoint", "restore", "m-1", "--step", "-1"}, "--step"},
      {{"checkpoint", "delete", "m-1"}, "missing --name"},
      {{"checkpoint", "save", "m-1", "--replace"}, "--replace"},
      {{"checkpoint", "save", "m-1", "--name="}, "--name"},
      {{"checkpoint", "list"}, "missing ID"},
  };
  for (const auto& [args, needle] : bad) {
    const CliResult result = Cli(args);
    EXPECT_EQ(result.exit_code, 2) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_NE(result.err.find(needle), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("Try 'backflow checkpoint"), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "");
  }
  const CliResult help = RunCli({"checkpoint", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  EXPECT_EQ(help.out,
            "Usage: backflow checkpoint {save, restore, list, delete, download, upload} ...\n");
}

}  // namespace
}  // namespace backflow::testing
