#include "engine/exec/batch_buckets.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace backflow {

int64_t BatchBuckets::Bucket(int64_t rows) {
  if (rows < 16) return rows;
  const int log2 = std::bit_width(static_cast<uint64_t>(rows)) - 1;
  const int64_t step = int64_t{1} << (log2 - 3);
  return (rows + step - 1) / step * step;
}

int64_t BatchBuckets::Choose(const std::string& key, int64_t rows) {
  std::lock_guard<std::mutex> lock(mu_);
  if (exact_.size() >= kMaxKeys && exact_.find(key) == exact_.end()) exact_.clear();
  std::vector<int64_t>& exact = exact_[key];
  if (std::find(exact.begin(), exact.end(), rows) != exact.end()) return rows;
  if (exact.size() < kExactSizes) {
    exact.push_back(rows);
    return rows;
  }
  return Bucket(rows);
}

Tensor PadRows(const Tensor& tensor, int64_t rows) {
  const int64_t have = tensor.shape().dim(0);
  Shape shape = tensor.shape();
  shape.dim(0) = rows;
  Tensor padded = Tensor::Uninitialized(tensor.dtype(), shape);
  if (have == 0) return Tensor(tensor.dtype(), shape);
  const size_t row_bytes = tensor.byte_size() / static_cast<size_t>(have);
  std::memcpy(padded.raw(), tensor.raw(), tensor.byte_size());
  const std::byte* last = tensor.raw() + (static_cast<size_t>(have) - 1) * row_bytes;
  for (int64_t r = have; r < rows; ++r) {
    std::memcpy(padded.raw() + static_cast<size_t>(r) * row_bytes, last, row_bytes);
  }
  return padded;
}

}  // namespace backflow
