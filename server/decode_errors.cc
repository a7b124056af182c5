#include "server/decode_errors.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

namespace backflow::server {

void LogUndecodableThrottled(const std::string& message) {
  static std::mutex mu;
  static std::chrono::steady_clock::time_point last;
  static int64_t unlogged = 0;
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  if (last != std::chrono::steady_clock::time_point() && now - last < std::chrono::seconds(1)) {
    ++unlogged;
    return;
  }
  last = now;
  spdlog::warn("{} (and {} more such requests since the last line)", message, unlogged);
  unlogged = 0;
}

}  // namespace backflow::server
