#include "server/telemetry/request_metrics.h"

namespace backflow::server {
namespace {

constexpr int kCodes = 17;  // gRPC's status codes, OK (0) to UNAUTHENTICATED (16)

}  // namespace

const std::vector<double>& DurationBuckets() {
  static const std::vector<double> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                               1,      2.5,     5,      10,    30,     60};
  return kBuckets;
}

struct RequestMetrics::PerMethod {
  std::array<prometheus::Counter*, kCodes> requests{};
  std::array<prometheus::Histogram*, kCodes> duration{};
  prometheus::Histogram* queued = nullptr;
  prometheus::Histogram* computed = nullptr;
  prometheus::Counter* received = nullptr;
  prometheus::Counter* sent = nullptr;
};

RequestMetrics::RequestMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("backflow_requests_total")
                    .Help("Requests answered, by method and gRPC status code")
                    .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("backflow_request_duration_seconds")
                    .Help("From a request's arrival to its answer, by method and code")
                    .Register(*registry_)),
      queued_(prometheus::BuildHistogram()
                  .Name("backflow_request_queue_seconds")
                  .Help("From a request's admission to the start of its work, by method")
                  .Register(*registry_)),
      computed_(prometheus::BuildHistogram()
                    .Name("backflow_request_compute_seconds")
                    .Help("The work of a request (decode, run, encode), by method")
                    .Register(*registry_)),
      received_(prometheus::BuildCounter()
                    .Name("backflow_received_bytes_total")
                    .Help("Request message bytes received (encoded, uncompressed), by method")
                    .Register(*registry_)),
      sent_(prometheus::BuildCounter()
                .Name("backflow_sent_bytes_total")
                .Help("Response message bytes sent (encoded, uncompressed), by method")
                .Register(*registry_)) {
  auto& refused = prometheus::BuildCounter()
                      .Name("backflow_rejected_requests_total")
                      .Help(
                          "Requests turned away before any work, by reason: limit "
                          "(--max-pending-requests, --max-streams, a token's max-in-flight), "
                          "auth (no or a wrong token, or a role too low), draining (shutdown)")
                      .Register(*registry_);
  refused_ = {&refused.Add({{"reason", "limit"}}), &refused.Add({{"reason", "auth"}}),
              &refused.Add({{"reason", "draining"}})};
}

RequestMetrics::~RequestMetrics() = default;

RequestMetrics::PerMethod& RequestMetrics::EntryLocked(const char* method) {
  std::unique_ptr<PerMethod>& entry = methods_[method];
  if (entry == nullptr) entry = std::make_unique<PerMethod>();
  return *entry;
}

template <typename Metric, typename... Args>
Metric& RequestMetrics::ForMethod(const char* method, Metric* PerMethod::*field,
                                  prometheus::Family<Metric>& family, const Args&... args) {
  std::lock_guard<std::mutex> lock(mu_);
  Metric*& series = EntryLocked(method).*field;
  if (series == nullptr) series = &family.Add({{"method", method}}, args...);
  return *series;
}

void RequestMetrics::Done(const char* method, StatusCode code, double seconds) {
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodes) c = static_cast<int>(StatusCode::kUnknown);
  prometheus::Counter* requests;
  prometheus::Histogram* duration;
  {
    std::lock_guard<std::mutex> lock(mu_);
    PerMethod& series = EntryLocked(method);
    if (series.requests[c] == nullptr) {  // labels are built only for a new series
      const prometheus::Labels labels = {
          {"method", method}, {"code", std::string(StatusCodeName(static_cast<StatusCode>(c)))}};
      series.requests[c] = &requests_.Add(labels);
      series.duration[c] = &duration_.Add(labels, DurationBuckets());
    }
    requests = series.requests[c];
    duration = series.duration[c];
  }
  requests->Increment();
  duration->Observe(seconds);
}

void RequestMetrics::Queued(const char* method, double seconds) {
  ForMethod(method, &PerMethod::queued, queued_, DurationBuckets()).Observe(seconds);
}

void RequestMetrics::Computed(const char* method, double seconds) {
  ForMethod(method, &PerMethod::computed, computed_, DurationBuckets()).Observe(seconds);
}

void RequestMetrics::Received(const char* method, int64_t bytes) {
  ForMethod(method, &PerMethod::received, received_).Increment(static_cast<double>(bytes));
}

void RequestMetrics::Sent(const char* method, int64_t bytes) {
  ForMethod(method, &PerMethod::sent, sent_).Increment(static_cast<double>(bytes));
}

void RequestMetrics::Refused(Refusal reason) { refused_[static_cast<size_t>(reason)]->Increment(); }

}  // namespace backflow::server
