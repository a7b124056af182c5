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
    if (placeholder.dtype() == v1::INT32 || placeholder.dtype() == v1::INT64) {
      // Integer placeholders (labels, token ids): every element an id in [0, classes).
      std::uniform_int_distribution<int64_t> id(0, spec.classes - 1);
      shape.clear();
      int64_t count = 1;
      for (int64_t dim : placeholder.shape()) {
        shape.push_back(dim < 0 ? spec.batch : dim);
        count *= shape.back();
      }
      std::vector<double> values(static_cast<size_t>(count));
      for (double& v : values) v = static_cast<double>(id(rng));
      EncodeTensor(shape, placeholder.dtype(), values, &tensor);
    } else if (spec.dtype == v1::FLOAT64) {
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
