// InferenceStats: a model's cumulative inference counts and times, as the Open Inference
// Protocol's ModelStatistics reports them (server/inference_service.h). Both backflow.v1 Infer
// and ModelInfer record into it. Thread-safe: inference runs on many threads at once.
#ifndef BACKFLOW_SERVER_INFERENCE_STATS_H_
#define BACKFLOW_SERVER_INFERENCE_STATS_H_

#include <chrono>
#include <cstdint>
#include <mutex>

namespace backflow::server {

class InferenceStats {
 public:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
  };
  struct Totals {
    uint64_t last_unix_ms = 0;  // when the last request succeeded; 0: none yet
    uint64_t rows = 0;          // rows inferred over all successful requests
    uint64_t executions = 0;    // graph runs
    Duration success;           // successful requests: arrival to answer
    Duration fail;              // failed requests that reached the model
    Duration queue;             // arrival to the start of the work
    Duration compute_input;     // decoding the request (inside compute_infer for backflow.v1)
    Duration compute_infer;     // running the graph
    Duration compute_output;    // encoding the answer (inside compute_infer for backflow.v1)
  };
  using Clock = std::chrono::steady_clock;

  // A request of `rows` rows that arrived at `arrived`, started work at `started`, spent
  // `input`, `infer` and `output` in the three compute phases, and ends now. `new_run`: false
  // for the requests of a dynamic batch but one, so that executions count graph runs.
  void RecordSuccess(uint64_t rows, Clock::time_point arrived, Clock::time_point started,
                     Clock::duration input, Clock::duration infer, Clock::duration output,
                     bool new_run = true);
  void RecordFailure(Clock::time_point arrived);
  Totals Read() const;

 private:
  mutable std::mutex mu_;
  Totals totals_;  // GUARDED_BY(mu_)
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INFERENCE_STATS_H_
