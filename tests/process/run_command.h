// RunCommand: runs a program to completion as a child process, capturing stdout and stderr,
// bounded in time (the child is killed, and the test fails, past the timeout). For tests that
// drive the bundled binaries (the CLI, backflow-load) the way a user's shell would.
#ifndef BACKFLOW_TESTS_PROCESS_RUN_COMMAND_H_
#define BACKFLOW_TESTS_PROCESS_RUN_COMMAND_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

extern char** environ;

namespace backflow::testing {

struct CommandResult {
  int exit_code = -1;  // -1: killed (by the timeout or a signal)
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const CommandResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout:\n" << r.out << "--- stderr:\n" << r.err;
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

// Spawns `binary` with `args`, its stdout and stderr into pipes whose read ends land in fds[0]
// and fds[1]. Returns the pid, or -1 after a test failure.
inline pid_t SpawnWithPipes(const std::string& binary, const std::vector<std::string>& args,
                            int fds[2]) {
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
  std::vector<std::string> strings = {binary};
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
    ADD_FAILURE() << "cannot spawn " << binary << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

inline CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) {
  CommandResult result;
  int fds[2];
  const pid_t pid = SpawnWithPipes(binary, args, fds);
  if (pid < 0) return result;
  std::string* sinks[2] = {&result.out, &result.err};
  if (!DrainPipes(fds, sinks, std::chrono::steady_clock::now() + timeout)) {
    kill(pid, SIGKILL);
    ADD_FAILURE() << binary << " " << ::testing::PrintToString(args) << " took longer than "
                  << timeout.count() << " ms; killed";
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_PROCESS_RUN_COMMAND_H_
