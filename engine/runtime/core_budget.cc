#include "engine/runtime/core_budget.h"

#include <algorithm>
#include <tbb/info.h>

namespace backflow {

CoreBudget& CoreBudget::Global() {
  static CoreBudget* const budget = new CoreBudget(tbb::info::default_concurrency());
  return *budget;
}

CoreBudget::CoreBudget(int cores) : total_(std::max(1, cores)) {}

CoreBudget::Lease CoreBudget::Acquire(int cores) {
  cores = std::clamp(cores, 1, total_);
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = next_ticket_++;
  cv_.wait(lock, [&] { return serving_ == ticket && in_use_ + cores <= total_; });
  ++serving_;
  in_use_ += cores;
  peak_ = std::max(peak_, in_use_);
  lock.unlock();
  cv_.notify_all();  // the next ticket may fit too
  return Lease(this, cores);
}

void CoreBudget::Release(int cores) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= cores;
  }
  cv_.notify_all();
}

CoreBudget::Lease::~Lease() {
  if (budget_ != nullptr) budget_->Release(cores_);
}

int CoreBudget::peak_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

}  // namespace backflow
