// The Prometheus exposition of a server: what GET /metrics on --metrics-listen answers.
//
// Note [Metrics]
// ~~~~~~~~~~~~~~
// Two kinds of series, merged in one text exposition (format 0.0.4, which every Prometheus
// reads):
//  - what requests feed as they finish (server/telemetry/request_metrics.h): counts and duration
//    histograms by method and gRPC code, queue and compute time by method, bytes in and out,
//    refusals by reason. prometheus-cpp (Debian's prometheus-cpp-dev, the library Triton uses)
//    keeps them.
//  - what is read from the server's state at scrape time: models, requests in flight and
//    queued, open streams, the memory budget, the plan and buffer caches, the process, and per
//    model its step, last loss, steps and samples trained, samples inferred and step-time
//    histogram. Read, not pushed, so a deleted model's series end with it and nothing per
//    model is kept apart from the model.
// Histograms, not summaries: buckets add up across replicas, so histogram_quantile over a fleet
// is exact to the bucket. Labels are bounded: `method` (a few dozen RPC names) and `code` on
// request series, `model` (at most --max-models) only on the per-model series, never both on
// one series.
#ifndef BACKFLOW_SERVER_METRICS_TEXT_H_
#define BACKFLOW_SERVER_METRICS_TEXT_H_

#include <string>

namespace backflow::server {

struct ServiceEnv;

// The exposition for `env`; env.metrics must be set.
std::string MetricsText(const ServiceEnv& env);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_METRICS_TEXT_H_
