// The clients against a server started with --auth-tokens: `backflow token new` makes a working
// token and line, the CLI and backflow-load send --token (or BACKFLOW_TOKEN), and a missing or
// insufficient token fails with exit 1 and the server's reason. Then the same with TLS and
// mutual TLS on: --tls-ca, --tls-cert and --tls-key (or BACKFLOW_TLS_*), and what a client
// that gets TLS wrong is told.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/clients/cli_fixture.h"
#include "tests/testing/test_certs.h"

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

// A server with TLS (mutual TLS when `mutual`) and an admin token; its CA and a client
// certificate in files.
class CliTlsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    admin_ = MakeToken({"--role", "admin", "--name", "ops"});
    ca_pem_ = Write("ca.pem", ca_.cert_pem());
    const TestCert client = ca_.Issue({.common_name = "client", .client = true});
    client_pem_ = Write("client.pem", client.cert_pem);
    client_key_ = Write("client.key", client.key_pem);
    const TestCert server = ca_.Issue({.common_name = "server", .hosts = {"127.0.0.1"}});
    std::vector<std::string> flags = {"--auth-tokens=" + Write("tokens.txt", admin_.line + "\n"),
                                      "--tls-cert=" + Write("server.pem", server.cert_pem),
                                      "--tls-key=" + Write("server.key", server.key_pem)};
    if (GetParam()) flags.push_back("--tls-client-ca=" + ca_pem_);
    ASSERT_GT(server_.Start(temp_.path() + "/data", flags), 0);
  }
  void TearDown() override { server_.Stop(SIGTERM, std::chrono::seconds(30)); }

  std::string Write(const std::string& name, const std::string& text) {
    WriteFileAtomically(temp_.path() + "/" + name, text);
    return temp_.path() + "/" + name;
  }
  // The TLS flags a client needs for this server.
  std::vector<std::string> TlsFlags() const {
    std::vector<std::string> flags = {"--tls-ca", ca_pem_};
    if (GetParam())
      flags.insert(flags.end(), {"--tls-cert", client_pem_, "--tls-key", client_key_});
    return flags;
  }
  CliResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address(), "--timeout", "30"});
    return RunCli(args);
  }

  ProcessTempDir temp_;
  ServerProcess server_;
  NewToken admin_;
  TestCa ca_{"cli test CA"};
  std::string ca_pem_, client_pem_, client_key_;
};

TEST_P(CliTlsTest, TheCliConnectsWithTheRightFilesOnly) {
  const std::string graph = std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt";
  std::vector<std::string> create = TlsFlags();
  create.insert(create.end(), {"--token", admin_.token, "models", "create", graph});
  const CliResult created = Cli(create);
  ASSERT_EQ(created.exit_code, 0) << created;

  const CliResult plaintext = Cli({"--token", admin_.token, "models", "list"});
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext;
  EXPECT_NE(plaintext.err.find("cannot reach " + server_.address()), std::string::npos)
      << plaintext.err;
  EXPECT_NE(plaintext.err.find("does the server use TLS? pass --tls-ca"), std::string::npos)
      << plaintext.err;

  TestCa stranger("stranger CA");
  const CliResult untrusted = Cli({"--tls-ca", Write("stranger.pem", stranger.cert_pem()),
                                   "--token", admin_.token, "models", "list"});
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted;
  EXPECT_NE(untrusted.err.find("the TLS handshake failed"), std::string::npos) << untrusted.err;
  EXPECT_NE(untrusted.err.find("--tls-ca"), std::string::npos) << untrusted.err;

  const CliResult other_host = RunCli({"--server", "localhost:" + server_.address().substr(10),
                                       "--timeout", "30", "--tls-ca", ca_pem_, "health"});
  EXPECT_EQ(other_host.exit_code, 1) << other_host;
  EXPECT_NE(other_host.err.find("the server's certificate does not name localhost"),
            std::string::npos)
      << other_host.err;

  if (GetParam()) {  // mutual TLS: the CA alone is not enough
    const CliResult anonymous = Cli({"--tls-ca", ca_pem_, "health"});
    EXPECT_EQ(anonymous.exit_code, 1) << anonymous;
  }
  // The environment instead of flags.
  ASSERT_EQ(setenv("BACKFLOW_TLS_CA", ca_pem_.c_str(), 1), 0);
  if (GetParam()) {
    ASSERT_EQ(setenv("BACKFLOW_TLS_CERT", client_pem_.c_str(), 1), 0);
    ASSERT_EQ(setenv("BACKFLOW_TLS_KEY", client_key_.c_str(), 1), 0);
  }
  const CliResult listed = Cli({"--token", admin_.token, "models", "list"});
  unsetenv("BACKFLOW_TLS_CA");
  unsetenv("BACKFLOW_TLS_CERT");
  unsetenv("BACKFLOW_TLS_KEY");
  EXPECT_EQ(listed.exit_code, 0) << listed;
  EXPECT_NE(listed.out.find("mlp_tanh"), std::string::npos) << listed.out;
}

TEST_P(CliTlsTest, BadTlsFlagsAreUsageErrors) {
  const CliResult half = Cli({"--tls-cert", client_pem_, "health"});
  EXPECT_EQ(half.exit_code, 2) << half;
  EXPECT_NE(half.err.find("--tls-cert needs --tls-key"), std::string::npos) << half.err;
  const CliResult missing = Cli({"health", "--tls-ca", temp_.path() + "/nowhere.pem"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  EXPECT_NE(missing.err.find("--tls-ca " + temp_.path() + "/nowhere.pem: cannot read it"),
            std::string::npos)
      << missing.err;
}

TEST_P(CliTlsTest, BackflowLoadRunsOverTlsWithItsToken) {
  std::vector<std::string> args = TlsFlags();
  args.insert(args.end(),
              {"--server", server_.address(), "--token", admin_.token, "--model",
               std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt", "--rpc", "mixed",
               "--concurrency", "2", "--duration", "1", "--warmup", "0", "--json"});
  const CommandResult load = RunCommand(BACKFLOW_LOAD_BINARY, args, std::chrono::seconds(120));
  ASSERT_EQ(load.exit_code, 0) << load;
  const nlohmann::json report = nlohmann::json::parse(load.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << load.out;
  EXPECT_GT(report["total"]["ok"].get<int64_t>(), 0) << load.out;
  EXPECT_TRUE(report["total"]["errors"].empty()) << load.out;
}

INSTANTIATE_TEST_SUITE_P(TlsAndMutualTls, CliTlsTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "MutualTls" : "Tls"; });

}  // namespace
}  // namespace backflow::testing
