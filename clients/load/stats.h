// Counting and latency statistics for backflow-load: per RPC kind, how many requests completed,
// how many were OK, the errors by status code, and exact latency percentiles of the OK ones.
//
// Percentiles use the nearest-rank definition: pq is the smallest recorded latency x such that
// at least q% of the samples are <= x, i.e. the sample of 1-based rank ceil(q/100 * n) in sorted
// order. So for the samples 1..1000, p50 = 500, p90 = 900, p99 = 990, p99.9 = 999 and
// max = 1000; every reported value is a latency that was actually observed. Exact percentiles
// keep every sample (8 bytes per OK request), which is fine at the rates one client reaches.
//
// Nothing here is thread-safe: each closed-loop worker keeps its own StatsByKind and the
// results are merged after the workers have joined; the open loop guards one with a mutex.
#ifndef BACKFLOW_CLIENTS_LOAD_STATS_H_
#define BACKFLOW_CLIENTS_LOAD_STATS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backflow::load {

// The nearest-rank q-th percentile (0 < q <= 100) of `sorted` (ascending, non-empty).
double Percentile(const std::vector<double>& sorted, double q);

struct LatencySummary {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
};

// The summary of `samples` (any order); nullopt when there are none.
std::optional<LatencySummary> Summarize(std::vector<double> samples);

// The outcomes of the requests of one RPC kind (or of all kinds).
class RpcStats {
 public:
  void RecordOk(double latency_ms);
  // `code` is a gRPC canonical code name such as "RESOURCE_EXHAUSTED".
  void RecordError(std::string_view code);
  // Adds the other's counts and samples to these.
  void Merge(const RpcStats& other);

  int64_t requests() const { return ok() + error_count(); }
  int64_t ok() const { return static_cast<int64_t>(latencies_ms_.size()); }
  int64_t error_count() const;
  const std::map<std::string, int64_t>& errors() const { return errors_; }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

 private:
  std::vector<double> latencies_ms_;       // one per OK request, in completion order
  std::map<std::string, int64_t> errors_;  // by code name
};

// Stats keyed by RPC kind name ("infer", "train", ...).
using StatsByKind = std::map<std::string, RpcStats>;

void MergeInto(StatsByKind& into, const StatsByKind& from);
// Every kind's stats merged into one.
RpcStats Total(const StatsByKind& by_kind);

}  // namespace backflow::load

#endif  // BACKFLOW_CLIENTS_LOAD_STATS_H_
