// How a data-parallel step splits its batch into one shard per rank (Note [Data-parallel jobs]
// in server/data_parallel/replica.h).
#ifndef BACKFLOW_SERVER_DATA_PARALLEL_SHARDS_H_
#define BACKFLOW_SERVER_DATA_PARALLEL_SHARDS_H_

#include <cstdint>
#include <vector>

#include "engine/ir/graph.h"
#include "server/convert.h"

namespace backflow::server {

// The rows of `batch` (the most any tensor feeding a batched placeholder has), -1 if none does.
int64_t BatchRows(const Graph& graph, const TensorMap& batch);

// The rows of each of `ranks` shards of a batch of `rows`: the first rows % ranks one more.
std::vector<int64_t> ShardRows(int64_t rows, int ranks);

// The rows [begin, begin + rows) of every tensor of `batch` whose placeholder in `graph` has the
// batch on axis 0; other tensors whole.
TensorMap ShardOfBatch(const Graph& graph, const TensorMap& batch, int64_t begin, int64_t rows);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_DATA_PARALLEL_SHARDS_H_
