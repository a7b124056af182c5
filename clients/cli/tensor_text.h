// Tensors as the CLI shows and takes them: shapes and values as text, JSON, and the VALUE
// operands of `eval --set` and `infer --input`.
#ifndef BACKFLOW_CLIENTS_CLI_TENSOR_TEXT_H_
#define BACKFLOW_CLIENTS_CLI_TENSOR_TEXT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "backflow/v1/tensor.pb.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow::cli {

// "[2, 3]", "[]"; an open batch dimension (-1) prints as N: "[N, 1, 28, 28]".
std::string FormatShape(std::span<const int64_t> dims);
// The first `max_values` elements with printf `format` ("%.10g"), comma-separated, followed by
// ", ... (K values)" when some were left out.
std::string FormatValues(const Tensor& tensor, size_t max_values, const char* format);

// Scalars as plain numbers; others as {"shape": [...], "values": [...]} (row-major).
nlohmann::json TensorJson(const Tensor& tensor);

// Decodes a tensor from the wire without element limits (the server already enforced its own).
StatusOr<Tensor> FromWire(const v1::Tensor& proto, std::string_view what);

// Splits "NAME=VALUE" at the first '='; InvalidArgument if there is none or NAME is empty.
StatusOr<std::pair<std::string, std::string>> SplitAssignment(std::string_view text);

// A VALUE operand: a number ("3", "-4.5") -> scalar; a comma list ("1,2,3") -> 1-d; anything else
// names an .npy file. The result has `dtype` (an .npy file of the other float type is cast),
// except that an int32 or int64 .npy file keeps its dtype (labels, ids).
StatusOr<Tensor> ParseTensorValue(std::string_view text, DType dtype);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_TENSOR_TEXT_H_
