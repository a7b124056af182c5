// The clients against a server started with --auth-tokens: `backflow token new` makes a working
// token and line, the CLI and backflow-load send --token (or BACKFLOW_TOKEN), and a missing or
// insufficient token fails with exit 1 and the server's reason.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

struct NewToken {
  std::string token;
  std::string line;
};

NewToken MakeToken(const std::vector<std::string>& flags) {
  std::vector<std::string> args = {"token", "new"};
  args.insert(args.end(), flags.begin(), flags.end());
  const CliResult made = RunCli(args);
  EXPECT_EQ(made.exit_code, 0) << made;
  std::smatch match;
  static const std::regex kOutput("token: (bf_[0-9a-f]{64})\nline:  (sha256:[0-9a-f]{64} .*)\n");
  if (!std::regex_match(made.out, match, kOutput)) {
    ADD_FAILURE() << made.out;
    return {};
  }
  return {match[1].str(), match[2].str()};
}

class CliAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = MakeToken({"--role", "admin", "--name", "ops"});
    reader_ = MakeToken({"--role", "read", "--name", "viewer"});
    EXPECT_NE(admin_.token, reader_.token);
    std::ofstream(temp_.path() + "/tokens.txt") << admin_.line << "\n" << reader_.line << "\n";
    ASSERT_GT(
        server_.Start(temp_.path() + "/data", {"--auth-tokens=" + temp_.path() + "/tokens.txt"}),
        0);
  }
  void TearDown() override { server_.Stop(SIGTERM, std::chrono::seconds(30)); }

  CliResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address(), "--timeout", "30"});
    return RunCli(args);
  }

  ProcessTempDir temp_;
  ServerProcess server_;
  NewToken admin_, reader_;
};

TEST_F(CliAuthTest, TheCliSendsItsTokenAndExplainsARefusal) {
  const std::string graph = std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt";
  const CliResult anonymous = Cli({"models", "list"});
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous;
  EXPECT_NE(anonymous.err.find("UNAUTHENTICATED: the server requires a token"), std::string::npos)
      << anonymous.err;
  EXPECT_NE(anonymous.err.find("backflow --token or BACKFLOW_TOKEN"), std::string::npos);

  const CliResult created = Cli({"--token", admin_.token, "models", "create", graph});
  ASSERT_EQ(created.exit_code, 0) << created;
  const CliResult denied = Cli({"models", "create", graph, "--token", reader_.token});
  EXPECT_EQ(denied.exit_code, 1) << denied;
  EXPECT_NE(denied.err.find("PERMISSION_DENIED: token 'viewer' has role read; CreateModel needs "
                            "admin"),
            std::string::npos)
      << denied.err;
  EXPECT_EQ(denied.err.find(reader_.token), std::string::npos);
  const CliResult listed = Cli({"models", "list", "--token", reader_.token});
  EXPECT_EQ(listed.exit_code, 0) << listed;
  EXPECT_NE(listed.out.find("mlp_tanh"), std::string::npos) << listed.out;
  EXPECT_EQ(Cli({"health"}).exit_code, 0);  // probes need no token
}

TEST_F(CliAuthTest, BackflowLoadTakesTheTokenFromItsEnvironment) {
  ASSERT_EQ(setenv("BACKFLOW_TOKEN", admin_.token.c_str(), 1), 0);
  const CommandResult load =
      RunCommand(BACKFLOW_LOAD_BINARY,
                 {"--server", server_.address(), "--model",
                  std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt", "--rpc", "mixed",
                  "--concurrency", "2", "--duration", "1", "--warmup", "0"},
                 std::chrono::seconds(120));
  unsetenv("BACKFLOW_TOKEN");
  EXPECT_EQ(load.exit_code, 0) << load;
  EXPECT_NE(load.out.find("infer"), std::string::npos) << load.out;
  const CliResult refused = RunCli({"token", "new", "--max-models", "-3"});
  EXPECT_EQ(refused.exit_code, 2) << refused;
  EXPECT_NE(refused.err.find("max-models takes a count"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace backflow::testing
