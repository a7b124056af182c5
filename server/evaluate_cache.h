// EvaluateCache: the stateless Evaluate RPC's prepared graphs, by their content.
//
// Note [Evaluate cache]
// Each Evaluate call sends its graph. Importing it, appending the backward of its wrt and
// compiling a plan is most of what a call on a small graph costs: the staged circuit's Evaluate
// took 1.8x the health-check floor where TrainStep, on a model whose plan is compiled once,
// takes about 1.1x. Calls that send the same graph and ask the same of it (outputs, target,
// wrt) share what engine/api/evaluate.h's PrepareEvaluation made of the first of them: the key is
// the graph's bytes (serialised deterministically) and those names, compared whole, so only an
// identical request finds an entry; values, seed, dtype and mode are each call's own. The
// entry's Program keeps the plans it compiles (one per batch size and dtype), so a hit imports
// nothing and compiles nothing, and answers bitwise what a miss would: the same graph runs.
//
// Bounded by --evaluate-cache-entries (64; 0: off), least recently used first out; a graph over
// kMaxGraphBytes serialised is never kept, so the keys hold at most entries x 1 MiB. /metrics
// counts hits, misses and entries (backflow_evaluate_cache_*).
//
// Thread safety: every method may be called from any number of threads at once.
#ifndef BACKFLOW_SERVER_EVALUATE_CACHE_H_
#define BACKFLOW_SERVER_EVALUATE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "backflow/v1/service.pb.h"
#include "engine/api/evaluate.h"

namespace backflow::server {

class EvaluateCache {
 public:
  static constexpr size_t kMaxGraphBytes = size_t{1} << 20;

  explicit EvaluateCache(size_t capacity) : capacity_(capacity) {}

  // The key of `request` (Note [Evaluate cache]); none when it cannot be kept (off, or a graph
  // over kMaxGraphBytes).
  std::optional<std::string> KeyOf(const v1::EvaluateRequest& request) const;
  // The entry of `key`, now the most recently used; null when there is none (a miss). Counts it.
  std::shared_ptr<const PreparedEvaluation> Find(const std::string& key);
  // Keeps `prepared` under `key` (an entry already there stays), dropping the least recently
  // used entry when full.
  void Insert(std::string key, std::shared_ptr<const PreparedEvaluation> prepared);

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;  // calls that prepared their graph, kept or not
    int64_t entries = 0;
  };
  Stats stats() const;
  // A call whose graph could not be kept (no key): a miss.
  void CountUncached() { ++misses_; }

 private:
  using Order = std::list<std::string>;  // keys, most recently used first
  struct Entry {
    std::shared_ptr<const PreparedEvaluation> prepared;
    Order::iterator position;
  };

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  Order order_;                                     // GUARDED_BY(mu_)
  std::atomic<int64_t> hits_{0};
  std::atomic<int64_t> misses_{0};
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_EVALUATE_CACHE_H_
