// A synthetic sequence task for attention models: does any token occur twice in the sequence?
//
// MakeRepeatTask(n, length, vocab, seed) gives n sequences of `length` int64 token ids in
// [0, vocab) and int64 labels, alternating 0, 1, 0, ... (balanced classes): label 0 sequences hold
// `length` distinct tokens, label 1 sequences the same except that one position copies another
// (so exactly one token occurs twice). Tokens are a partial Fisher-Yates shuffle of 0..vocab-1
// drawn with std::mt19937_64 and arithmetic on its raw output, so a seed gives the same data on
// every platform. bench/torch_models.py's repeat_task draws from the same distribution (with
// torch's generator, so not the same values).
#ifndef BACKFLOW_ENGINE_DATA_REPEAT_TASK_H_
#define BACKFLOW_ENGINE_DATA_REPEAT_TASK_H_

#include <cstdint>

#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow {

struct SequenceBatch {
  Tensor ids;     // [n, length] int64
  Tensor labels;  // [n] int64, 0 or 1
};

// InvalidArgument if n < 1, length < 2 or vocab < length.
StatusOr<SequenceBatch> MakeRepeatTask(int64_t n, int64_t length, int64_t vocab, uint64_t seed);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_DATA_REPEAT_TASK_H_
