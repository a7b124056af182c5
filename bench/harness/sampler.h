// ThreadSampler: how many of a process's threads are running or runnable, sampled from
// /proc/PID/task/*/stat every few milliseconds while a workload runs, and the CPU the process
// used over the same span. bench/run uses it on the server to check that busy threads never
// exceed the cores.
#ifndef BACKFLOW_BENCH_HARNESS_SAMPLER_H_
#define BACKFLOW_BENCH_HARNESS_SAMPLER_H_

#include <atomic>
#include <chrono>
#include <thread>

#include "bench/harness/common.h"

namespace backflow::bench {

class ThreadSampler {
 public:
  // pid <= 0 samples nothing and Stop() returns null.
  ThreadSampler(int pid, std::chrono::microseconds period) : pid_(pid), period_(period) {}
  ~ThreadSampler();
  void Start();
  // {"samples", "max_running_threads", "mean_running_threads", "cores", "samples_above_cores",
  //  "max_running_compute_threads", "samples_compute_above_cores", "cpu_cores_used"}: compute
  //  threads are those named "bf-compute" (backflow-server's oneTBB workers and the OpenMP
  //  threads they start); cpu_cores_used is the process's CPU seconds over the wall seconds.
  Json Stop();

 private:
  void Loop();

  const int pid_;
  const std::chrono::microseconds period_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t samples_ = 0;
  int64_t running_sum_ = 0;
  int max_running_ = 0;
  int64_t above_cores_ = 0;
  int max_compute_ = 0;
  int64_t compute_above_cores_ = 0;
  double cpu_start_ = 0;
  Clock::time_point start_;
};

}  // namespace backflow::bench

#endif  // BACKFLOW_BENCH_HARNESS_SAMPLER_H_
