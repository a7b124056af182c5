// InferBatcher: dynamic batching of concurrent inference requests (backflow.v1 Infer and the Open
// Inference Protocol's ModelInfer).
//
// Note [Dynamic batching]
// Requests for the same model, with the same inputs (names, dtypes and shapes past the batch
// dimension) and the same outputs, are stacked along the batch dimension, run as one plan and
// split back, so that many small requests cost about what one request of their total rows costs:
// the per-run overhead (the flow graph's start, a oneDNN primitive's call, a thread's wake-up)
// is paid once, and the matrix products run at a size the cores are efficient at.
//
// The batcher is opportunistic first: the first request of a batch schedules the batch's job on
// the ComputePool at once when the batch delay is 0 (or at its deadline otherwise), and every
// request that arrives before that job starts running joins it, up to the model's max rows. So
// an idle server runs a lone request without waiting, and a busy one forms batches exactly while
// requests would queue anyway. A delay (--batch-delay-us) makes the first request wait for
// company up to that long even when a compute thread is free.
//
// Each request keeps its own outcome: requests cancelled or past their deadline when the batch
// starts are answered so and left out; if the stacked run fails, each request runs again alone,
// so an error fails only the request that causes it; a batch never mixes two parameter
// snapshots (one run reads one snapshot). Rows must be independent in inference mode (Note
// [Independent rows] in engine/ir/rows.h): a request for an output that mixes rows (a softmax
// over the batch axis, a loss) always runs alone. A model can also turn batching off
// (CreateModelRequest.batching.max_rows = 1).
#ifndef BACKFLOW_SERVER_BATCHER_H_
#define BACKFLOW_SERVER_BATCHER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/status.h"
#include "engine/exec/program.h"
#include "server/convert.h"
#include "server/model.h"
#include "server/work_queue.h"

namespace backflow::server {

// A model's batching: at most `max_rows` rows per run; the first request waits at most `delay`
// for others. max_rows <= 1: off.
struct BatchSettings {
  int64_t max_rows = 0;
  std::chrono::microseconds delay{0};
  bool enabled() const { return max_rows > 1; }
};

// What a request gets back: its outputs (in the order it named them) and the step of the
// parameter snapshot they were computed on, or why not; and whether its run was shared.
struct BatchAnswer {
  StatusOr<std::vector<Tensor>> outputs = std::vector<Tensor>();
  int64_t step = 0;
  int64_t batch_rows = 0;  // rows of the run that computed it (its own when alone)
  bool new_run = true;     // false for every request of a stacked run but its first
  InferenceStats::Clock::time_point started;  // when its run started
};

class InferBatcher {
 public:
  using Done = std::function<void(BatchAnswer)>;

  explicit InferBatcher(ComputePool* pool);
  ~InferBatcher();  // stops the timer; waits for the batches already handed to the pool

  // Whether `inputs` and `outputs` can join a batch on `model`: every input has rows along its
  // first dimension (all the same number), every input and output has the batch dimension
  // first in the graph, and every output's rows are independent (Model::RowsIndependent).
  static bool Batchable(const Model& model, const TensorMap& inputs,
                        const std::vector<std::string>& outputs);

  // Queues the request; `done` is called exactly once, on a compute thread (or on this one, if
  // the batcher is stopping). `inputs` must be decoded and checked (ops::PrepareInfer).
  void Submit(std::shared_ptr<Model> model, const BatchSettings& settings, TensorMap inputs,
              std::vector<std::string> outputs, RunOptions run, Done done);

 private:
  struct Item {
    TensorMap inputs;
    int64_t rows = 0;
    RunOptions run;
    Done done;
  };
  struct Queue {
    std::shared_ptr<Model> model;
    std::vector<std::string> outputs;
    BatchSettings settings;
    std::deque<Item> items;
    int64_t rows = 0;
    bool job_scheduled = false;  // a job will take items when it starts
    std::optional<std::chrono::steady_clock::time_point> due;  // the timer's, for the front item
  };

  static std::string Key(const Model& model, const TensorMap& inputs,
                         const std::vector<std::string>& outputs);
  void ScheduleLocked(const std::string& key, Queue& queue);  // mu_ held
  void RunJob(const std::string& key);
  void TimerLoop();

  ComputePool* const pool_;
  std::mutex mu_;
  std::condition_variable timer_cv_;
  std::map<std::string, Queue> queues_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                // GUARDED_BY(mu_)
  std::thread timer_;
};

// Runs `items`' requests on `model` as one stacked run (or alone, for one request or when the
// stacked run fails) and answers each. Exposed for tests.
void RunBatch(const Model& model, const std::vector<std::string>& outputs,
              std::vector<std::pair<TensorMap, RunOptions>> requests,
              const std::vector<InferBatcher::Done>& done);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_BATCHER_H_
