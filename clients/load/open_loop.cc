// The open loop of run.h: requests on a fixed schedule through gRPC's callback API.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "clients/load/run.h"

namespace backflow::load {
namespace {

namespace v1 = backflow::v1;

constexpr uint64_t kDataSalt = 1;
constexpr uint64_t kKindSalt = 2;

// What the dispatcher shares with the completion callbacks (which run on gRPC's threads). It
// is reference-counted so a callback may outlive the dispatcher's wait, should the wait ever
// give up.
struct OpenLoopState {
  std::mutex mu;
  std::condition_variable idle;               // signalled when in_flight drops
  int64_t in_flight = 0;                      // GUARDED_BY(mu)
  StatsByKind stats;                          // GUARDED_BY(mu)
  std::optional<Clock::time_point> last_end;  // GUARDED_BY(mu)
  std::unique_ptr<v1::Backflow::Stub> stub;   // alive while any call may be
};

// Takes an in-flight slot unless --max-in-flight are outstanding.
bool TakeSlot(OpenLoopState& state, int64_t max_in_flight) {
  std::lock_guard lock(state.mu);
  if (state.in_flight >= max_in_flight) return false;
  ++state.in_flight;
  return true;
}

// Starts one call whose latency counts from `intended`; the callback records it.
void Start(const std::shared_ptr<OpenLoopState>& state, const LoadOptions& options,
           const RunPlan& plan, const Requests& requests, RpcKind kind, Clock::time_point intended,
           bool measured) {
  auto* context = new grpc::ClientContext;
  context->set_deadline(internal::DeadlineFor(options, plan, Clock::now()));
  CallAsync(*state->stub, requests, kind, context,
            [state, context, kind, intended, measured](grpc::Status status) {
              const Clock::time_point end = Clock::now();
              delete context;  // gRPC is done with it once the callback runs
              std::lock_guard lock(state->mu);
              if (measured) {
                internal::Record(state->stats, kind, status, end - intended);
                state->last_end = end;
              }
              --state->in_flight;
              state->idle.notify_all();
            });
}

}  // namespace

RunResult RunOpenLoop(const LoadOptions& options, const Workload& workload,
                      const std::shared_ptr<grpc::Channel>& channel) {
  auto state = std::make_shared<OpenLoopState>();
  state->stub = v1::Backflow::NewStub(channel);
  const Requests requests =
      BuildRequests(workload, options, internal::WorkerSeed(options.seed, 0, kDataSalt));
  KindChooser chooser(options.mode, internal::WorkerSeed(options.seed, 0, kKindSalt));
  const RunPlan plan = PlanRun(options, Clock::now());
  const std::chrono::duration<double> period(1.0 / options.rate);
  RunResult result;
  int64_t measured_slots = 0;
  for (int64_t i = 0;; ++i) {
    const Clock::time_point intended =
        plan.start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    const bool measured = intended >= plan.measure_start;
    if (measured && !plan.Admits(intended, measured_slots++)) break;
    std::this_thread::sleep_until(intended);
    if (Clock::now() >= plan.cap) break;
    const RpcKind kind = chooser.Next();
    if (!TakeSlot(*state, options.max_in_flight)) {
      if (measured) ++result.dropped;
      continue;
    }
    Start(state, options, plan, requests, kind, intended, measured);
  }
  // Every call has a deadline at or before the cap, so this wait ends well within its bound.
  std::unique_lock lock(state->mu);
  state->idle.wait_until(lock, plan.cap + std::chrono::seconds(5),
                         [&] { return state->in_flight == 0; });
  result.stats = state->stats;
  result.measured_s = internal::MeasuredSeconds(plan, state->last_end);
  return result;
}

}  // namespace backflow::load
