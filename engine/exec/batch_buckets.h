// BatchBuckets: which batch size a program compiles an inference plan for.
//
// Note [Batch-size buckets]
// A plan is compiled for one batch size: its oneDNN primitives are built for those shapes, and
// while it stays cached it keeps a pooled flow graph holding one run's buffers (Note [Flow-graph
// pool]). A client that sends every size it happens to have (the last, short batch of each file;
// a dynamic batcher's stacks) makes one plan per size: a LeNet-5 model given Infer batches of 20
// sizes near 1,000 rows held 1.4 GiB, and each new size also paid a compile.
//
// So in inference mode, when every fetched value has independent rows (Note [Independent rows]
// in engine/ir/rows.h), a program compiles the first kExactSizes batch sizes it meets for a set
// of fetches exactly (a client's steady batch and its remainder), and rounds every later size up
// to a bucket: sizes below 16 stay exact, larger ones go up to the next multiple of an eighth of
// their power of two (1,000 -> 1,024; 1,100 -> 1,152), so padding costs at most 1/8 more rows and
// each doubling of the size range adds at most 8 plans. The run pads the batch with copies of its
// last row (so a padded row can fail or overflow only where a real one does), and drops the extra
// rows of every fetched output, which is a prefix of the buffer: no copy on the way out. A row's
// answer is then the one the exact plan gives up to rounding (oneDNN may pick another algorithm
// for another size), as with dynamic batching. Training runs are never padded: a loss averages
// over the rows.
//
// Thread safety: Choose may be called from any number of threads.
#ifndef BACKFLOW_ENGINE_EXEC_BATCH_BUCKETS_H_
#define BACKFLOW_ENGINE_EXEC_BATCH_BUCKETS_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/tensor.h"

namespace backflow {

class BatchBuckets {
 public:
  static constexpr size_t kExactSizes = 4;
  // Fetch sets remembered; past it they are all forgotten (their next sizes are exact again),
  // so clients naming ever new sets of outputs cannot grow the map without bound.
  static constexpr size_t kMaxKeys = 256;

  // The size `rows` is padded to once the exact sizes are used up.
  static int64_t Bucket(int64_t rows);

  // The batch size to run `rows` rows at for the fetch set `key`: `rows` itself if it is one of
  // the key's exact sizes or there is room for one more, else Bucket(rows).
  int64_t Choose(const std::string& key, int64_t rows);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<int64_t>> exact_;  // GUARDED_BY(mu_)
};

// `tensor` (axis 0 the batch) with rows added up to `rows`, each a copy of its last row.
Tensor PadRows(const Tensor& tensor, int64_t rows);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_BATCH_BUCKETS_H_
