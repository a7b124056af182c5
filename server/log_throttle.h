// LogThrottle: at most one log line a second for a repeated kind of event, with a count of the
// events not logged since the last line (undecodable requests, refused tokens).
#ifndef BACKFLOW_SERVER_LOG_THROTTLE_H_
#define BACKFLOW_SERVER_LOG_THROTTLE_H_

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace backflow::server {

class LogThrottle {
 public:
  // The number of events not logged since the last line when this one should be logged, else
  // nullopt (and it is counted). Thread-safe.
  std::optional<int64_t> Admit() {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < std::chrono::seconds(1)) {
      ++unlogged_;
      return std::nullopt;
    }
    logged_once_ = true;
    last_ = now;
    const int64_t skipped = unlogged_;
    unlogged_ = 0;
    return skipped;
  }

 private:
  std::mutex mu_;
  bool logged_once_ = false;                   // guarded by mu_
  std::chrono::steady_clock::time_point last_;  // guarded by mu_
  int64_t unlogged_ = 0;                        // guarded by mu_
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_LOG_THROTTLE_H_
