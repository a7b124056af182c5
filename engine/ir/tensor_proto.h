// Conversion between the wire format's backflow.v1.Tensor and the engine's Tensor.
//
// The wire format carries elements as raw little-endian bytes; this build assumes a
// little-endian host (checked at compile time), so conversion is one copy each way. Every
// function here validates what a client sent and reports problems as a Status prefixed with
// `what` (for example "constant 'c'" or "input 'x'"), so the message names the tensor.
#ifndef BACKFLOW_ENGINE_IR_TENSOR_PROTO_H_
#define BACKFLOW_ENGINE_IR_TENSOR_PROTO_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "backflow/v1/tensor.pb.h"
#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow {

// The engine dtype for a wire dtype (DATA_TYPE_UNSPECIFIED reads as float32). InvalidArgument
// for values outside the enum, which proto3 lets through as open-enum integers.
StatusOr<DType> DTypeFromProto(int proto_dtype, std::string_view what);
// The wire dtype for an engine dtype.
backflow::v1::DataType DTypeToProto(DType dtype);

// Product of `dims` with open dimensions (kBatchDim) counted as 1, checked against
// `max_elements` before each multiplication so huge dimensions cannot overflow. Returns
// ResourceExhausted "WHAT: shape [..] has more than MAX elements" past the limit. The product
// with zero dimensions counted as 1 must be within the limit too, so no tensor, empty or not, has
// a partial product or stride past it. Dimensions must already be known non-negative (or
// kBatchDim).
StatusOr<int64_t> CheckedElementCount(std::span<const int64_t> dims, int64_t max_elements,
                                      std::string_view what);

// Decodes `proto` into a Tensor. Fails with InvalidArgument for a negative dimension, an
// unknown dtype or a byte length other than product(shape) * sizeof(dtype), and with
// ResourceExhausted if the element count exceeds `max_elements`. NaN and Inf are accepted;
// use CheckAllFinite where they are not.
StatusOr<Tensor> TensorFromProto(const backflow::v1::Tensor& proto, std::string_view what,
                                 int64_t max_elements);

// Encodes `tensor` (shape, dtype and raw bytes) into `proto`, replacing what it held.
void TensorToProto(const Tensor& tensor, backflow::v1::Tensor* proto);

// InvalidArgument "WHAT: element I is nan" for the first element that is NaN or infinite.
Status CheckAllFinite(const Tensor& tensor, std::string_view what);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_TENSOR_PROTO_H_
