#include "clients/common/tensors.h"

#include <string>
#include <vector>

namespace backflow::clients {
namespace {

template <typename Wire, typename Given>
void SetData(std::span<const Given> values, v1::Tensor* proto) {
  if constexpr (std::is_same_v<Wire, Given>) {
    proto->set_data(values.data(), values.size() * sizeof(Wire));
  } else {
    const std::vector<Wire> converted(values.begin(), values.end());
    proto->set_data(converted.data(), converted.size() * sizeof(Wire));
  }
}

template <typename Given>
void Encode(std::span<const int64_t> dims, v1::DataType dtype, std::span<const Given> values,
            v1::Tensor* proto) {
  proto->Clear();
  for (int64_t dim : dims) proto->add_shape(dim);
  if (dtype == v1::FLOAT64) {
    proto->set_dtype(v1::FLOAT64);
    SetData<double>(values, proto);
  } else if (dtype == v1::INT64) {  // values hold integers (class and token ids)
    proto->set_dtype(v1::INT64);
    SetData<int64_t>(values, proto);
  } else if (dtype == v1::INT32) {
    proto->set_dtype(v1::INT32);
    SetData<int32_t>(values, proto);
  } else {
    proto->set_dtype(v1::FLOAT32);
    SetData<float>(values, proto);
  }
}

}  // namespace

v1::DataType WireDType(DType dtype) { return dtype == DType::kFloat64 ? v1::FLOAT64 : v1::FLOAT32; }

DType EngineDType(v1::DataType dtype) {
  return dtype == v1::FLOAT64 ? DType::kFloat64 : DType::kFloat32;
}

void EncodeTensor(std::span<const int64_t> dims, v1::DataType dtype, std::span<const float> values,
                  v1::Tensor* proto) {
  Encode(dims, dtype, values, proto);
}

void EncodeTensor(std::span<const int64_t> dims, v1::DataType dtype, std::span<const double> values,
                  v1::Tensor* proto) {
  Encode(dims, dtype, values, proto);
}

}  // namespace backflow::clients
