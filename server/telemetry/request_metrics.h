// RequestMetrics: the server's Prometheus series that requests feed (Note [Metrics] in
// server/telemetry/exposition.h): counts and durations by method and status code, queue and
// compute time, bytes in and out by method, and refusals by reason. One per server. Thread-safe:
// each call finds its series under a short lock, then updates them with prometheus-cpp's own.
#ifndef BACKFLOW_SERVER_TELEMETRY_REQUEST_METRICS_H_
#define BACKFLOW_SERVER_TELEMETRY_REQUEST_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"

namespace backflow::server {

// Why a request was turned away before it reached a model: a limit (--max-pending-requests,
// --max-streams, a token's max-in-flight), authentication or authorization, or shutdown.
enum class Refusal { kLimit, kAuth, kDraining };

// Buckets of the duration histograms, in seconds: 100 us to 60 s, about three per decade.
const std::vector<double>& DurationBuckets();

class RequestMetrics {
 public:
  RequestMetrics();
  ~RequestMetrics();
  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  // `method` is the RPC's name ("TrainStep", "ModelInfer"); the pointer must stay valid (the
  // servers pass string literals), and a method's series are made on its first use.
  void Done(const char* method, StatusCode code, double seconds);
  // From admission to the start of the work (queued), and the work itself (computed).
  void Queued(const char* method, double seconds);
  void Computed(const char* method, double seconds);
  void Received(const char* method, int64_t bytes);
  void Sent(const char* method, int64_t bytes);
  void Refused(Refusal reason);
  // Requests admitted whose work has not started (backflow_requests_queued): Enqueued when a
  // request is admitted, Dequeued when its work starts or it is answered without any.
  void Enqueued() { waiting_.fetch_add(1, std::memory_order_relaxed); }
  void Dequeued() { waiting_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t queued() const { return waiting_.load(std::memory_order_relaxed); }

  const prometheus::Registry& registry() const { return *registry_; }

 private:
  struct PerMethod;
  PerMethod& EntryLocked(const char* method);  // mu_ held
  // `method`'s series in `field`, made in `family` (labelled with the method, built with `args`)
  // on first use.
  template <typename Metric, typename... Args>
  Metric& ForMethod(const char* method, Metric* PerMethod::*field,
                    prometheus::Family<Metric>& family, const Args&... args);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& queued_;
  prometheus::Family<prometheus::Histogram>& computed_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  std::array<prometheus::Counter*, 3> refused_;
  std::atomic<int64_t> waiting_{0};

  // Series by method (and code), made on first use. Methods are a fixed set of literals, so the
  // table only grows, to a few dozen entries at most.
  mutable std::mutex mu_;
  std::unordered_map<const char*, std::unique_ptr<PerMethod>> methods_;  // GUARDED_BY(mu_)
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TELEMETRY_REQUEST_METRICS_H_
