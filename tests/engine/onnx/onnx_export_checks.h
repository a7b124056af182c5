// What the ONNX export tests read an exported model with: onnx 1.12's checker and strict shape
// inference, and short texts of nodes and value infos to compare with expectations.
#ifndef BACKFLOW_TESTS_ENGINE_ONNX_ONNX_EXPORT_CHECKS_H_
#define BACKFLOW_TESTS_ENGINE_ONNX_ONNX_EXPORT_CHECKS_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ir/graph.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace backflow::testing {

// Parses `bytes` and runs onnx.checker.check_model and shape inference with type checks and
// node errors raised (what Python's check_model(full_check=True) runs). Returns the model with
// the inferred value_info added.
inline onnx::ModelProto ParseChecked(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true,
                                                                   /*strict_mode=*/1));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "onnx checker: " << e.what();
  }
  return model;
}

inline std::string FloatText(float f) {
  std::ostringstream os;
  os << f;
  return os.str();
}

// A tensor's elements as doubles (raw_data of FLOAT, DOUBLE, INT64).
inline std::vector<double> InitializerValues(const onnx::TensorProto& t) {
  std::vector<double> out;
  const std::string& raw = t.raw_data();
  auto read = [&](auto zero) {
    using T = decltype(zero);
    for (size_t i = 0; i + sizeof(T) <= raw.size(); i += sizeof(T)) {
      T v;
      std::memcpy(&v, raw.data() + i, sizeof(T));
      out.push_back(static_cast<double>(v));
    }
  };
  if (t.data_type() == onnx::TensorProto_DataType_FLOAT) read(0.0f);
  if (t.data_type() == onnx::TensorProto_DataType_DOUBLE) read(0.0);
  if (t.data_type() == onnx::TensorProto_DataType_INT64) read(int64_t{0});
  return out;
}

// "FLOAT[2] 0.5 1": a tensor's type, dims and elements.
inline std::string TensorText(const onnx::TensorProto& t) {
  std::string s = onnx::TensorProto_DataType_Name(t.data_type()) + "[";
  for (int i = 0; i < t.dims_size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims(i));
  s += "]";
  for (double v : InitializerValues(t)) s += " " + FloatText(static_cast<float>(v));
  return s;
}

// "Conv(x, w, b -> y) dilations=[1, 1] group=1 ...": op type, inputs, output, then the
// attributes in the order written.
inline std::string NodeText(const onnx::NodeProto& node) {
  std::string s = node.op_type() + "(";
  for (int i = 0; i < node.input_size(); ++i) s += (i ? ", " : "") + node.input(i);
  s += node.input_size() ? " -> " : "-> ";
  for (int i = 0; i < node.output_size(); ++i) s += (i ? ", " : "") + node.output(i);
  s += ")";
  for (const onnx::AttributeProto& a : node.attribute()) {
    s += " " + a.name() + "=";
    switch (a.type()) {
      case onnx::AttributeProto_AttributeType_INT:
        s += std::to_string(a.i());
        break;
      case onnx::AttributeProto_AttributeType_FLOAT:
        s += FloatText(a.f());
        break;
      case onnx::AttributeProto_AttributeType_STRING:
        s += "\"" + a.s() + "\"";
        break;
      case onnx::AttributeProto_AttributeType_INTS: {
        s += "[";
        for (int i = 0; i < a.ints_size(); ++i) s += (i ? ", " : "") + std::to_string(a.ints(i));
        s += "]";
        break;
      }
      case onnx::AttributeProto_AttributeType_TENSOR:
        s += TensorText(a.t());
        break;
      default:
        s += "?";
    }
  }
  return s;
}

// The ONNX nodes a backflow node became: those writing `name` or "name.something", in order.
inline std::vector<std::string> FormOf(const onnx::ModelProto& model, const std::string& name) {
  std::vector<std::string> texts;
  for (const onnx::NodeProto& node : model.graph().node()) {
    const std::string& out = node.output(0);
    if (out == name || out.rfind(name + ".", 0) == 0) texts.push_back(NodeText(node));
  }
  return texts;
}

inline const onnx::TensorProto* FindInitializer(const onnx::ModelProto& model,
                                                const std::string& name) {
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// The value of the Constant node writing `name`, or nullptr.
inline const onnx::TensorProto* FindConstant(const onnx::ModelProto& model,
                                             const std::string& name) {
  for (const onnx::NodeProto& node : model.graph().node()) {
    if (node.op_type() == "Constant" && node.output(0) == name) return &node.attribute(0).t();
  }
  return nullptr;
}

// "FLOAT[N, 3, 9, 9]" for a value info; dims with neither value nor param print as "?".
inline std::string TypeText(const onnx::ValueInfoProto& info) {
  const onnx::TypeProto_Tensor& type = info.type().tensor_type();
  std::string s = onnx::TensorProto_DataType_Name(type.elem_type()) + "[";
  for (int i = 0; i < type.shape().dim_size(); ++i) {
    const onnx::TensorShapeProto_Dimension& d = type.shape().dim(i);
    s += i ? ", " : "";
    s += d.has_dim_value() ? std::to_string(d.dim_value())
                           : (d.has_dim_param() ? d.dim_param() : std::string("?"));
  }
  return s + "]";
}

// "images: FLOAT[N, 1, 28, 28]" for each graph input (or output), in order.
inline std::vector<std::string> SignatureOf(
    const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& infos) {
  std::vector<std::string> texts;
  for (const onnx::ValueInfoProto& info : infos)
    texts.push_back(info.name() + ": " + TypeText(info));
  return texts;
}

// Checks that every shape onnx inferred for a tensor that keeps its backflow name agrees with
// the backflow graph's: the same rank, and each known ONNX dimension equal to backflow's (the
// batch dimension known to neither as a number). Returns how many tensors it compared.
inline int ExpectInferredShapesAgree(const onnx::ModelProto& inferred, const Graph& graph) {
  int compared = 0;
  for (const onnx::ValueInfoProto& info : inferred.graph().value_info()) {
    const std::optional<ValueId> id = graph.Find(info.name());
    if (!id.has_value()) continue;
    const Shape& shape = graph.value(*id).shape;
    const onnx::TensorShapeProto& dims = info.type().tensor_type().shape();
    ++compared;
    EXPECT_EQ(dims.dim_size(), shape.rank()) << info.name() << ": " << TypeText(info);
    if (dims.dim_size() != shape.rank()) continue;
    for (int i = 0; i < shape.rank(); ++i) {
      if (!dims.dim(i).has_dim_value()) continue;
      EXPECT_EQ(dims.dim(i).dim_value(), shape.dim(i))
          << info.name() << " dim " << i << ": onnx " << TypeText(info) << ", backflow "
          << shape.ToString();
    }
  }
  return compared;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_ENGINE_ONNX_ONNX_EXPORT_CHECKS_H_
