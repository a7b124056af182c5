// CoreBudget: how oneTBB tasks and oneDNN's OpenMP teams share the cores.
//
// Note [Threads never exceed cores]
// Debian's oneDNN runs its primitives on OpenMP, and our executor runs nodes as oneTBB tasks.
// Left alone, every TBB worker that entered a oneDNN primitive would start an OpenMP team as
// wide as the machine, and P workers would keep P*P threads busy. Instead, every kernel borrows
// cores from one process-wide budget of P (the cores oneTBB may use) for as long as it runs:
//   - a plain kernel (elementwise, reductions) borrows one core and runs on its TBB thread;
//   - a oneDNN kernel borrows every core and runs its primitive with an OpenMP team of P.
// A kernel waits until its cores are free, in arrival order (a ticket queue, so a oneDNN kernel
// is not starved by a stream of small ones). So at any instant the threads computing are at most
// P: small independent branches run side by side on TBB, big primitives use all cores in turn.
// Libgomp's idle team threads spin for a while after a parallel region (GOMP_SPINCOUNT); libgomp
// reads that when it loads, so the deploy files and `make run` set it in the environment.
#ifndef BACKFLOW_ENGINE_RUNTIME_CORE_BUDGET_H_
#define BACKFLOW_ENGINE_RUNTIME_CORE_BUDGET_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace backflow {

// What a kernel that runs a team of every core asks for (Kernel::cores() in engine/ir/gate.h).
inline constexpr int kAllCores = 0;

class CoreBudget {
 public:
  // The process-wide budget, sized to oneTBB's default concurrency.
  static CoreBudget& Global();

  explicit CoreBudget(int cores);
  CoreBudget(const CoreBudget&) = delete;
  CoreBudget& operator=(const CoreBudget&) = delete;

  // Holds `cores` cores until destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : budget_(other.budget_), cores_(other.cores_) {
      other.budget_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    int cores() const { return cores_; }

   private:
    friend class CoreBudget;
    Lease(CoreBudget* budget, int cores) : budget_(budget), cores_(cores) {}
    CoreBudget* budget_;
    int cores_;
  };

  // Blocks until `cores` (clamped to [1, total]) are free and every earlier request is served.
  Lease Acquire(int cores);
  Lease AcquireAll() { return Acquire(total_); }

  int total() const { return total_; }
  // The most cores ever lent at once: tests check it never exceeds total().
  int peak_in_use() const;

 private:
  void Release(int cores);

  const int total_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int in_use_ = 0;  // GUARDED_BY(mu_)
  int peak_ = 0;  // GUARDED_BY(mu_)
  uint64_t next_ticket_ = 0;  // GUARDED_BY(mu_)
  uint64_t serving_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_RUNTIME_CORE_BUDGET_H_
