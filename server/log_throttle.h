// LogThrottle: at most one log line a second for a repeated kind of event, with a count of the
// events not logged since the last line (undecodable requests, refused tokens). LogThrottles:
// one per key (a method and a status code: the request lines of server/call.h).
#ifndef BACKFLOW_SERVER_LOG_THROTTLE_H_
#define BACKFLOW_SERVER_LOG_THROTTLE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

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

class LogThrottles {
 public:
  // LogThrottle::Admit for the key (`name`, `kind`); `name` must outlive this (a literal).
  std::optional<int64_t> Admit(const char* name, int kind) {
    LogThrottle* throttle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::unique_ptr<LogThrottle>& entry = throttles_[{name, kind}];
      if (entry == nullptr) entry = std::make_unique<LogThrottle>();
      throttle = entry.get();
    }
    return throttle->Admit();
  }

 private:
  std::mutex mu_;
  std::map<std::pair<const char*, int>, std::unique_ptr<LogThrottle>> throttles_;  // GUARDED_BY
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_LOG_THROTTLE_H_
