// NodeWriter and the emitter table: the plumbing every op's ONNX form is written with.
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "engine/onnx/onnx_export_internal.h"

namespace backflow::onnx_export {

onnx::TensorProto_DataType ElemType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return onnx::TensorProto_DataType_FLOAT;
    case DType::kFloat64:
      return onnx::TensorProto_DataType_DOUBLE;
    case DType::kInt32:
      return onnx::TensorProto_DataType_INT32;
    case DType::kInt64:
      return onnx::TensorProto_DataType_INT64;
  }
  return onnx::TensorProto_DataType_UNDEFINED;
}

void WriteTensor(const Tensor& tensor, const std::string& name, onnx::TensorProto* out) {
  out->set_name(name);
  out->set_data_type(ElemType(tensor.dtype()));
  for (int64_t d : tensor.shape().dims()) out->add_dims(d);
  out->set_raw_data(reinterpret_cast<const char*>(tensor.raw()), tensor.byte_size());
}

void WriteConstant(const Tensor& tensor, const std::string& name, onnx::GraphProto* out) {
  onnx::NodeProto& node = *out->add_node();
  node.set_name(name);
  node.set_op_type("Constant");
  node.add_output(name);
  onnx::AttributeProto& value = *node.add_attribute();
  value.set_name("value");
  value.set_type(onnx::AttributeProto_AttributeType_TENSOR);
  WriteTensor(tensor, name, value.mutable_t());
}

NameTable::NameTable(const Graph& graph) {
  for (const Value& v : graph.values()) taken_.insert(v.name);
}

std::string NameTable::Fresh(const std::string& base) {
  std::string name = base;
  for (int k = 1; taken_.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
  taken_.insert(name);
  return name;
}

NodeWriter::NodeWriter(const Graph& graph, const Node& node, DType float_dtype,
                       onnx::GraphProto* out, NameTable* names)
    : graph_(graph), node_(node), float_dtype_(float_dtype), out_(out), names_(names) {}

const Value& NodeWriter::input_value(int i) const {
  return graph_.value(node_.inputs[static_cast<size_t>(i)]);
}

onnx::NodeProto& NodeWriter::Add(std::string_view op_type, std::vector<std::string> inputs,
                                 const std::string& output) {
  // Trailing absent optional inputs are left out rather than written as "".
  while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
  onnx::NodeProto& node = *out_->add_node();
  node.set_name(output);
  node.set_op_type(std::string(op_type));
  for (std::string& in : inputs) node.add_input(std::move(in));
  node.add_output(output);
  return node;
}

std::string NodeWriter::Temp(std::string_view suffix) {
  return names_->Fresh(node_.name + "." + std::string(suffix));
}

std::string NodeWriter::AddConstant(std::string_view suffix, const Tensor& tensor) {
  std::string name = Temp(suffix);
  WriteConstant(tensor, name, out_);
  return name;
}

std::string NodeWriter::Scalar(std::string_view suffix, double value) {
  return AddConstant(suffix, Tensor::Scalar(float_dtype_, value));
}

std::string NodeWriter::Float32Scalar(std::string_view suffix, double value) {
  return AddConstant(suffix, Tensor::Scalar(DType::kFloat32, value));
}

std::string NodeWriter::Filled(std::string_view suffix, const Shape& shape, double value) {
  const std::vector<double> elements(static_cast<size_t>(shape.num_elements()), value);
  return AddConstant(suffix, Tensor::FromValues(float_dtype_, shape, elements));
}

std::string NodeWriter::Int64s(std::string_view suffix, std::span<const int64_t> values) {
  Tensor t(DType::kInt64, Shape{static_cast<int64_t>(values.size())});
  if (!values.empty()) std::memcpy(t.raw(), values.data(), values.size() * sizeof(int64_t));
  std::string name = Temp(suffix);
  WriteTensor(t, name, out_->add_initializer());
  return name;
}

namespace {

onnx::AttributeProto& NewAttribute(onnx::NodeProto& node, const std::string& name,
                                   onnx::AttributeProto_AttributeType type) {
  onnx::AttributeProto& attr = *node.add_attribute();
  attr.set_name(name);
  attr.set_type(type);
  return attr;
}

}  // namespace

void SetInt(onnx::NodeProto& node, const std::string& name, int64_t value) {
  NewAttribute(node, name, onnx::AttributeProto_AttributeType_INT).set_i(value);
}

void SetFloat(onnx::NodeProto& node, const std::string& name, double value) {
  NewAttribute(node, name, onnx::AttributeProto_AttributeType_FLOAT)
      .set_f(static_cast<float>(value));
}

void SetInts(onnx::NodeProto& node, const std::string& name, std::span<const int64_t> values) {
  onnx::AttributeProto& attr = NewAttribute(node, name, onnx::AttributeProto_AttributeType_INTS);
  for (int64_t v : values) attr.add_ints(v);
}

void SetString(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  NewAttribute(node, name, onnx::AttributeProto_AttributeType_STRING).set_s(value);
}

Emitter FindEmitter(std::string_view op) {
  static const EmitterTable* const table = [] {
    auto* t = new EmitterTable;
    AddElementwiseEmitters(*t);
    AddLayerEmitters(*t);
    AddShapeEmitters(*t);
    return t;
  }();
  auto it = table->find(op);
  return it == table->end() ? nullptr : it->second;
}

bool IsLossOrMetric(std::string_view op) {
  static const std::set<std::string, std::less<>> kOps = {
      "accuracy", "sigmoid_cross_entropy", "softmax_cross_entropy", "squared_error", "svm_hinge"};
  return kOps.count(op) != 0;
}

}  // namespace backflow::onnx_export
