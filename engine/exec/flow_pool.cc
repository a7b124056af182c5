#include "engine/exec/flow_pool.h"

namespace backflow {

FlowPool::Checkout& FlowPool::Checkout::operator=(Checkout&& other) noexcept {
  if (this != &other) {
    GiveBack();
    pool_ = other.pool_;
    instance_ = std::move(other.instance_);
  }
  return *this;
}

void FlowPool::Checkout::GiveBack() {
  if (instance_ == nullptr) return;
  instance_->state = nullptr;
  pool_->GiveBack(std::move(instance_));
}

FlowPool::Checkout FlowPool::Take(RunState& state) {
  std::unique_ptr<FlowInstance> instance;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      instance = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (instance == nullptr) instance = build_();
  instance->state = &state;
  return Checkout(this, std::move(instance));
}

void FlowPool::GiveBack(std::unique_ptr<FlowInstance> instance) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(instance));
}

}  // namespace backflow
