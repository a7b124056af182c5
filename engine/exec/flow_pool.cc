#include "engine/exec/flow_pool.h"

#include <list>
#include <unordered_map>
#include <utility>

#include "engine/exec/program.h"

namespace backflow {

// The process-wide account of Note [Idle buffers]: the pools that hold idle buffers, most
// recently given back first. Lock order: the registry's mutex, then a pool's.
class IdleBufferRegistry {
 public:
  static IdleBufferRegistry& Global() {
    static IdleBufferRegistry* registry = new IdleBufferRegistry();  // pools outlive main
    return *registry;
  }

  // `pool` was given `bytes` more idle buffers: it becomes the most recent, and the least
  // recent pools lose theirs while the total is over the capacity.
  void Added(FlowPool* pool, int64_t bytes) {
    if (bytes == 0) return;
    std::vector<Tensor> freed;  // freed after the lock is released
    std::lock_guard<std::mutex> lock(mu_);
    total_ += bytes;
    auto it = where_.find(pool);
    if (it != where_.end()) lru_.erase(it->second);
    lru_.push_front(pool);
    where_[pool] = lru_.begin();
    Shrink(freed);
  }

  void Taken(int64_t bytes) {
    if (bytes == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    total_ -= bytes;
  }

  void Remove(FlowPool* pool) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = where_.find(pool);
    if (it == where_.end()) return;
    total_ -= pool->idle_bytes();
    lru_.erase(it->second);
    where_.erase(it);
  }

  void SetCapacity(int64_t bytes) {
    std::vector<Tensor> freed;
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = bytes;
    Shrink(freed);
  }

  int64_t total() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  void Shrink(std::vector<Tensor>& freed) {  // REQUIRES(mu_)
    while (total_ > capacity_ && !lru_.empty()) {
      FlowPool* victim = lru_.back();
      total_ -= victim->DropIdleBuffers(freed);
      lru_.pop_back();
      where_.erase(victim);
    }
  }

  mutable std::mutex mu_;
  std::list<FlowPool*> lru_;                                             // GUARDED_BY(mu_)
  std::unordered_map<FlowPool*, std::list<FlowPool*>::iterator> where_;  // GUARDED_BY(mu_)
  int64_t total_ = 0;                                                    // GUARDED_BY(mu_)
  int64_t capacity_ = int64_t{1} << 30;                                  // GUARDED_BY(mu_)
};

FlowPool::~FlowPool() { IdleBufferRegistry::Global().Remove(this); }

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
  int64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      instance = std::move(free_.back());
      free_.pop_back();
      bytes = std::exchange(instance->idle_bytes, 0);
      idle_bytes_ -= bytes;
    }
  }
  IdleBufferRegistry::Global().Taken(bytes);
  if (instance == nullptr) instance = build_();
  instance->state = &state;
  return Checkout(this, std::move(instance));
}

void FlowPool::GiveBack(std::unique_ptr<FlowInstance> instance) {
  int64_t bytes = 0;
  for (const Tensor& buffer : instance->buffers) {
    if (buffer.raw() != nullptr) bytes += static_cast<int64_t>(buffer.capacity());
  }
  instance->idle_bytes = bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(instance));
    idle_bytes_ += bytes;
  }
  IdleBufferRegistry::Global().Added(this, bytes);
}

int64_t FlowPool::idle_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_bytes_;
}

int64_t FlowPool::DropIdleBuffers(std::vector<Tensor>& freed) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::unique_ptr<FlowInstance>& instance : free_) {
    for (Tensor& buffer : instance->buffers) {
      if (buffer.raw() == nullptr) continue;
      freed.push_back(std::move(buffer));
      buffer = Tensor();
    }
    instance->idle_bytes = 0;
  }
  return std::exchange(idle_bytes_, 0);
}

void SetIdleBufferCapacity(int64_t bytes) { IdleBufferRegistry::Global().SetCapacity(bytes); }

int64_t IdleBufferBytes() { return IdleBufferRegistry::Global().total(); }

}  // namespace backflow
