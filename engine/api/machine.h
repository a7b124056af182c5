// What the machine gives the engine, for tools that report on it (backflow-bench): the cores
// compute may use, how many of them kernels held at once, and the sgemm roofline.
#ifndef BACKFLOW_ENGINE_API_MACHINE_H_
#define BACKFLOW_ENGINE_API_MACHINE_H_

#include <cstdint>
#include <memory>

#include "engine/core/status.h"

namespace backflow {

// Cores compute may use at once (oneTBB's default concurrency; Note [Threads never exceed
// cores] in engine/runtime/core_budget.h).
int ComputeCores();
// The most cores kernels held at once since the process started.
int PeakComputeCoresInUse();

// One n x n float32 matrix product on oneDNN with an OpenMP team of `threads`: the roofline the
// engine's throughput is compared with. Built once, run as often as the caller likes.
// Not thread-safe: one caller at a time.
class SgemmProbe {
 public:
  static StatusOr<std::unique_ptr<SgemmProbe>> Create(int64_t n, int threads);
  virtual ~SgemmProbe() = default;
  // Computes the product once.
  virtual Status Run() = 0;
  // 2 n^3.
  virtual double flops() const = 0;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_MACHINE_H_
