#include "clients/cli/interrupt.h"

#include <signal.h>

#include <atomic>

namespace backflow::cli {
namespace {

std::atomic<bool> interrupted{false};  // lock-free: safe to store from a signal handler
struct sigaction previous;

void OnInterrupt(int) {
  interrupted.store(true);
  signal(SIGINT, SIG_DFL);  // async-signal-safe; the next Ctrl-C ends the process
}

}  // namespace

InterruptScope::InterruptScope() {
  static_assert(std::atomic<bool>::is_always_lock_free);
  interrupted.store(false);
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous);
}

InterruptScope::~InterruptScope() { sigaction(SIGINT, &previous, nullptr); }

bool Interrupted() { return interrupted.load(); }

}  // namespace backflow::cli
