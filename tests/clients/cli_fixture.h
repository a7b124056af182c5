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

namespace backflow::testing {

struct CliResult {
  int exit_code = -1;  // -1: killed (timeout or signal)
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout:\n" << r.out << "--- stderr:\n" << r.err;
}

// Spawns BACKFLOW_BINARY with `args`, its stdout and stderr into pipes whose read ends land in
// fds[0] and fds[1]. Returns the pid, or -1 after a test failure.
inline pid_t SpawnCli(const std::vector<std::string>& args, int fds[2]) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return -1;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return -1;
  }
  std::vector<std::string> strings = {BACKFLOW_BINARY};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  fds[0] = out_pipe[0];
  fds[1] = err_pipe[0];
  if (rc != 0) {
    close(fds[0]);
    close(fds[1]);
    ADD_FAILURE() << "cannot spawn " << BACKFLOW_BINARY;
    return -1;
  }
  return pid;
}

// Reads both pipes into `sinks` until both close or `end` passes; closes them. False on timeout.
inline bool DrainPipes(int fds[2], std::string* sinks[2],
                       std::chrono::steady_clock::time_point end) {
  pollfd polled[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
  int open_fds = 2;
  bool in_time = true;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      in_time = false;
      break;
    }
    if (poll(polled, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (polled[i].fd < 0 || polled[i].revents == 0) continue;
      char buffer[8192];
      const ssize_t n = read(polled[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(polled[i].fd);
        polled[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& fd : polled) {
    if (fd.fd >= 0) close(fd.fd);
  }
  return in_time;
}

// Runs BACKFLOW_BINARY with `args`, collecting both streams until it exits; past `timeout` the
// child is killed (and the test fails).
inline CliResult RunCli(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  CliResult result;
  int fds[2];
  const pid_t pid = SpawnCli(args, fds);
  if (pid < 0) return result;
  std::string* sinks[2] = {&result.out, &result.err};
  if (!DrainPipes(fds, sinks, std::chrono::steady_clock::now() + timeout)) {
    kill(pid, SIGKILL);
    ADD_FAILURE() << "backflow " << ::testing::PrintToString(args) << " took longer than "
                  << timeout.count() << " ms; killed";
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
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
