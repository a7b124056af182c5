#include "clients/load/stats.h"

#include <algorithm>
#include <cmath>

namespace backflow::load {

double Percentile(const std::vector<double>& sorted, double q) {
  const auto n = static_cast<double>(sorted.size());
  // Nearest rank, 1-based. The small slack keeps q/100 * n from rounding up past an integer
  // (99.9 / 100 * 1000 is 999.0000000000001 in binary floating point).
  const double rank = std::ceil(q / 100.0 * n - 1e-9);
  const auto index = static_cast<size_t>(std::clamp(rank, 1.0, n)) - 1;
  return sorted[index];
}

std::optional<LatencySummary> Summarize(std::vector<double> samples) {
  if (samples.empty()) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  return LatencySummary{.p50 = Percentile(samples, 50),
                        .p90 = Percentile(samples, 90),
                        .p99 = Percentile(samples, 99),
                        .p999 = Percentile(samples, 99.9),
                        .max = samples.back()};
}

void RpcStats::RecordOk(double latency_ms) { latencies_ms_.push_back(latency_ms); }

void RpcStats::RecordError(std::string_view code) { ++errors_[std::string(code)]; }

void RpcStats::Merge(const RpcStats& other) {
  latencies_ms_.insert(latencies_ms_.end(), other.latencies_ms_.begin(), other.latencies_ms_.end());
  for (const auto& [code, count] : other.errors_) errors_[code] += count;
}

int64_t RpcStats::error_count() const {
  int64_t count = 0;
  for (const auto& [code, n] : errors_) count += n;
  return count;
}

void MergeInto(StatsByKind& into, const StatsByKind& from) {
  for (const auto& [kind, stats] : from) into[kind].Merge(stats);
}

RpcStats Total(const StatsByKind& by_kind) {
  RpcStats total;
  for (const auto& [kind, stats] : by_kind) total.Merge(stats);
  return total;
}

}  // namespace backflow::load
