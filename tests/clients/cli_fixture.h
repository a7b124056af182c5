// Test support for the backflow CLI: run the binary as a child process with its stdout and
// stderr captured and a time bound, against one backflow-server child per test suite
// (tests/process/process_fixture.h starts it on 127.0.0.1 with a free port and a temp data dir).
#ifndef BACKFLOW_TESTS_CLIENTS_CLI_FIXTURE_H_
#define BACKFLOW_TESTS_CLIENTS_CLI_FIXTURE_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/process/process_fixture.h"
#include "tests/process/run_command.h"

namespace backflow::testing {

using CliResult = CommandResult;

// Runs BACKFLOW_BINARY with `args`, collecting both streams until it exits; past `timeout` the
// child is killed (and the test fails).
inline CliResult RunCli(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return RunCommand(BACKFLOW_BINARY, args, timeout);
}

// A port on 127.0.0.1 that nobody listens on (bound, read, closed).
inline int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// One backflow-server for the whole suite (starting one takes a moment); Cli() adds --server.
class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new ProcessTempDir();
    server_ = new ServerProcess();
    server_->Start(data_dir_->path());
  }
  static void TearDownTestSuite() {
    server_->Stop(SIGTERM, std::chrono::seconds(30));
    delete server_;
    delete data_dir_;
  }
  void SetUp() override { ASSERT_GT(server_->address().size(), 10u); }

  static CliResult Cli(std::vector<std::string> args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    args.insert(args.begin(), {"--server", server_->address(), "--timeout", "30"});
    return RunCli(args, timeout);
  }
  // Runs the CLI, expects exit 0 and returns its stdout.
  static std::string CliOk(const std::vector<std::string>& args) {
    CliResult result = Cli(args);
    EXPECT_EQ(result.exit_code, 0) << ::testing::PrintToString(args) << "\n" << result;
    return result.out;
  }
  // The last line of stdout parsed as JSON (is_discarded() if it is not JSON).
  static nlohmann::json LastJsonLine(const std::string& out) {
    std::string text = out;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    const size_t newline = text.rfind('\n');
    return nlohmann::json::parse(newline == std::string::npos ? text : text.substr(newline + 1),
                                 nullptr, /*allow_exceptions=*/false);
  }
  static std::string Source(const std::string& relative) {
    return std::string(BACKFLOW_SOURCE_DIR) + "/" + relative;
  }

  static inline ProcessTempDir* data_dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
};

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_CLIENTS_CLI_FIXTURE_H_
