// MemoryBudget: a ceiling on the bytes a process may commit to models and runs, checked before
// the memory is allocated.
//
// Note [Memory budget]
// A server that allocates whatever a request implies can be made to use any amount of memory by
// one small request (an 89-byte CreateModel asking for 1 GiB of parameters; a 33 KB Evaluate
// whose broadcasts make 1.9 GB of intermediates), and the first thing to notice is the kernel's
// OOM killer. So every large commitment is estimated from shapes before anything is allocated
// and reserved here: a model's parameters, running state and optimizer slots for its lifetime
// (server/model.h), and a run's working set (every intermediate and gradient of its plan,
// engine/exec/plan.h) for the length of the run. Past the capacity the reservation fails with
// ResourceExhausted saying how much was needed and how much is in use, and nothing is allocated.
// The estimates count the big buffers, not every small allocation: the capacity should leave
// room below the real limit (the server's default takes 80% of what the machine or its cgroup
// allows).
#ifndef BACKFLOW_ENGINE_CORE_MEMORY_BUDGET_H_
#define BACKFLOW_ENGINE_CORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/status.h"

namespace backflow {

class MemoryBudget {
 public:
  // Bytes held by one reservation until it is destroyed (or Release()d). Movable.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) {
      other.budget_ = nullptr;
    }
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }

    void Release();
    int64_t bytes() const { return budget_ == nullptr ? 0 : bytes_; }

   private:
    friend class MemoryBudget;
    Hold(MemoryBudget* budget, int64_t bytes) : budget_(budget), bytes_(bytes) {}
    MemoryBudget* budget_ = nullptr;
    int64_t bytes_ = 0;
  };

  // `capacity` bytes; 0 or less: no ceiling (reservations are counted, never refused).
  explicit MemoryBudget(int64_t capacity = 0) : capacity_(capacity) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // `bytes` more, for `what` ("model 'm-1' (parameters and optimizer state)"). Thread-safe.
  // ResourceExhausted "WHAT needs N bytes (X MiB), but only F of the memory ceiling of C are
  // free (U in use)" when it does not fit; nothing is reserved then.
  StatusOr<Hold> Reserve(int64_t bytes, std::string_view what);

  // `bytes` counted even past the capacity: for what is already committed (models loaded at
  // start under a ceiling lowered since), so later reservations see it.
  Hold Force(int64_t bytes);

  int64_t capacity() const { return capacity_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const int64_t capacity_;
  std::atomic<int64_t> used_{0};
};

// Gives memory nothing uses any more back to the system: the tensor buffer cache's blocks (Note
// [Buffer cache] in engine/core/tensor.cc) and malloc's free pages. For after a large release
// (a model deleted): freed memory otherwise stays resident in the process. Takes milliseconds.
void ReturnFreeMemory();

// Sets malloc up for a process whose large buffers come and go (a server): blocks of 1 MiB and
// up are always mmapped, and unmapped when freed. glibc otherwise raises its mmap threshold to
// the size of each large block freed (up to 32 MiB), after which such blocks come from thread
// arenas that fragment and stay resident: a server that had run batches of 10,000 rows kept 40
// to 118 MiB after every model was deleted, 36 to 41 MiB with the threshold fixed. The sizes
// steps reuse come from the buffer cache (Note [Buffer cache] in engine/core/tensor.cc), so
// steady runs do not pay for the mmaps. Call once, at start.
void ConfigureMalloc();

// "1.50 GiB", "12.0 MiB", "512 bytes": a size for people.
std::string ByteSize(int64_t bytes);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_CORE_MEMORY_BUDGET_H_
