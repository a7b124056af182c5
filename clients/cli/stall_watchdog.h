// StallWatchdog: a bound on a streaming call whose length is unknown (a Train stream, a
// checkpoint download or upload), where a whole-call deadline would not fit.
#ifndef BACKFLOW_CLIENTS_CLI_STALL_WATCHDOG_H_
#define BACKFLOW_CLIENTS_CLI_STALL_WATCHDOG_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace backflow::cli {

// Cancels a call when it makes no progress for `timeout` (no answer on a stream): a bound on a
// stream whose total length is unknown, where a whole-call deadline would not fit.
class StallWatchdog {
 public:
  StallWatchdog(grpc::ClientContext* context, double timeout_seconds)
      : context_(context), timeout_(timeout_seconds) {
    if (timeout_seconds > 0) thread_ = std::thread([this] { Watch(); });
  }
  ~StallWatchdog() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Progress() {
    std::lock_guard lock(mu_);
    last_progress_ = std::chrono::steady_clock::now();
  }
  bool fired() const {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  void Watch() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      const auto due = last_progress_ + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::duration<double>(timeout_));
      if (std::chrono::steady_clock::now() >= due) {
        fired_ = true;
        context_->TryCancel();
        return;
      }
      changed_.wait_until(lock, due);
    }
  }

  grpc::ClientContext* context_;
  const double timeout_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::chrono::steady_clock::time_point last_progress_ = std::chrono::steady_clock::now();
  bool stopped_ = false;  // GUARDED_BY(mu_)
  bool fired_ = false;    // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_STALL_WATCHDOG_H_
