// The two ways backflow-load drives the server.
//
// Closed loop (--concurrency N): N threads, each with its own requests and stub, issue one
// blocking RPC at a time. Throughput is what the server sustains at that concurrency.
//
// Open loop (--rate R): one dispatcher starts request i at start + i/R with gRPC's callback
// API, whatever the server's speed. A request's latency runs from its intended start, so time
// spent waiting behind a slow server (or a late dispatcher) counts: no coordinated omission.
// At most --max-in-flight requests are outstanding; a slot beyond that is dropped (counted,
// not sent).
//
// Both start with --warmup seconds of requests that are sent but not counted, then measure for
// --duration seconds or --requests requests. Every RPC has the --timeout deadline, clipped to
// an absolute cap, so a run always ends: duration runs at warmup + duration + timeout + 5 s;
// --requests N runs at warmup + (N / concurrency + 1) x timeout + 5 s (closed loop) or
// warmup + N / rate + timeout + 5 s (open loop).
#ifndef BACKFLOW_CLIENTS_LOAD_RUN_H_
#define BACKFLOW_CLIENTS_LOAD_RUN_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "clients/load/options.h"
#include "clients/load/stats.h"
#include "clients/load/workload.h"

namespace backflow::load {

using Clock = std::chrono::steady_clock;

// The timeline of a run.
struct RunPlan {
  Clock::time_point start;          // the first (warmup) request
  Clock::time_point measure_start;  // start + warmup: requests from here on are counted
  Clock::time_point measure_end;    // measure_start + duration (duration runs only)
  Clock::time_point cap;            // no RPC outlives this
  int64_t budget = 0;  // > 0: measured requests (open loop: slots) instead of a duration

  // Whether the measured phase has room for the request `slot` (0-based) starting at `t`.
  bool Admits(Clock::time_point t, int64_t slot) const {
    return budget > 0 ? slot < budget : t < measure_end;
  }
};

RunPlan PlanRun(const LoadOptions& options, Clock::time_point start);

struct RunResult {
  StatsByKind stats;      // measured requests only, by RpcKindName
  int64_t dropped = 0;    // open loop: measured slots not sent (--max-in-flight reached)
  double measured_s = 0;  // from measure_start to the last measured completion (duration
                          // runs: at least to measure_end)
};

RunResult RunClosedLoop(const LoadOptions& options, const Workload& workload,
                        const std::shared_ptr<grpc::Channel>& channel);
RunResult RunOpenLoop(const LoadOptions& options, const Workload& workload,
                      const std::shared_ptr<grpc::Channel>& channel);

// Shared by both loops.
namespace internal {

// The deadline of a call that starts at `now`: --timeout later, but not past the cap.
std::chrono::system_clock::time_point DeadlineFor(const LoadOptions& options, const RunPlan& plan,
                                                  Clock::time_point now);
// Counts one measured outcome into `stats`.
void Record(StatsByKind& stats, RpcKind kind, const grpc::Status& status, Clock::duration latency);
// A distinct, reproducible seed for worker `index`'s data or kind choices.
uint64_t WorkerSeed(uint64_t seed, int index, uint64_t salt);
// RunResult.measured_s for a run whose last measured request ended at `last_end` (or none).
double MeasuredSeconds(const RunPlan& plan, std::optional<Clock::time_point> last_end);

}  // namespace internal
}  // namespace backflow::load

#endif  // BACKFLOW_CLIENTS_LOAD_RUN_H_
