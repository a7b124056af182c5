#include "server/inference_stats.h"

namespace backflow::server {
namespace {

uint64_t Nanoseconds(InferenceStats::Clock::duration d) {
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return ns > 0 ? static_cast<uint64_t>(ns) : 0;
}

void Add(InferenceStats::Duration& total, InferenceStats::Clock::duration d) {
  ++total.count;
  total.ns += Nanoseconds(d);
}

}  // namespace

void InferenceStats::RecordSuccess(uint64_t rows, Clock::time_point arrived,
                                   Clock::time_point started, Clock::duration input,
                                   Clock::duration infer, Clock::duration output, bool new_run) {
  const Clock::time_point now = Clock::now();
  const auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  std::lock_guard lock(mu_);
  totals_.last_unix_ms = static_cast<uint64_t>(unix_ms);
  totals_.rows += rows;
  if (new_run) ++totals_.executions;
  Add(totals_.success, now - arrived);
  Add(totals_.queue, started - arrived);
  Add(totals_.compute_input, input);
  Add(totals_.compute_infer, infer);
  Add(totals_.compute_output, output);
}

void InferenceStats::RecordFailure(Clock::time_point arrived) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  Add(totals_.fail, now - arrived);
}

InferenceStats::Totals InferenceStats::Read() const {
  std::lock_guard lock(mu_);
  return totals_;
}

}  // namespace backflow::server
