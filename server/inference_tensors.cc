#include "server/inference_tensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <span>
#include <utility>

#include "engine/core/shape.h"
#include "engine/ir/tensor_proto.h"
#include "server/names.h"

namespace backflow::server {
namespace {

using InputTensor = inference::ModelInferRequest::InferInputTensor;

struct DatatypeName {
  std::string_view name;
  v1::DataType dtype;  // DATA_TYPE_UNSPECIFIED: a datatype of the protocol backflow does not take
};

constexpr std::array<DatatypeName, 14> kDatatypes = {{
    {"FP32", v1::FLOAT32},
    {"FP64", v1::FLOAT64},
    {"INT32", v1::INT32},
    {"INT64", v1::INT64},
    {"BOOL", v1::DATA_TYPE_UNSPECIFIED},
    {"UINT8", v1::DATA_TYPE_UNSPECIFIED},
    {"UINT16", v1::DATA_TYPE_UNSPECIFIED},
    {"UINT32", v1::DATA_TYPE_UNSPECIFIED},
    {"UINT64", v1::DATA_TYPE_UNSPECIFIED},
    {"INT8", v1::DATA_TYPE_UNSPECIFIED},
    {"INT16", v1::DATA_TYPE_UNSPECIFIED},
    {"FP16", v1::DATA_TYPE_UNSPECIFIED},
    {"BF16", v1::DATA_TYPE_UNSPECIFIED},
    {"BYTES", v1::DATA_TYPE_UNSPECIFIED},
}};

size_t ElementBytes(v1::DataType dtype) {
  return dtype == v1::FLOAT64 || dtype == v1::INT64 ? 8 : 4;
}

// Which typed-contents field holds a datatype's elements, and how many each field holds.
struct ContentsField {
  std::string_view name;
  int size;
};

std::array<ContentsField, 8> ContentsFields(const inference::InferTensorContents& c) {
  return {{{"bool_contents", c.bool_contents_size()},
           {"int_contents", c.int_contents_size()},
           {"int64_contents", c.int64_contents_size()},
           {"uint_contents", c.uint_contents_size()},
           {"uint64_contents", c.uint64_contents_size()},
           {"fp32_contents", c.fp32_contents_size()},
           {"fp64_contents", c.fp64_contents_size()},
           {"bytes_contents", c.bytes_contents_size()}}};
}

std::string_view ContentsFieldOf(v1::DataType dtype) {
  switch (dtype) {
    case v1::FLOAT64:
      return "fp64_contents";
    case v1::INT32:
      return "int_contents";
    case v1::INT64:
      return "int64_contents";
    default:
      return "fp32_contents";
  }
}

// The elements of a repeated numeric field as little-endian bytes (the host's order: backflow
// runs on little-endian machines only: engine/ir/tensor_proto.cc asserts it).
template <typename T>
std::string Bytes(const google::protobuf::RepeatedField<T>& values) {
  std::string bytes(static_cast<size_t>(values.size()) * sizeof(T), '\0');
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <typename T>
void SetElements(const std::string& bytes, google::protobuf::RepeatedField<T>* values) {
  values->Resize(static_cast<int>(bytes.size() / sizeof(T)), T{});
  if (!bytes.empty()) std::memcpy(values->mutable_data(), bytes.data(), bytes.size());
}

// An input's typed contents as bytes: exactly the field of its datatype, with `elements` values.
StatusOr<std::string> TypedElements(const InputTensor& input, v1::DataType dtype, int64_t elements,
                                    const std::string& where) {
  const inference::InferTensorContents& contents = input.contents();
  const std::string_view field = ContentsFieldOf(dtype);
  for (const ContentsField& other : ContentsFields(contents)) {
    if (other.name != field && other.size > 0) {
      return InvalidArgumentError(where + " is " + input.datatype() + " but its contents hold " +
                                  std::string(other.name) + "; " + input.datatype() +
                                  " elements go in " + std::string(field) +
                                  " (or in raw_input_contents)");
    }
  }
  std::string bytes;
  switch (dtype) {
    case v1::FLOAT64:
      bytes = Bytes(contents.fp64_contents());
      break;
    case v1::INT32:
      bytes = Bytes(contents.int_contents());
      break;
    case v1::INT64:
      bytes = Bytes(contents.int64_contents());
      break;
    default:
      bytes = Bytes(contents.fp32_contents());
      break;
  }
  const auto given = static_cast<int64_t>(bytes.size() / ElementBytes(dtype));
  if (given != elements) {
    return InvalidArgumentError(where + ": contents." + std::string(field) + " holds " +
                                std::to_string(given) + " values; its shape needs " +
                                std::to_string(elements));
  }
  return bytes;
}

// One input as a backflow.v1 tensor. `raw` is its raw_input_contents entry, if the request has
// them.
Status ConvertInput(const InputTensor& input, const std::string* raw, int index,
                    int64_t max_elements, v1::Tensor* tensor) {
  const std::string where = "input " + Quoted(input.name());
  BF_ASSIGN_OR_RETURN(const v1::DataType dtype, BackflowDtype(input.datatype(), where));
  for (int i = 0; i < input.shape_size(); ++i) {
    if (input.shape(i) < 0) {
      return InvalidArgumentError(where + ": dimension " + std::to_string(i) + " is " +
                                  std::to_string(input.shape(i)) +
                                  " (a request's shapes are fully known, each >= 0)");
    }
  }
  const std::span<const int64_t> dims(input.shape().data(),
                                      static_cast<size_t>(input.shape_size()));
  BF_ASSIGN_OR_RETURN(const int64_t elements, CheckedElementCount(dims, max_elements, where));
  tensor->mutable_shape()->CopyFrom(input.shape());
  tensor->set_dtype(dtype);
  if (raw == nullptr) {
    BF_ASSIGN_OR_RETURN(*tensor->mutable_data(), TypedElements(input, dtype, elements, where));
    return Status::Ok();
  }
  const size_t expected = static_cast<size_t>(elements) * ElementBytes(dtype);
  if (raw->size() != expected) {
    return InvalidArgumentError(where + ": raw_input_contents[" + std::to_string(index) + "] has " +
                                std::to_string(raw->size()) + " bytes; shape " +
                                Shape(std::vector<int64_t>(dims.begin(), dims.end())).ToString() +
                                " of " + input.datatype() + " needs " + std::to_string(expected));
  }
  tensor->set_data(*raw);
  return Status::Ok();
}

bool HasElements(const inference::InferTensorContents& contents) {
  const auto fields = ContentsFields(contents);
  return std::any_of(fields.begin(), fields.end(),
                     [](const ContentsField& f) { return f.size > 0; });
}

}  // namespace

std::string_view ProtocolDatatype(v1::DataType dtype) {
  for (const DatatypeName& entry : kDatatypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  return "FP32";  // DATA_TYPE_UNSPECIFIED reads as FLOAT32 (backflow/v1/tensor.proto)
}

StatusOr<v1::DataType> BackflowDtype(std::string_view datatype, std::string_view what) {
  for (const DatatypeName& entry : kDatatypes) {
    if (entry.name != datatype) continue;
    if (entry.dtype != v1::DATA_TYPE_UNSPECIFIED) return entry.dtype;
    return InvalidArgumentError(std::string(what) + ": datatype " + std::string(datatype) +
                                " is not supported by backflow (it takes FP32, FP64, INT32 and "
                                "INT64)");
  }
  return InvalidArgumentError(std::string(what) + ": datatype " + Quoted(datatype) +
                              " is not a datatype of the Open Inference Protocol (backflow takes "
                              "FP32, FP64, INT32 and INT64)");
}

inference::DataType ConfigDatatype(v1::DataType dtype) {
  switch (dtype) {
    case v1::FLOAT64:
      return inference::TYPE_FP64;
    case v1::INT32:
      return inference::TYPE_INT32;
    case v1::INT64:
      return inference::TYPE_INT64;
    default:
      return inference::TYPE_FP32;
  }
}

StatusOr<v1::InferRequest> ToInferRequest(const inference::ModelInferRequest& request,
                                          const std::string& model_id, int64_t max_elements) {
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return InvalidArgumentError("raw_input_contents has " +
                                std::to_string(request.raw_input_contents_size()) +
                                " entries for " + std::to_string(request.inputs_size()) +
                                " inputs (one per input, in the order of inputs)");
  }
  v1::InferRequest converted;
  converted.set_model_id(model_id);
  for (int i = 0; i < request.inputs_size(); ++i) {
    const InputTensor& input = request.inputs(i);
    BF_RETURN_IF_ERROR(CheckLength("input", input.name(), kMaxNameBytes));
    if (raw && HasElements(input.contents())) {
      return InvalidArgumentError("input " + Quoted(input.name()) +
                                  " has contents, but the request sends raw_input_contents (use "
                                  "one or the other for all inputs)");
    }
    if (converted.inputs().contains(input.name())) {
      return InvalidArgumentError("input " + Quoted(input.name()) + " is given twice");
    }
    v1::Tensor& tensor = (*converted.mutable_inputs())[input.name()];
    BF_RETURN_IF_ERROR(ConvertInput(input, raw ? &request.raw_input_contents(i) : nullptr, i,
                                    max_elements, &tensor));
  }
  std::set<std::string_view> outputs;
  for (const auto& output : request.outputs()) {
    BF_RETURN_IF_ERROR(CheckLength("output", output.name(), kMaxNameBytes));
    if (!outputs.insert(output.name()).second) {
      return InvalidArgumentError("output " + Quoted(output.name()) + " is requested twice");
    }
    converted.add_outputs(output.name());
  }
  return converted;
}

void ToInferResponse(const inference::ModelInferRequest& request, v1::InferResponse& answer,
                     const std::vector<std::string>& default_order,
                     inference::ModelInferResponse* response) {
  response->set_id(request.id());
  *response->mutable_parameters() = request.parameters();
  (*response->mutable_parameters())["step"].set_int64_param(answer.step());
  const bool raw = request.raw_input_contents_size() > 0;
  std::vector<
      std::pair<std::string, const inference::ModelInferRequest::InferRequestedOutputTensor*>>
      order;
  for (const auto& output : request.outputs()) order.emplace_back(output.name(), &output);
  if (order.empty()) {
    for (const std::string& name : default_order) {
      if (answer.outputs().contains(name)) order.emplace_back(name, nullptr);
    }
  }
  for (const auto& [name, requested] : order) {
    auto found = answer.mutable_outputs()->find(name);
    if (found == answer.mutable_outputs()->end()) continue;
    v1::Tensor& tensor = found->second;
    auto* out = response->add_outputs();
    out->set_name(name);
    out->set_datatype(std::string(ProtocolDatatype(tensor.dtype())));
    *out->mutable_shape() = tensor.shape();
    if (requested != nullptr) *out->mutable_parameters() = requested->parameters();
    if (raw) {
      response->add_raw_output_contents(std::move(*tensor.mutable_data()));
      continue;
    }
    inference::InferTensorContents* contents = out->mutable_contents();
    switch (tensor.dtype()) {
      case v1::FLOAT64:
        SetElements(tensor.data(), contents->mutable_fp64_contents());
        break;
      case v1::INT32:
        SetElements(tensor.data(), contents->mutable_int_contents());
        break;
      case v1::INT64:
        SetElements(tensor.data(), contents->mutable_int64_contents());
        break;
      default:
        SetElements(tensor.data(), contents->mutable_fp32_contents());
        break;
    }
  }
}

}  // namespace backflow::server
