// PlanRun, the shared helpers of run.h, and the closed loop.
#include "clients/load/run.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "clients/common/rpc.h"

namespace backflow::load {
namespace {

namespace v1 = backflow::v1;
using Seconds = std::chrono::duration<double>;

// Slack past the last possible deadline before the cap, for the last answers to arrive.
constexpr Seconds kCapSlack(5);

Clock::duration ToClock(Seconds s) { return std::chrono::duration_cast<Clock::duration>(s); }

}  // namespace

RunPlan PlanRun(const LoadOptions& options, Clock::time_point start) {
  RunPlan plan;
  plan.start = start;
  plan.measure_start = start + ToClock(Seconds(options.warmup_s));
  plan.budget = options.requests;
  const Seconds timeout(options.timeout_s);
  Seconds measured(options.duration_s);
  if (options.requests > 0) {
    const auto n = static_cast<double>(options.requests);
    measured = options.open_loop() ? Seconds(n / options.rate)
                                   : timeout * std::ceil(n / options.concurrency);
  }
  plan.measure_end = plan.measure_start + ToClock(measured);
  plan.cap = plan.measure_end + ToClock(timeout + kCapSlack);
  return plan;
}

namespace internal {

std::chrono::system_clock::time_point DeadlineFor(const LoadOptions& options, const RunPlan& plan,
                                                  Clock::time_point now) {
  const Clock::duration left = std::min(ToClock(Seconds(options.timeout_s)), plan.cap - now);
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

void Record(StatsByKind& stats, RpcKind kind, const grpc::Status& status, Clock::duration latency) {
  RpcStats& kind_stats = stats[std::string(RpcKindName(kind))];
  if (status.ok()) {
    kind_stats.RecordOk(std::chrono::duration<double, std::milli>(latency).count());
  } else {
    kind_stats.RecordError(clients::StatusCodeName(status.error_code()));
  }
}

uint64_t WorkerSeed(uint64_t seed, int index, uint64_t salt) {
  // SplitMix64's finaliser: nearby seeds and indices give unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(index) + 1) + salt;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double MeasuredSeconds(const RunPlan& plan, std::optional<Clock::time_point> last_end) {
  Clock::time_point end = last_end.value_or(plan.measure_start);
  if (plan.budget == 0) end = std::max(end, plan.measure_end);
  return std::max(0.0, Seconds(end - plan.measure_start).count());
}

}  // namespace internal

namespace {

constexpr uint64_t kDataSalt = 1;
constexpr uint64_t kKindSalt = 2;

struct WorkerResult {
  StatsByKind stats;
  std::optional<Clock::time_point> last_end;
};

// One closed-loop worker: blocking calls back to back until the plan says stop.
void ClosedLoopWorker(const LoadOptions& options, const Requests& requests, KindChooser chooser,
                      const RunPlan& plan, v1::Backflow::Stub& stub, std::atomic<int64_t>& tickets,
                      WorkerResult& out) {
  while (true) {
    const Clock::time_point start = Clock::now();
    if (start >= plan.cap) break;
    const bool measured = start >= plan.measure_start;
    if (measured && !plan.Admits(start, plan.budget > 0 ? tickets.fetch_add(1) : 0)) break;
    const RpcKind kind = chooser.Next();
    grpc::ClientContext context;
    context.set_deadline(internal::DeadlineFor(options, plan, start));
    const grpc::Status status = CallSync(stub, requests, kind, &context);
    const Clock::time_point end = Clock::now();
    if (!measured) continue;
    internal::Record(out.stats, kind, status, end - start);
    out.last_end = end;
  }
}

}  // namespace

RunResult RunClosedLoop(const LoadOptions& options, const Workload& workload,
                        const std::shared_ptr<grpc::Channel>& channel) {
  // Everything a worker sends is built before the clock starts.
  const int n = options.concurrency;
  std::vector<Requests> requests;
  std::vector<std::unique_ptr<v1::Backflow::Stub>> stubs;
  for (int i = 0; i < n; ++i) {
    requests.push_back(
        BuildRequests(workload, options, internal::WorkerSeed(options.seed, i, kDataSalt)));
    stubs.push_back(v1::Backflow::NewStub(channel));
  }
  std::vector<WorkerResult> results(static_cast<size_t>(n));
  std::atomic<int64_t> tickets{0};
  const RunPlan plan = PlanRun(options, Clock::now());
  std::vector<std::thread> workers;
  for (int i = 0; i < n; ++i) {
    KindChooser chooser(options.mode, internal::WorkerSeed(options.seed, i, kKindSalt));
    workers.emplace_back(ClosedLoopWorker, std::cref(options), std::cref(requests[i]), chooser,
                         std::cref(plan), std::ref(*stubs[i]), std::ref(tickets),
                         std::ref(results[i]));
  }
  for (std::thread& worker : workers) worker.join();
  RunResult result;
  std::optional<Clock::time_point> last_end;
  for (const WorkerResult& r : results) {
    MergeInto(result.stats, r.stats);
    if (r.last_end && (!last_end || *r.last_end > *last_end)) last_end = r.last_end;
  }
  result.measured_s = internal::MeasuredSeconds(plan, last_end);
  return result;
}

}  // namespace backflow::load
