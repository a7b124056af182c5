// backflow-load's report: an aligned table for people, or one JSON object for scripts.
//
// Per RPC kind and in total: requests (measured and completed), OK, errors by status code,
// rpc_per_s (completed requests, OK or not, per measured second), samples_per_s (OK requests
// x batch per measured second) and the latency percentiles of the OK requests in ms (none
// when no request was OK: "-" in the table, null in JSON). See stats.h for the percentiles.
//
// JSON layout:
//   {"settings": {...}, "duration_s": S, "dropped": N,
//    "total": {"requests": N, "ok": N, "errors": {"CODE": N}, "rpc_per_s": X,
//              "samples_per_s": X, "latency_ms": {"p50", "p90", "p99", "p999", "max"}},
//    "by_rpc": {"infer": {...same...}, "train": ..., "gradients": ..., "evaluate": ...}}
// by_rpc holds the kinds that were sent.
#ifndef BACKFLOW_CLIENTS_LOAD_REPORT_H_
#define BACKFLOW_CLIENTS_LOAD_REPORT_H_

#include <string>

#include "clients/load/options.h"
#include "clients/load/run.h"
#include "clients/load/workload.h"

namespace backflow::load {

std::string FormatTable(const LoadOptions& options, const Workload& workload,
                        const RunResult& result);

std::string FormatJson(const LoadOptions& options, const Workload& workload,
                       const RunResult& result);

}  // namespace backflow::load

#endif  // BACKFLOW_CLIENTS_LOAD_REPORT_H_
