// Test support for backflow-server as a child process: start it on 127.0.0.1 with a free port
// and a given data directory, read the port from its log, watch its log, signal it and collect
// its exit status. Every wait is bounded; the destructor kills whatever is still running.
#ifndef BACKFLOW_TESTS_PROCESS_PROCESS_FIXTURE_H_
#define BACKFLOW_TESTS_PROCESS_PROCESS_FIXTURE_H_

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/process/secure_mode.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace backflow::testing {

// The temp dir of the child-process tests (tests/testing/temp_dir.h), named backflow-proc-*.
class ProcessTempDir : public TempDir {
 public:
  ProcessTempDir() : TempDir("backflow-proc-") {}
};

// One backflow-server child. Not thread-safe, except output(), WaitForOutput() and the
// draining thread, which share the log buffer under a mutex.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    if (pid_ > 0) Stop(SIGKILL, std::chrono::seconds(10));
    if (drainer_.joinable()) drainer_.join();
  }

  // Spawns BACKFLOW_SERVER_BINARY with `args` (no argv[0]); stdout and stderr go to the log
  // buffer. Returns false (with a test failure) if the process cannot be spawned.
  bool Spawn(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return Fail("pipe2");
    std::vector<std::string> argv_strings = launcher_;
    argv_strings.push_back(BACKFLOW_SERVER_BINARY);
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on the copies; the pipe's own ends close at exec.
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      pid_ = -1;
      return Fail("posix_spawn " + argv_strings[0]);
    }
    drainer_ = std::thread([this, fd = fds[0]] { Drain(fd); });
    return true;
  }

  // Spawns the server listening on 127.0.0.1:0 with `data_dir` (and no metrics endpoint, unless
  // `extra_flags` give one) and waits (up to 30 s) for its "listening on 127.0.0.1:PORT" line.
  // Returns the port, or 0 after a test failure.
  int Start(const std::string& data_dir, const std::vector<std::string>& extra_flags = {}) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--data-dir=" + data_dir,
                                     "--log-level=info", "--metrics-listen="};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    if (const SecureSetup* secure = Secure()) {
      args.insert(args.end(), secure->server_flags.begin(), secure->server_flags.end());
    }
    if (!Spawn(args)) return 0;
    static const std::regex kListening(R"(listening on 127\.0\.0\.1:(\d+))");
    std::smatch match;
    std::unique_lock lock(mu_);
    const bool found = changed_.wait_for(lock, std::chrono::seconds(30), [&] {
      return std::regex_search(log_, match, kListening) || eof_;
    });
    if (!found || match.empty()) {
      ADD_FAILURE() << "backflow-server did not report its port; its log:\n" << log_;
      return 0;
    }
    port_ = std::stoi(match[1].str());
    return port_;
  }

  // A command that runs the server, its own arguments first (an absolute path, then options):
  // "setpriv --reuid=65534 ..." to run it as another user, "prlimit --fsize=N" to limit its
  // file sizes. It must exec the server, so that pid() stays the server's.
  void set_launcher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  // Sends `signal` and waits up to `timeout` for the exit; past it, SIGKILL. Returns the wait
  // status (use WIFEXITED/WEXITSTATUS), or nullopt if no process was running.
  std::optional<int> Stop(int signal, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    kill(pid_, signal);
    return WaitForExit(timeout);
  }

  // Waits up to `timeout` for the process to exit by itself; past it, SIGKILL (and a test
  // failure). Returns the wait status.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    const auto end = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return Reaped(status);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "backflow-server (pid " << pid_ << ") did not exit within " << timeout.count()
                  << " ms; killing it";
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    return Reaped(status);
  }

  // Closes the read end of the log pipe once the process writes anything more, as a `| tee`
  // that Ctrl-C ended would: the process's later writes to stdout/stderr fail (EPIPE, and
  // SIGPIPE unless it ignores it). What was read until then stays in output().
  void HangUpLogAfterNextWrite() {
    std::lock_guard lock(mu_);
    hang_up_ = true;
  }

  // Everything the process wrote so far (its log).
  std::string output() const {
    std::lock_guard lock(mu_);
    return log_;
  }
  // Waits up to `timeout` for `text` to appear in the log.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] {
      return log_.find(text) != std::string::npos || eof_;
    }) && log_.find(text) != std::string::npos;
  }

 private:
  bool Fail(const std::string& what) {
    ADD_FAILURE() << what << ": " << std::strerror(errno);
    return false;
  }
  int Reaped(int status) {
    pid_ = -1;
    if (drainer_.joinable()) drainer_.join();  // the pipe is at EOF once the process is gone
    return status;
  }
  void Drain(int fd) {
    char buffer[4096];
    while (true) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mu_);
      if (n <= 0) {
        eof_ = true;
        changed_.notify_all();
        break;
      }
      log_.append(buffer, static_cast<size_t>(n));
      changed_.notify_all();
      if (hang_up_) {
        eof_ = true;
        break;
      }
    }
    close(fd);
  }

  std::vector<std::string> launcher_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::thread drainer_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string log_;   // GUARDED_BY(mu_)
  bool eof_ = false;  // GUARDED_BY(mu_)
  bool hang_up_ = false;  // GUARDED_BY(mu_)
};

// True for an exit status of a normal exit with `code`.
inline bool ExitedWith(std::optional<int> status, int code) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}
inline std::string DescribeStatus(std::optional<int> status) {
  if (!status) return "not running";
  if (WIFEXITED(*status)) return "exit code " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "killed by signal " + std::to_string(WTERMSIG(*status));
  return "wait status " + std::to_string(*status);
}

// A channel to the child (TLS with a token in secure mode) and a context with a deadline, so
// no call can hang.
inline std::shared_ptr<grpc::Channel> ConnectTo(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  const SecureSetup* secure = Secure();
  return grpc::CreateCustomChannel(
      address, secure ? secure->credentials : grpc::InsecureChannelCredentials(), args);
}
inline std::unique_ptr<grpc::ClientContext> Deadline(
    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// Names of the temporary files the data directory's atomic writes use (".NAME.tmp.PID.RAND")
// anywhere under `dir`.
inline std::vector<std::string> TemporaryFiles(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".") && name.find(".tmp.") != std::string::npos) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_PROCESS_PROCESS_FIXTURE_H_
