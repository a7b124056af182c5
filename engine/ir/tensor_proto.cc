#include "engine/ir/tensor_proto.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace backflow {
namespace {

// The wire format is little-endian and we copy bytes as they are.
static_assert(std::endian::native == std::endian::little,
              "backflow's tensor encoding assumes a little-endian host");

std::string DimsToString(std::span<const int64_t> dims) {
  return Shape(std::vector<int64_t>(dims.begin(), dims.end())).ToString();
}

}  // namespace

StatusOr<DType> DTypeFromProto(int proto_dtype, std::string_view what) {
  switch (proto_dtype) {
    case backflow::v1::DATA_TYPE_UNSPECIFIED:
    case backflow::v1::FLOAT32:
      return DType::kFloat32;
    case backflow::v1::FLOAT64:
      return DType::kFloat64;
    case backflow::v1::INT32:
      return DType::kInt32;
    case backflow::v1::INT64:
      return DType::kInt64;
    default:
      return InvalidArgumentError(std::string(what) + ": unknown dtype " +
                                  std::to_string(proto_dtype) +
                                  " (expected FLOAT32, FLOAT64, INT32 or INT64)");
  }
}

backflow::v1::DataType DTypeToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return backflow::v1::FLOAT32;
    case DType::kFloat64:
      return backflow::v1::FLOAT64;
    case DType::kInt32:
      return backflow::v1::INT32;
    case DType::kInt64:
      return backflow::v1::INT64;
  }
  return backflow::v1::DATA_TYPE_UNSPECIFIED;
}

StatusOr<int64_t> CheckedElementCount(std::span<const int64_t> dims, int64_t max_elements,
                                      std::string_view what) {
  // Zero dimensions count as 1 in `extent`, so a tensor with no elements cannot carry dimensions
  // whose strides overflow ([0, 2^40, 2^40]).
  int64_t extent = 1;
  const bool empty = std::find(dims.begin(), dims.end(), 0) != dims.end();
  for (int64_t d : dims) {
    const int64_t factor = d == kBatchDim || d == 0 ? 1 : d;
    // extent * factor > max  <=>  extent > max / factor (integer division, factor > 0); never
    // overflows.
    if (extent > max_elements / factor) {
      return ResourceExhaustedError(
          std::string(what) + ": shape " + DimsToString(dims) + " has more than " +
          std::to_string(max_elements) +
          (empty ? " elements without its zero dimensions" : " elements") +
          " (the limit per tensor)");
    }
    extent *= factor;
  }
  return empty ? 0 : extent;
}

StatusOr<Tensor> TensorFromProto(const backflow::v1::Tensor& proto, std::string_view what,
                                 int64_t max_elements) {
  BF_ASSIGN_OR_RETURN(const DType dtype, DTypeFromProto(proto.dtype(), what));
  const std::span<const int64_t> dims(proto.shape().data(),
                                      static_cast<size_t>(proto.shape_size()));
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) {
      return InvalidArgumentError(std::string(what) + ": dimension " + std::to_string(i) + " is " +
                                  std::to_string(dims[i]) + " (tensor dimensions must be >= 0)");
    }
  }
  BF_ASSIGN_OR_RETURN(const int64_t n, CheckedElementCount(dims, max_elements, what));
  // n <= max_elements, and callers keep that far below SIZE_MAX / 8.
  const size_t expected = static_cast<size_t>(n) * SizeOf(dtype);
  if (proto.data().size() != expected) {
    return InvalidArgumentError(std::string(what) + ": data has " +
                                std::to_string(proto.data().size()) + " bytes, expected " +
                                std::to_string(expected) + " (shape " + DimsToString(dims) + ", " +
                                std::string(DTypeName(dtype)) + ")");
  }
  Tensor tensor(dtype, Shape(dims));
  if (expected != 0) std::memcpy(tensor.raw(), proto.data().data(), expected);
  return tensor;
}

void TensorToProto(const Tensor& tensor, backflow::v1::Tensor* proto) {
  proto->Clear();
  for (int64_t d : tensor.shape().dims()) proto->add_shape(d);
  proto->set_dtype(DTypeToProto(tensor.dtype()));
  if (tensor.byte_size() != 0) {
    proto->set_data(reinterpret_cast<const char*>(tensor.raw()), tensor.byte_size());
  }
}

Status CheckAllFinite(const Tensor& tensor, std::string_view what) {
  const int64_t i = FirstNonFinite(tensor);
  if (i < 0) return Status::Ok();
  const double v = tensor.at(i);
  return InvalidArgumentError(std::string(what) + ": element " + std::to_string(i) + " is " +
                              (std::isnan(v) ? "NaN"
                               : v > 0       ? "+Inf"
                                             : "-Inf") +
                              " (values must be finite)");
}

}  // namespace backflow
