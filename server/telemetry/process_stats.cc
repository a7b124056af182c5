#include "server/telemetry/process_stats.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace backflow::server {
namespace {

// Seconds since 1970 at which the machine booted ("btime" of /proc/stat); 0 if unknown.
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double seconds = 0;
      in >> seconds;
      return seconds;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats stats;
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  {
    std::ifstream statm("/proc/self/statm");
    double size = 0, resident = 0;
    if (statm >> size >> resident) {
      stats.virtual_bytes = static_cast<int64_t>(size * page);
      stats.resident_bytes = static_cast<int64_t>(resident * page);
    }
  }
  {
    // Fields after the command, which is in parentheses and may hold spaces: state is field 3.
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(line.substr(close + 2));
      std::string field;
      double utime = 0, stime = 0, threads = 0, start = 0;
      for (int i = 3; fields >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
        if (i == 20) threads = std::stod(field);
        if (i == 22) {
          start = std::stod(field);
          break;
        }
      }
      stats.cpu_seconds = (utime + stime) / ticks;
      stats.threads = static_cast<int64_t>(threads);
      const double boot = BootTime();
      if (boot > 0) stats.start_time_seconds = boot + start / ticks;
    }
  }
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++stats.open_fds;
  }
  return stats;
}

}  // namespace backflow::server
