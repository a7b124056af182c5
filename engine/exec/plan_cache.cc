#include "engine/exec/plan_cache.h"

namespace backflow {

StatusOr<std::shared_ptr<const Plan>> PlanCache::GetOrCompile(const std::string& key,
                                                              const Compiler& compile) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    ++misses_;
  }
  BF_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, compile());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(key, plan);
  index_[key] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return plan;
}

Program::CacheStats PlanCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {lru_.size(), hits_, misses_};
}

}  // namespace backflow
