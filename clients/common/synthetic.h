// Synthetic batches: what backflow-load and backflow-bench send when they need a model's inputs
// and have no data. A placeholder of shape [-1] holds class labels, integers in [0, classes)
// stored as floats; any other holds uniform values in [0, 1); each open dimension (-1) becomes
// the batch size. Every placeholder, in the graph's order, draws from one generator seeded by
// the caller, so a seed names one batch, in process and over the wire alike.
#ifndef BACKFLOW_CLIENTS_COMMON_SYNTHETIC_H_
#define BACKFLOW_CLIENTS_COMMON_SYNTHETIC_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "backflow/v1/tensor.pb.h"

namespace backflow::clients {

struct SyntheticSpec {
  int64_t batch = 32;
  int64_t classes = 10;
  // The wire dtype; the values are drawn in its precision (float for FLOAT32).
  v1::DataType dtype = v1::FLOAT32;
};

// The values of one placeholder, drawn as T from `rng`; *shape gets its shape.
template <typename T>
std::vector<T> SyntheticValues(const v1::Placeholder& placeholder, const SyntheticSpec& spec,
                               std::mt19937_64& rng, std::vector<int64_t>* shape) {
  shape->clear();
  int64_t count = 1;
  for (int64_t dim : placeholder.shape()) {
    shape->push_back(dim < 0 ? spec.batch : dim);
    count *= shape->back();
  }
  const bool labels = placeholder.shape_size() == 1 && placeholder.shape(0) < 0;
  std::uniform_real_distribution<T> uniform(0, 1);
  std::uniform_int_distribution<int64_t> label(0, spec.classes - 1);
  std::vector<T> values(static_cast<size_t>(count));
  for (T& v : values) v = labels ? static_cast<T>(label(rng)) : uniform(rng);
  return values;
}

// Every placeholder of `graph`, drawn from `seed`, as wire tensors of spec.dtype; integer
// placeholders (INT32, INT64) as ids in [0, spec.classes) of their own dtype.
google::protobuf::Map<std::string, v1::Tensor> SyntheticBatch(const v1::Graph& graph,
                                                              const SyntheticSpec& spec,
                                                              uint64_t seed);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_SYNTHETIC_H_
