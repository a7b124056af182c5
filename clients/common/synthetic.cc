#include "clients/common/synthetic.h"

#include "clients/common/tensors.h"

namespace backflow::clients {

google::protobuf::Map<std::string, v1::Tensor> SyntheticBatch(const v1::Graph& graph,
                                                              const SyntheticSpec& spec,
                                                              uint64_t seed) {
  std::mt19937_64 rng(seed);
  google::protobuf::Map<std::string, v1::Tensor> batch;
  std::vector<int64_t> shape;
  for (const v1::Placeholder& placeholder : graph.placeholders()) {
    v1::Tensor& tensor = batch[placeholder.name()];
    if (spec.dtype == v1::FLOAT64) {
      const std::vector<double> values = SyntheticValues<double>(placeholder, spec, rng, &shape);
      EncodeTensor(shape, spec.dtype, values, &tensor);
    } else {
      const std::vector<float> values = SyntheticValues<float>(placeholder, spec, rng, &shape);
      EncodeTensor(shape, spec.dtype, values, &tensor);
    }
  }
  return batch;
}

}  // namespace backflow::clients
