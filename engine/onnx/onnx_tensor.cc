// ONNX TensorProto -> engine tensors and known values (engine/onnx/onnx_translator.h).
#include <cstring>
#include <string>

#include "engine/onnx/onnx_translator.h"
#include "engine/ir/tensor_proto.h"  // CheckedElementCount

namespace backflow::onnx_import {
namespace {

std::string Named(std::string_view what) { return std::string(what); }

StatusOr<int64_t> ElementCount(const onnx::TensorProto& tensor, std::string_view what,
                               int64_t max_elements) {
  for (int64_t d : tensor.dims()) {
    if (d < 0) return InvalidArgumentError(Named(what) + ": negative dimension " + std::to_string(d));
  }
  std::vector<int64_t> dims(tensor.dims().begin(), tensor.dims().end());
  return CheckedElementCount(dims, max_elements, what);
}

// Copies `count` little-endian elements of `size` bytes from raw_data, checking its length.
Status CheckRawLength(const onnx::TensorProto& tensor, std::string_view what, int64_t count,
                      size_t size) {
  if (tensor.raw_data().size() != static_cast<size_t>(count) * size) {
    return InvalidArgumentError(Named(what) + ": raw_data holds " +
                                std::to_string(tensor.raw_data().size()) + " bytes, " +
                                std::to_string(count) + " elements of " + std::to_string(size) +
                                " bytes need " + std::to_string(static_cast<size_t>(count) * size));
  }
  return Status::Ok();
}

template <typename Field>
Status CheckFieldLength(const Field& field, std::string_view what, int64_t count,
                        std::string_view field_name) {
  if (static_cast<int64_t>(field.size()) != count) {
    return InvalidArgumentError(Named(what) + ": " + std::string(field_name) + " holds " +
                                std::to_string(field.size()) + " elements, its dims " +
                                std::to_string(count));
  }
  return Status::Ok();
}

}  // namespace

bool IsFloatType(int32_t onnx_type) {
  return onnx_type == onnx::TensorProto::FLOAT || onnx_type == onnx::TensorProto::DOUBLE;
}

Status CheckInline(const onnx::TensorProto& tensor, std::string_view what) {
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL || tensor.external_data_size() > 0) {
    std::string location;
    for (const auto& entry : tensor.external_data()) {
      if (entry.key() == "location") location = " ('" + entry.value().substr(0, 200) + "')";
    }
    return InvalidArgumentError(
        Named(what) + " keeps its data in an external file" + location +
        ": backflow accepts only models with their weights inside (onnx.save_model(model, path, "
        "save_as_external_data=False)); external data is refused because onnx 1.12 resolves its "
        "paths unchecked (CVE-2022-25882)");
  }
  if (tensor.has_segment()) return InvalidArgumentError(Named(what) + ": segmented tensors are not supported");
  return Status::Ok();
}

StatusOr<backflow::Tensor> FloatTensor(const onnx::TensorProto& tensor, std::string_view what,
                                       int64_t max_elements) {
  BF_RETURN_IF_ERROR(CheckInline(tensor, what));
  BF_ASSIGN_OR_RETURN(int64_t count, ElementCount(tensor, what, max_elements));
  Shape shape(std::vector<int64_t>(tensor.dims().begin(), tensor.dims().end()));
  const bool is_double = tensor.data_type() == onnx::TensorProto::DOUBLE;
  if (!is_double && tensor.data_type() != onnx::TensorProto::FLOAT) {
    return InvalidArgumentError(Named(what) + ": element type " +
                                onnx::TensorProto::DataType_Name(
                                    static_cast<onnx::TensorProto::DataType>(tensor.data_type())) +
                                " is not float or double");
  }
  backflow::Tensor out(is_double ? DType::kFloat64 : DType::kFloat32, shape);
  const size_t size = is_double ? 8 : 4;
  if (tensor.has_raw_data()) {
    BF_RETURN_IF_ERROR(CheckRawLength(tensor, what, count, size));
    if (count > 0) std::memcpy(out.raw(), tensor.raw_data().data(), tensor.raw_data().size());
  } else if (is_double) {
    BF_RETURN_IF_ERROR(CheckFieldLength(tensor.double_data(), what, count, "double_data"));
    for (int64_t i = 0; i < count; ++i) out.data<double>()[i] = tensor.double_data(static_cast<int>(i));
  } else {
    BF_RETURN_IF_ERROR(CheckFieldLength(tensor.float_data(), what, count, "float_data"));
    for (int64_t i = 0; i < count; ++i) out.data<float>()[i] = tensor.float_data(static_cast<int>(i));
  }
  return out;
}

StatusOr<Known> KnownFromTensor(const onnx::TensorProto& tensor, std::string_view what,
                                int64_t max_elements) {
  BF_RETURN_IF_ERROR(CheckInline(tensor, what));
  std::vector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  if (IsFloatType(tensor.data_type())) {
    BF_ASSIGN_OR_RETURN(backflow::Tensor t, FloatTensor(tensor, what, max_elements));
    return Known::Floats(t.ToDoubles(), shape);
  }
  BF_ASSIGN_OR_RETURN(int64_t count, ElementCount(tensor, what, max_elements));
  std::vector<int64_t> values(static_cast<size_t>(count));
  const int type = tensor.data_type();
  if (type == onnx::TensorProto::INT64) {
    if (tensor.has_raw_data()) {
      BF_RETURN_IF_ERROR(CheckRawLength(tensor, what, count, 8));
      if (count > 0) std::memcpy(values.data(), tensor.raw_data().data(), tensor.raw_data().size());
    } else {
      BF_RETURN_IF_ERROR(CheckFieldLength(tensor.int64_data(), what, count, "int64_data"));
      values.assign(tensor.int64_data().begin(), tensor.int64_data().end());
    }
  } else if (type == onnx::TensorProto::INT32 || type == onnx::TensorProto::BOOL) {
    const size_t size = type == onnx::TensorProto::INT32 ? 4 : 1;
    if (tensor.has_raw_data()) {
      BF_RETURN_IF_ERROR(CheckRawLength(tensor, what, count, size));
      for (int64_t i = 0; i < count; ++i) {
        int32_t v = 0;
        std::memcpy(&v, tensor.raw_data().data() + static_cast<size_t>(i) * size, size);
        values[static_cast<size_t>(i)] = size == 1 ? (v & 0xff) != 0 : v;
      }
    } else {
      BF_RETURN_IF_ERROR(CheckFieldLength(tensor.int32_data(), what, count, "int32_data"));
      values.assign(tensor.int32_data().begin(), tensor.int32_data().end());
    }
  } else {
    return InvalidArgumentError(Named(what) + ": element type " +
                                onnx::TensorProto::DataType_Name(
                                    static_cast<onnx::TensorProto::DataType>(type)) +
                                " is not supported (float, double, int64, int32, bool are)");
  }
  return Known::Ints(std::move(values), std::move(shape));
}

int64_t Known::size() const { return static_cast<int64_t>(is_float ? f.size() : a.size()); }

Known Known::Ints(std::vector<int64_t> values, std::vector<int64_t> shape) {
  Known k;
  k.shape = std::move(shape);
  k.a = values;
  k.b = std::move(values);
  return k;
}

Known Known::Floats(std::vector<double> values, std::vector<int64_t> shape) {
  Known k;
  k.is_float = true;
  k.shape = std::move(shape);
  k.f = std::move(values);
  return k;
}

backflow::v1::AttrValue IntAttr(int64_t value) {
  backflow::v1::AttrValue v;
  v.set_i(value);
  return v;
}

backflow::v1::AttrValue FloatAttr(double value) {
  backflow::v1::AttrValue v;
  v.set_f(value);
  return v;
}

backflow::v1::AttrValue IntsAttr(const std::vector<int64_t>& values) {
  backflow::v1::AttrValue v;
  for (int64_t x : values) v.mutable_ints()->add_values(x);
  return v;
}

}  // namespace backflow::onnx_import
