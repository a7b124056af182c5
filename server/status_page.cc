#include "server/status_page.h"

#include <prometheus/metric_family.h>

#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "engine/core/tensor.h"
#include "server/model.h"
#include "server/service_env.h"
#include "server/telemetry/process_stats.h"
#include "server/telemetry/request_metrics.h"

#ifndef BACKFLOW_VERSION
#define BACKFLOW_VERSION "unknown"
#endif

namespace backflow::server {

extern const char kStatusPageHtml[];  // status_page.html, embedded by server/CMakeLists.txt

namespace {

using nlohmann::json;

// A method's requests over every code: counts and the duration histogram's buckets summed.
struct MethodTotals {
  double requests = 0;
  double errors = 0;  // any code but OK
  double seconds = 0;
  std::vector<double> upper;       // the buckets' upper bounds, +Inf last
  std::vector<double> cumulative;  // requests at or under each
};

std::string Label(const prometheus::ClientMetric& metric, std::string_view name) {
  for (const prometheus::ClientMetric::Label& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return "";
}

// As Prometheus' histogram_quantile: linear within the bucket that holds the q-th request; the
// largest finite bound when that is the +Inf bucket. NaN without requests.
double Quantile(const MethodTotals& totals, double q) {
  if (totals.requests <= 0 || totals.upper.empty()) return std::nan("");
  const double rank = q * totals.requests;
  double lower = 0;
  double below = 0;
  for (size_t i = 0; i < totals.upper.size(); ++i) {
    if (totals.cumulative[i] >= rank) {
      if (std::isinf(totals.upper[i])) return lower;
      const double in_bucket = totals.cumulative[i] - below;
      if (in_bucket <= 0) return totals.upper[i];
      return lower + (totals.upper[i] - lower) * (rank - below) / in_bucket;
    }
    lower = totals.upper[i];
    below = totals.cumulative[i];
  }
  return lower;
}

json Methods(const ServiceEnv& env) {
  std::map<std::string, MethodTotals> by_method;
  for (const prometheus::MetricFamily& family : env.metrics->registry().Collect()) {
    if (family.name != "backflow_request_duration_seconds") continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      MethodTotals& totals = by_method[Label(metric, "method")];
      const auto& histogram = metric.histogram;
      const double count = static_cast<double>(histogram.sample_count);
      totals.requests += count;
      if (Label(metric, "code") != "OK") totals.errors += count;
      totals.seconds += histogram.sample_sum;
      if (totals.upper.empty()) {
        for (const auto& bucket : histogram.bucket) totals.upper.push_back(bucket.upper_bound);
        totals.cumulative.assign(totals.upper.size(), 0);
      }
      for (size_t i = 0; i < histogram.bucket.size() && i < totals.cumulative.size(); ++i) {
        totals.cumulative[i] += static_cast<double>(histogram.bucket[i].cumulative_count);
      }
    }
  }
  json methods = json::array();
  for (const auto& [method, totals] : by_method) {
    methods.push_back({{"method", method},
                       {"requests", totals.requests},
                       {"errors", totals.errors},
                       {"seconds", totals.seconds},
                       {"p50_seconds", Quantile(totals, 0.5)},
                       {"p99_seconds", Quantile(totals, 0.99)}});
  }
  return methods;
}

// At most kStatusCurvePoints of the history, evenly spaced, the first and the last included:
// [[step, loss], ...].
json Curve(const v1::TrainingHistory& history) {
  json points = json::array();
  const int n = history.points_size();
  const int shown = std::min(n, kStatusCurvePoints);
  for (int k = 0; k < shown; ++k) {
    const int i =
        shown == 1 ? 0 : static_cast<int>(static_cast<int64_t>(k) * (n - 1) / (shown - 1));
    points.push_back({history.points(i).step(), history.points(i).loss()});
  }
  return points;
}

json ModelJson(const Model& model, int64_t now_unix_ms) {
  const v1::ModelInfo info = model.Info(/*with_history=*/true);
  const v1::TrainingStatistics& statistics = info.statistics();
  // Training: a step in the last 30 s.
  const bool training =
      statistics.has_loss() && now_unix_ms - statistics.last_step_unix_ms() < 30'000;
  json model_json = {
      {"id", info.id()},
      {"name", info.name()},
      {"graph", info.graph_name()},
      {"dtype", std::string(DTypeName(model.dtype()))},
      {"state", training ? "training" : "ready"},
      {"loss", info.loss()},
      {"step", info.step()},
      {"checkpoint_step", info.checkpoint_step()},
      {"parameters", info.parameter_count()},
      {"samples", statistics.samples()},
      {"steps_per_second", statistics.steps_per_second()},
      {"samples_per_second", statistics.samples_per_second()},
      {"last_loss", statistics.has_loss() ? json(statistics.last_loss()) : json(nullptr)},
      {"inferred", model.inference_stats().Read().rows},
      {"stride", statistics.history().stride()},
      {"curve", Curve(statistics.history())}};
  return model_json;
}

}  // namespace

std::string StatusJson(const ServiceEnv& env) {
  const int64_t now_unix_ms = NowUnixMs();
  const ProcessStats process = ReadProcessStats();
  json models = json::array();
  for (const std::shared_ptr<Model>& model : env.registry.All()) {
    models.push_back(ModelJson(*model, now_unix_ms));
  }
  json damaged = json::array();
  for (const auto& [id, damage] : env.registry.Damaged()) {
    damaged.push_back({{"id", id}, {"damage", damage.message()}});
  }
  const json status = {{"server",
                        {{"version", BACKFLOW_VERSION},
                         {"now_unix_ms", now_unix_ms},
                         {"uptime_seconds", process.start_time_seconds > 0
                                                ? static_cast<double>(now_unix_ms) / 1000.0 -
                                                      process.start_time_seconds
                                                : 0.0},
                         {"requests_in_flight", env.admission.requests_in_flight()},
                         {"requests_queued", env.metrics->queued()},
                         {"streams_open", env.admission.streams_open()},
                         {"resident_bytes", process.resident_bytes},
                         {"memory_used_bytes", env.memory.used()},
                         {"memory_limit_bytes", env.memory.capacity()}}},
                       {"methods", Methods(env)},
                       {"models", models},
                       {"damaged", damaged}};
  // Ids and names are a client's bytes: anything that is not UTF-8 becomes U+FFFD.
  return status.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string StatusPage(const ServiceEnv& env) {
  // Inside <script>, "</script>" or "<!--" in a name would end or change the script: every '<'
  // is written as the JSON escape \u003c (it can only occur inside a string).
  std::string data;
  for (const char c : StatusJson(env)) {
    if (c == '<') {
      data += "\\u003c";
    } else {
      data += c;
    }
  }
  std::string page = kStatusPageHtml;
  constexpr std::string_view kSlot = "/*STATUS_JSON*/null";
  const size_t at = page.find(kSlot);
  if (at != std::string::npos) page.replace(at, kSlot.size(), data);
  return page;
}

}  // namespace backflow::server
