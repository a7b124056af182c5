// Tensors on the wire as the bundled clients build them: dtypes between the engine and the wire,
// and float or double values encoded as a v1::Tensor of either float type.
#ifndef BACKFLOW_CLIENTS_COMMON_TENSORS_H_
#define BACKFLOW_CLIENTS_COMMON_TENSORS_H_

#include <cstdint>
#include <span>

#include "backflow/v1/tensor.pb.h"
#include "engine/core/tensor.h"

namespace backflow::clients {

// kFloat64 <-> FLOAT64; everything else is float32.
v1::DataType WireDType(DType dtype);
DType EngineDType(v1::DataType dtype);

// Sets `proto` to a tensor of shape `dims` and `dtype` holding `values`, converted to `dtype`
// (float64 widens floats, float32 rounds doubles) and stored little-endian, row-major.
void EncodeTensor(std::span<const int64_t> dims, v1::DataType dtype, std::span<const float> values,
                  v1::Tensor* proto);
void EncodeTensor(std::span<const int64_t> dims, v1::DataType dtype, std::span<const double> values,
                  v1::Tensor* proto);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_TENSORS_H_
