#include "bench/harness/sampler.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace backflow::bench {
namespace {

// The fields after the command name of a /proc stat line ("S ppid pgrp ..."), or "".
std::string FieldsAfterName(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 > line.size() ? "" : line.substr(close + 2);
}

// The process's user + system CPU seconds.
double CpuSeconds(int pid) {
  std::istringstream fields(FieldsAfterName("/proc/" + std::to_string(pid) + "/stat"));
  std::string field;
  double ticks = 0;
  // utime and stime are fields 14 and 15 of stat, i.e. the 12th and 13th after the name.
  for (int i = 1; i <= 13 && fields >> field; ++i)
    if (i >= 12) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Running {
  int all = 0;
  int compute = 0;  // of them, threads named "bf-compute" (the server's oneTBB and OpenMP threads)
};

// Threads of `pid` in state R (running or waiting for a core).
Running RunningThreads(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  Running running;
  if (tasks == nullptr) return running;
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + entry->d_name + "/stat");
    std::string line;
    std::getline(in, line);
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size() ||
        line[close + 2] != 'R') {
      continue;
    }
    ++running.all;
    if (line.compare(open + 1, 10, "bf-compute") == 0) ++running.compute;
  }
  closedir(tasks);
  return running;
}

}  // namespace

ThreadSampler::~ThreadSampler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ThreadSampler::Start() {
  if (pid_ <= 0) return;
  cpu_start_ = CpuSeconds(pid_);
  start_ = Clock::now();
  thread_ = std::thread([this] { Loop(); });
}

void ThreadSampler::Loop() {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  while (!stop_.load()) {
    const Running running = RunningThreads(pid_);
    ++samples_;
    running_sum_ += running.all;
    max_running_ = std::max(max_running_, running.all);
    max_compute_ = std::max(max_compute_, running.compute);
    if (running.all > cores) ++above_cores_;
    if (running.compute > cores) ++compute_above_cores_;
    std::this_thread::sleep_for(period_);
  }
}

Json ThreadSampler::Stop() {
  if (pid_ <= 0) return nullptr;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  const double wall = SecondsSince(start_);
  return {{"samples", samples_},
          {"max_running_threads", max_running_},
          {"mean_running_threads",
           samples_ == 0 ? 0.0 : static_cast<double>(running_sum_) / static_cast<double>(samples_)},
          {"cores", sysconf(_SC_NPROCESSORS_ONLN)},
          {"samples_above_cores", above_cores_},
          {"max_running_compute_threads", max_compute_},
          {"samples_compute_above_cores", compute_above_cores_},
          {"cpu_cores_used", wall > 0 ? (CpuSeconds(pid_) - cpu_start_) / wall : 0.0}};
}

}  // namespace backflow::bench
