// PlanCache: a bounded LRU map from a plan key (dtype, feed shapes, fetches) to a compiled Plan.
// Thread-safe. Two threads missing on the same key may both compile; the first to finish wins
// and the other's plan is used once and dropped, which keeps compilation outside the lock.
#ifndef BACKFLOW_ENGINE_EXEC_PLAN_CACHE_H_
#define BACKFLOW_ENGINE_EXEC_PLAN_CACHE_H_

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/exec/plan.h"

namespace backflow {

class PlanCache {
 public:
  explicit PlanCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  using Compiler = std::function<StatusOr<std::shared_ptr<const Plan>>()>;
  StatusOr<std::shared_ptr<const Plan>> GetOrCompile(const std::string& key,
                                                     const Compiler& compile);
  Program::CacheStats stats() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Plan>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // GUARDED_BY(mu_); most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // GUARDED_BY(mu_)
  size_t hits_ = 0;  // GUARDED_BY(mu_)
  size_t misses_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_PLAN_CACHE_H_
