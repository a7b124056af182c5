#include "engine/data/repeat_task.h"

#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace backflow {

StatusOr<SequenceBatch> MakeRepeatTask(int64_t n, int64_t length, int64_t vocab, uint64_t seed) {
  if (n < 1 || length < 2 || vocab < length) {
    return InvalidArgumentError("repeat task: need n >= 1, length >= 2 and vocab >= length; got n " +
                                std::to_string(n) + ", length " + std::to_string(length) +
                                ", vocab " + std::to_string(vocab));
  }
  std::mt19937_64 rng(seed);
  // Uniform in [0, k): the raw output's 53 high bits as a fraction of 2^53, times k.
  auto below = [&rng](int64_t k) {
    return static_cast<int64_t>(static_cast<double>(rng() >> 11) * 0x1.0p-53 *
                                static_cast<double>(k));
  };
  SequenceBatch batch{Tensor(DType::kInt64, Shape{n, length}), Tensor(DType::kInt64, Shape{n})};
  std::vector<int64_t> pool(static_cast<size_t>(vocab));
  for (int64_t s = 0; s < n; ++s) {
    std::iota(pool.begin(), pool.end(), int64_t{0});
    int64_t* row = batch.ids.data<int64_t>() + s * length;
    for (int64_t i = 0; i < length; ++i) {  // the first `length` of a Fisher-Yates shuffle
      std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(i + below(vocab - i))]);
      row[i] = pool[static_cast<size_t>(i)];
    }
    const int64_t label = s % 2;
    if (label == 1) {
      const int64_t from = below(length);
      const int64_t to = (from + 1 + below(length - 1)) % length;  // any other position
      row[to] = row[from];
    }
    batch.labels.data<int64_t>()[s] = label;
  }
  return batch;
}

}  // namespace backflow
