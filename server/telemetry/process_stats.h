// ProcessStats: this process's resident and virtual memory, CPU time, start time, threads and
// open files, read from /proc/self, as Prometheus' standard process_* metrics report them.
#ifndef BACKFLOW_SERVER_TELEMETRY_PROCESS_STATS_H_
#define BACKFLOW_SERVER_TELEMETRY_PROCESS_STATS_H_

#include <cstdint>

namespace backflow::server {

struct ProcessStats {
  int64_t resident_bytes = 0;
  int64_t virtual_bytes = 0;
  double cpu_seconds = 0;         // user and system
  double start_time_seconds = 0;  // since 1970
  int64_t threads = 0;
  int64_t open_fds = 0;
};

// Zeros for what cannot be read (no /proc).
ProcessStats ReadProcessStats();

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TELEMETRY_PROCESS_STATS_H_
