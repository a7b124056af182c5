#include "clients/cli/tensor_text.h"

#include <cstdio>
#include <filesystem>
#include <limits>
#include <vector>

#include "clients/common/flags.h"
#include "clients/cli/npy.h"
#include "engine/ir/tensor_proto.h"

namespace backflow::cli {
namespace {

// "1,2,3" or "4.5" as numbers; nullopt if any item is not a number.
std::optional<std::vector<double>> ParseNumberList(std::string_view text) {
  std::vector<double> values;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    // A trailing comma makes a one-element list ("5,"), as in Python.
    if (!(item.empty() && comma == text.size() && !values.empty())) {
      StatusOr<double> value = clients::ParseNumber(item);
      if (!value.ok()) return std::nullopt;
      values.push_back(*value);
    }
    start = comma + 1;
  }
  return values;
}

}  // namespace

std::string FormatShape(std::span<const int64_t> dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text += ", ";
    text += dims[i] == -1 ? "N" : std::to_string(dims[i]);
  }
  return text + "]";
}

std::string FormatValues(const Tensor& tensor, size_t max_values, const char* format) {
  std::string text;
  const size_t count = static_cast<size_t>(tensor.num_elements());
  char buffer[64];
  for (size_t i = 0; i < count && i < max_values; ++i) {
    std::snprintf(buffer, sizeof buffer, format, tensor.at(static_cast<int64_t>(i)));
    if (i > 0) text += ", ";
    text += buffer;
  }
  if (count > max_values) text += ", ... (" + std::to_string(count) + " values)";
  return text;
}

nlohmann::json TensorJson(const Tensor& tensor) {
  if (tensor.shape().rank() == 0) return tensor.at(0);
  return {{"shape", tensor.shape().dims()}, {"values", tensor.ToDoubles()}};
}

StatusOr<Tensor> FromWire(const v1::Tensor& proto, std::string_view what) {
  return TensorFromProto(proto, what, std::numeric_limits<int64_t>::max());
}

StatusOr<std::pair<std::string, std::string>> SplitAssignment(std::string_view text) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return InvalidArgumentError("'" + std::string(text) + "' is not NAME=VALUE");
  }
  return std::pair(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
}

StatusOr<Tensor> ParseTensorValue(std::string_view text, DType dtype) {
  if (std::optional<std::vector<double>> values = ParseNumberList(text)) {
    const bool list = text.find(',') != std::string_view::npos;
    Shape shape = list ? Shape{static_cast<int64_t>(values->size())} : Shape{};
    return Tensor::FromValues(dtype, shape, *values);
  }
  const std::string path(text);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return InvalidArgumentError("'" + path +
                                "' is neither a number, a comma list nor an existing .npy file");
  }
  BF_ASSIGN_OR_RETURN(Tensor tensor, ReadNpy(path));
  // Integer files (labels, ids) go as they are, for integer placeholders; floats convert.
  if (IsInteger(tensor.dtype())) return tensor;
  return tensor.dtype() == dtype ? tensor : tensor.CastTo(dtype);
}

}  // namespace backflow::cli
