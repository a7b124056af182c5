// backflow-server: serves backflow.v1 until SIGTERM or SIGINT, then drains and exits 0.
//
// Signals are blocked in every thread (the mask is set before any thread starts) and taken by
// sigwait in main, so shutdown runs as ordinary code, not in a signal handler. A second signal
// during the drain exits at once (status 130).
//
// libgomp reads GOMP_SPINCOUNT once, when it loads, and its default lets idle OpenMP threads
// spin for a while after every oneDNN primitive: with the TBB threads that run the flow graph
// that oversubscribes the cores (measured on 2 cores: LeNet-5 train step, batch 64, 34 ms
// instead of 7.5 ms over the wire). So unless the caller chose a value, main sets
// GOMP_SPINCOUNT=0 and re-executes itself before anything else runs.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "clients/common/flags.h"
#include "engine/core/memory_budget.h"
#include "server/config.h"
#include "server/data_parallel/collective.h"
#include "server/data_parallel/replica.h"
#include "server/log_format.h"
#include "server/server.h"

// The flags, and the TLS files they name: a file that cannot serve is a mistake on the command
// line like a bad flag (exit 2, naming the flag), not a failure to start.
backflow::StatusOr<backflow::server::ServerConfig> ParseAndCheck(int argc, char** argv,
                                                                 bool* help) {
  BF_ASSIGN_OR_RETURN(
      backflow::server::ServerConfig config,
      backflow::server::ParseFlags(std::vector<std::string>(argv + 1, argv + argc), help));
  if (!*help) BF_RETURN_IF_ERROR(backflow::server::auth::CheckTlsFiles(config.tls).status());
  return config;
}

// Runs this binary again with GOMP_SPINCOUNT=0 (see the top of this file), by its own path: as
// /proc/self/exe, ps, top and pgrep would name the process "exe". Returns only on failure (a
// binary replaced since it started: then through /proc/self/exe, else carry on spinning).
void ExecWithoutSpinning(char** argv) {
  setenv("GOMP_SPINCOUNT", "0", 1);
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
    execv(path, argv);
  }
  execv("/proc/self/exe", argv);
}

// stderr, at --log-level, as text or JSON lines (--log-format). A line that cannot be written is
// dropped quietly (see SIGPIPE in main).
void ConfigureLogging(const backflow::server::ServerConfig& config) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("backflow"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  if (config.log_format == "json") {
    spdlog::default_logger()->set_formatter(backflow::server::JsonLogFormatter());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  }
  spdlog::set_error_handler([](const std::string&) {});
}

// Where libbackflow_mpi.so is: beside this binary (the build tree), else in ../lib/backflow
// (an installed tree).
std::string MpiModuleDir() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return ".";
  path[n] = '\0';
  std::string dir(path);
  dir = dir.substr(0, dir.rfind('/'));
  if (access((dir + "/libbackflow_mpi.so").c_str(), R_OK) == 0) return dir;
  return dir + "/../lib/backflow";
}

// Ranks 1..N-1 of a data-parallel job: follow rank 0 until it stops the job. mpirun passes a
// Ctrl-C or SIGTERM to every rank at once, while rank 0 still needs them to finish its last
// steps, so the first signal is left to rank 0 (which stops the job once it has drained) and a
// second exits at once.
int Follow(backflow::server::DataParallel& job, const backflow::server::ServerConfig& config,
           sigset_t signals) {
  std::thread watchdog([signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    sigwait(&signals, &signal);
    _exit(130);
  });
  watchdog.detach();
  return job.Follow(config);  // then MPI_Finalize, with rank 0's, as `job` is destroyed
}

// Starts the server (with --data-parallel, this process's rank of the job: ranks other than 0
// follow rank 0 instead), serves until SIGTERM or SIGINT, drains; the exit status.
int Serve(const backflow::server::ServerConfig& config, sigset_t signals) {
  std::unique_ptr<backflow::server::DataParallel> data_parallel;
  if (config.data_parallel) {
    backflow::StatusOr<std::unique_ptr<backflow::server::Collective>> mpi =
        backflow::server::LoadMpi(MpiModuleDir());
    if (!mpi.ok()) {
      spdlog::error("cannot start: {}", mpi.status().ToString());
      return 1;
    }
    data_parallel = std::make_unique<backflow::server::DataParallel>(std::move(*mpi), config);
    if (data_parallel->rank() != 0) return Follow(*data_parallel, config, signals);
    spdlog::info(
        "data-parallel rank 0 of {} (pid {}): serving; every step is split across the "
        "ranks",
        data_parallel->ranks(), getpid());
  }
  auto server = backflow::server::Server::Start(config, data_parallel.get());
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("{} received: shutting down (again to exit at once)", strsignal(signal));
  // mpirun sends SIGTERM a second after a rank dies: a step waiting for that rank gives up in
  // time to answer its client (Note [Dead ranks] in server/data_parallel/collective.h).
  if (data_parallel != nullptr) data_parallel->Interrupt();
  std::thread watchdog([signals] {
    int again = 0;
    sigwait(&signals, &again);
    spdlog::warn("{} received again: exiting without draining", strsignal(again));
    spdlog::shutdown();
    _exit(130);
  });
  watchdog.detach();
  backflow::Status stopped = (*server)->Shutdown();
  if (data_parallel != nullptr) data_parallel->Stop();  // after the last step and checkpoint
  if (!stopped.ok()) {
    spdlog::error("shutdown: {}", stopped.ToString());
    return 1;
  }
  spdlog::info("bye");
  return 0;
}

int main(int argc, char** argv) {
  using backflow::server::ServerConfig;
  if (std::getenv("GOMP_SPINCOUNT") == nullptr) ExecWithoutSpinning(argv);
  // A log that cannot be written never costs state: with `backflow-server | tee log`, Ctrl-C
  // ends tee as well, and the first shutdown line would otherwise kill the server by SIGPIPE
  // before it checkpoints. Writes to a closed pipe now just fail, and spdlog's error handler
  // drops them quietly, so the drain goes on. Likewise past a file-size limit (ulimit -f) a
  // checkpoint write fails with EFBIG, reported to the client, instead of SIGXFSZ killing us.
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
  backflow::ConfigureMalloc();  // Note in engine/core/memory_budget.h
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  bool help = false;
  backflow::StatusOr<ServerConfig> config = ParseAndCheck(argc, argv, &help);
  if (!config.ok()) {
    return backflow::clients::PrintUsageError("backflow-server", config.status().message());
  }
  if (help) {
    std::fputs(backflow::server::Usage().c_str(), stdout);
    return 0;
  }
  ConfigureLogging(*config);
  spdlog::info("backflow-server starting, pid {}", getpid());
  for (const std::string& line : backflow::server::Describe(*config)) spdlog::info("  {}", line);

  return Serve(*config, signals);
}
