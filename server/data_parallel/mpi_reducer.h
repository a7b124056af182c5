// MpiReducer: the GradientReducer of one rank's shard of a data-parallel step (Note
// [Data-parallel steps] in engine/api/gradient_reducer.h), over a Collective.
//
// Gradients are copied, already multiplied by the shard's weight, into buckets of at most
// `bucket_bytes` as the plan computes them; buckets hold the parameters in reverse order, which
// is roughly the order backward produces them. A bucket whose gradients are all in starts its
// sum across the ranks at once (a non-blocking allreduce), while backward goes on with the
// layers below, as PyTorch's DistributedDataParallel does; every rank starts the buckets in
// bucket order. After the run Reduce finishes the sums, then makes one allreduce of
// [failed, weighted loss, weighted metrics...] in float64: if any shard failed, every rank
// refuses the step and rank 0 reports the first failing rank's error (gathered). Running state
// is rank 0's, broadcast. A rank whose run failed still starts every bucket, with zeros where
// gradients are missing, so no rank waits for a call that never comes.
//
// The sums are MPI_SUM on every rank's same-shaped buffer: Open MPI computes each element once
// and hands the result to all ranks, so the ranks' gradients, and so their parameters, stay
// bitwise equal.
#ifndef BACKFLOW_SERVER_DATA_PARALLEL_MPI_REDUCER_H_
#define BACKFLOW_SERVER_DATA_PARALLEL_MPI_REDUCER_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/gradient_reducer.h"
#include "engine/api/trainer.h"
#include "server/data_parallel/collective.h"

namespace backflow::server {

class MpiReducer : public GradientReducer {
 public:
  // For `trainer`'s parameters (their shapes from `params`), a shard of `rows` of `batch_rows`.
  MpiReducer(Collective* collective, const Trainer& trainer, const ParameterSnapshot& params,
             int64_t rows, int64_t batch_rows, int64_t bucket_bytes);
  ~MpiReducer() override;  // finishes any sum still running (Reduce not called)

  void GradientReady(size_t index, const Tensor& gradient) override;
  Status Reduce(const Status& run, StepResult* result, ParameterMap* next_state) override;

  // How many buckets a step sends (for the logs and tests).
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;  // elements into the bucket
    int64_t elements = 0;
    bool filled = false;
  };
  struct Bucket {
    std::vector<char> data;
    int64_t elements = 0;
    size_t missing = 0;                          // slots not filled yet
    std::optional<Collective::Pending> pending;  // its sum, once started
  };
  // Copies weight x `gradient` (zeros for null) into the slot of parameter `index`, then starts
  // the buckets that are complete.
  void Fill(size_t index, const Tensor* gradient);
  // Starts, in bucket order, every complete bucket not started yet; polls the started ones.
  void StartComplete();  // REQUIRES(mu_)
  // Finishes every started sum; the first error.
  Status FinishAll();
  // Rank 0's running state on every rank, in name order.
  Status ShareState(ParameterMap* next_state);

  Collective* const collective_;
  const std::vector<std::string>& names_;
  const DType dtype_;
  const double weight_;
  std::vector<Slot> slots_;  // by parameter index
  std::vector<Bucket> buckets_;
  std::mutex mu_;          // GradientReady runs on several plan threads at once
  size_t next_start_ = 0;  // GUARDED_BY(mu_): the first bucket not started
  Status start_error_;     // GUARDED_BY(mu_): the first failure to start a sum
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_DATA_PARALLEL_MPI_REDUCER_H_
