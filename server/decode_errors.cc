#include "server/decode_errors.h"

#include <spdlog/spdlog.h>

#include "server/log_throttle.h"

namespace backflow::server {

void LogUndecodableThrottled(const std::string& message) {
  static LogThrottle throttle;
  if (std::optional<int64_t> skipped = throttle.Admit()) {
    spdlog::warn("{} (and {} more such requests since the last line)", message, *skipped);
  }
}

}  // namespace backflow::server
