#include "clients/load/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace backflow::load {
namespace {

// ordered_json keeps the keys in the order written: settings first, as in the table.
using json = nlohmann::ordered_json;

// The kinds in report order, with the stats of those that were sent.
std::vector<std::pair<std::string, const RpcStats*>> Rows(const RunResult& result) {
  std::vector<std::pair<std::string, const RpcStats*>> rows;
  for (RpcKind kind : {RpcKind::kInfer, RpcKind::kTrain, RpcKind::kGradients, RpcKind::kEvaluate}) {
    const std::string name(RpcKindName(kind));
    if (auto it = result.stats.find(name); it != result.stats.end()) {
      rows.emplace_back(name, &it->second);
    }
  }
  return rows;
}

double PerSecond(double count, double seconds) { return seconds > 0 ? count / seconds : 0; }

json Settings(const LoadOptions& o, const Workload& w) {
  json s = {{"server", o.server},       {"model", o.model_path},
            {"model_id", w.model_id},   {"rpc", o.mode_name},
            {"batch", o.batch},         {"warmup_s", o.warmup_s},
            {"timeout_s", o.timeout_s}, {"seed", o.seed},
            {"classes", o.classes},     {"loop", o.open_loop() ? "open" : "closed"}};
  if (o.open_loop()) {
    s["rate"] = o.rate;
    s["max_in_flight"] = o.max_in_flight;
  } else {
    s["concurrency"] = o.concurrency;
  }
  if (o.requests > 0) {
    s["requests"] = o.requests;
  } else {
    s["duration_s"] = o.duration_s;
  }
  if (w.created_model) s["optimizer"] = o.optimizer;
  if (w.created_model && o.lr) s["lr"] = *o.lr;
  return s;
}

json StatsJson(const RpcStats& stats, int64_t batch, double seconds) {
  json j = {{"requests", stats.requests()},
            {"ok", stats.ok()},
            {"errors", stats.errors()},
            {"rpc_per_s", PerSecond(static_cast<double>(stats.requests()), seconds)},
            {"samples_per_s", PerSecond(static_cast<double>(stats.ok() * batch), seconds)}};
  if (auto summary = Summarize(stats.latencies_ms())) {
    j["latency_ms"] = {{"p50", summary->p50},
                       {"p90", summary->p90},
                       {"p99", summary->p99},
                       {"p999", summary->p999},
                       {"max", summary->max}};
  } else {
    j["latency_ms"] = {
        {"p50", nullptr}, {"p90", nullptr}, {"p99", nullptr}, {"p999", nullptr}, {"max", nullptr}};
  }
  return j;
}

std::string SettingsLine(const LoadOptions& o, const Workload& w) {
  std::string line = "server " + o.server + "  model " + o.model_path;
  if (!w.model_id.empty()) line += " (id " + w.model_id + ")";
  line += "  rpc " + o.mode_name + "  batch " + std::to_string(o.batch);
  char buffer[160];
  if (o.open_loop()) {
    std::snprintf(buffer, sizeof buffer, "  open loop: rate %g/s, max in flight %lld", o.rate,
                  static_cast<long long>(o.max_in_flight));
  } else {
    std::snprintf(buffer, sizeof buffer, "  closed loop: concurrency %d", o.concurrency);
  }
  line += buffer;
  if (o.requests > 0) {
    std::snprintf(buffer, sizeof buffer, "  requests %lld", static_cast<long long>(o.requests));
  } else {
    std::snprintf(buffer, sizeof buffer, "  duration %g s", o.duration_s);
  }
  line += buffer;
  std::snprintf(buffer, sizeof buffer, "  warmup %g s  timeout %g s  seed %llu", o.warmup_s,
                o.timeout_s, static_cast<unsigned long long>(o.seed));
  return line + buffer;
}

std::string ErrorsCell(const RpcStats& stats) {
  if (stats.errors().empty()) return "-";
  std::string cell;
  for (const auto& [code, count] : stats.errors()) {
    if (!cell.empty()) cell += ", ";
    cell += code + " " + std::to_string(count);
  }
  return cell;
}

std::string TableRow(const std::string& name, const RpcStats& stats, int64_t batch,
                     double seconds) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "%-10s %9lld %9lld %10.1f %11.1f", name.c_str(),
                static_cast<long long>(stats.requests()), static_cast<long long>(stats.ok()),
                PerSecond(static_cast<double>(stats.requests()), seconds),
                PerSecond(static_cast<double>(stats.ok() * batch), seconds));
  std::string row = buffer;
  if (auto s = Summarize(stats.latencies_ms())) {
    std::snprintf(buffer, sizeof buffer, " %9.2f %9.2f %9.2f %9.2f %9.2f", s->p50, s->p90, s->p99,
                  s->p999, s->max);
  } else {
    std::snprintf(buffer, sizeof buffer, " %9s %9s %9s %9s %9s", "-", "-", "-", "-", "-");
  }
  return row + buffer + "  " + ErrorsCell(stats) + "\n";
}

}  // namespace

std::string FormatTable(const LoadOptions& options, const Workload& workload,
                        const RunResult& result) {
  std::string text = SettingsLine(options, workload) + "\n";
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "measured %.2f s", result.measured_s);
  text += buffer;
  if (options.open_loop()) text += ", dropped " + std::to_string(result.dropped);
  text += "\n\n";
  std::snprintf(buffer, sizeof buffer, "%-10s %9s %9s %10s %11s %9s %9s %9s %9s %9s  %s\n", "rpc",
                "requests", "ok", "rpc/s", "samples/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
                "max ms", "errors");
  text += buffer;
  for (const auto& [name, stats] : Rows(result)) {
    text += TableRow(name, *stats, options.batch, result.measured_s);
  }
  text += TableRow("total", Total(result.stats), options.batch, result.measured_s);
  return text;
}

std::string FormatJson(const LoadOptions& options, const Workload& workload,
                       const RunResult& result) {
  json by_rpc = json::object();
  for (const auto& [name, stats] : Rows(result)) {
    by_rpc[name] = StatsJson(*stats, options.batch, result.measured_s);
  }
  json report = {{"settings", Settings(options, workload)},
                 {"duration_s", result.measured_s},
                 {"total", StatsJson(Total(result.stats), options.batch, result.measured_s)},
                 {"by_rpc", by_rpc},
                 {"dropped", result.dropped}};
  return report.dump(2) + "\n";
}

}  // namespace backflow::load
