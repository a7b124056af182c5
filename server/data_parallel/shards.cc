#include "server/data_parallel/shards.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace backflow::server {
namespace {

// Rows [begin, begin + rows) of a tensor whose axis 0 holds the batch.
Tensor RowsOf(const Tensor& tensor, int64_t begin, int64_t rows) {
  Shape shape = tensor.shape();
  const int64_t row_bytes =
      shape.dim(0) == 0 ? 0 : static_cast<int64_t>(tensor.byte_size()) / shape.dim(0);
  shape.dim(0) = rows;
  Tensor out(tensor.dtype(), shape);
  if (rows > 0) {
    std::memcpy(out.raw(), tensor.raw() + begin * row_bytes, static_cast<size_t>(rows * row_bytes));
  }
  return out;
}

// True if `tensor` feeds a placeholder of `graph` with the batch on axis 0.
bool Batched(const Graph& graph, const std::string& name, const Tensor& tensor) {
  const std::optional<ValueId> id = graph.Find(name);
  return id && graph.value(*id).shape.rank() > 0 && graph.value(*id).shape.dim(0) == kBatchDim &&
         tensor.shape().rank() > 0;
}

}  // namespace

int64_t BatchRows(const Graph& graph, const TensorMap& batch) {
  int64_t rows = -1;
  for (const auto& [name, tensor] : batch) {
    if (Batched(graph, name, tensor)) rows = std::max(rows, tensor.shape().dim(0));
  }
  return rows;
}

std::vector<int64_t> ShardRows(int64_t rows, int ranks) {
  std::vector<int64_t> sizes(static_cast<size_t>(ranks), rows / ranks);
  for (int64_t r = 0; r < rows % ranks; ++r) ++sizes[static_cast<size_t>(r)];
  return sizes;
}

TensorMap ShardOfBatch(const Graph& graph, const TensorMap& batch, int64_t begin, int64_t rows) {
  TensorMap shard;
  for (const auto& [name, tensor] : batch) {
    shard.emplace(name, Batched(graph, name, tensor) ? RowsOf(tensor, begin, rows) : tensor);
  }
  return shard;
}

}  // namespace backflow::server
