// Conversions between the wire messages and the engine's types, with the checks a server owes
// its callers: every tensor a client sends is size-limited, length-checked, finite and of the
// model's dtype, and every problem names the tensor ("batch 'images': ...").
#ifndef BACKFLOW_SERVER_CONVERT_H_
#define BACKFLOW_SERVER_CONVERT_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "engine/optim/optimizer.h"

namespace backflow::server {

using TensorMap = std::unordered_map<std::string, Tensor>;
using WireTensorMap = google::protobuf::Map<std::string, v1::Tensor>;

// Decodes every tensor of `wire`; `what` prefixes messages ("batch" -> "batch 'x': ...").
// With `dtype`, every tensor must have it. NaN and Inf are rejected.
StatusOr<TensorMap> DecodeTensors(const WireTensorMap& wire, std::string_view what,
                                  int64_t max_elements, std::optional<DType> dtype);
FeedMap Feeds(const TensorMap& tensors);
// The rows of a batch: the largest first dimension of its tensors (1 for scalars).
inline int64_t BatchRows(const WireTensorMap& batch) {
  int64_t rows = 1;
  for (const auto& [name, tensor] : batch) {
    if (tensor.shape_size() > 0) rows = std::max<int64_t>(rows, tensor.shape(0));
  }
  return rows;
}
void EncodeTensors(const std::unordered_map<std::string, Tensor>& tensors, WireTensorMap* wire);
void EncodeMetrics(const std::unordered_map<std::string, double>& metrics,
                   google::protobuf::Map<std::string, double>* wire);

// A model's compute dtype: FLOAT32 or FLOAT64 (INT32 and INT64 are only for tensors).
StatusOr<DType> DecodeDType(int wire_dtype, std::string_view what);
v1::DataType EncodeDType(DType dtype);

// Unset optional fields take the engine's defaults; the result is validated.
StatusOr<OptimizerConfig> DecodeOptimizer(const v1::OptimizerSpec& spec);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CONVERT_H_
