// ExportOnnx: picks the inference graph, writes its inputs, initializers and outputs, and has
// each node's emitter (onnx_export_internal.h) write its ONNX form.
#include "engine/onnx/onnx_export.h"

#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/onnx/onnx_export_internal.h"
#include "onnx/onnx_pb.h"

namespace backflow {
namespace {

using onnx_export::ElemType;

// What torch 1.13 writes; onnx 1.12's checker accepts opset 14 with it.
constexpr int64_t kIrVersion = 7;

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// The graph's outputs less those a loss or metric computes (and repeats): what inference
// serves.
StatusOr<std::vector<ValueId>> InferenceOutputs(const Graph& graph) {
  std::vector<ValueId> outputs;
  std::unordered_set<ValueId> seen;
  for (ValueId id : graph.outputs()) {
    const Value& v = graph.value(id);
    if (v.kind == ValueKind::kNode && onnx_export::IsLossOrMetric(graph.node(v.producer).op)) {
      continue;
    }
    if (seen.insert(id).second) outputs.push_back(id);
  }
  if (outputs.empty()) {
    return InvalidArgumentError("graph " + Quote(graph.name) +
                                " has no output to export: its outputs are all losses or metrics");
  }
  return outputs;
}

Status CheckExportable(const Graph& graph, const std::vector<bool>& needed) {
  for (const Node& node : graph.nodes()) {
    if (!needed[static_cast<size_t>(node.output)]) continue;
    if (onnx_export::FindEmitter(node.op) != nullptr) continue;
    std::string message =
        "node " + Quote(node.name) + ": op " + Quote(node.op) + " has no ONNX form";
    if (onnx_export::IsLossOrMetric(node.op)) {
      message += " (a loss or metric; the exported inference graph's outputs must not need it)";
    }
    return InvalidArgumentError(std::move(message));
  }
  return Status::Ok();
}

// Checks the value of every needed parameter and state (there, float, of its shape) and
// returns their dtype, which must be one: the model's. float32 when there are none.
StatusOr<DType> ModelFloatDType(const Graph& graph,
                                const std::unordered_map<std::string, Tensor>& values,
                                const std::vector<bool>& needed) {
  std::optional<DType> dtype;
  std::string first;
  for (ValueId id = 0; id < graph.num_values(); ++id) {
    const Value& v = graph.value(id);
    if (!needed[static_cast<size_t>(id)]) continue;
    if (v.kind != ValueKind::kParameter && v.kind != ValueKind::kState) continue;
    const std::string where = std::string(ValueKindName(v.kind)) + " " + Quote(v.name);
    auto it = values.find(v.name);
    if (it == values.end()) return InvalidArgumentError(where + " has no value to export");
    const Tensor& t = it->second;
    if (IsInteger(t.dtype())) {
      return InvalidArgumentError(where + ": its value is " + std::string(DTypeName(t.dtype())) +
                                  ", not float32 or float64");
    }
    if (t.shape() != v.shape) {
      return InvalidArgumentError(where + " is " + v.shape.ToString() + " but its value is " +
                                  t.shape().ToString());
    }
    if (dtype.has_value() && *dtype != t.dtype()) {
      return InvalidArgumentError(where + ": its value is " + std::string(DTypeName(t.dtype())) +
                                  " but " + Quote(first) + "'s is " +
                                  std::string(DTypeName(*dtype)) + " (one dtype per model)");
    }
    dtype = t.dtype();
    first = v.name;
  }
  return dtype.value_or(DType::kFloat32);
}

// A tensor's type and shape; the open batch dimension is the symbolic "N".
void WriteValueInfo(const std::string& name, DType dtype, const Shape& shape,
                    onnx::ValueInfoProto* out) {
  out->set_name(name);
  onnx::TypeProto_Tensor& type = *out->mutable_type()->mutable_tensor_type();
  type.set_elem_type(ElemType(dtype));
  onnx::TensorShapeProto& dims = *type.mutable_shape();
  for (int64_t d : shape.dims()) {
    if (d == kBatchDim) {
      dims.add_dim()->set_dim_param("N");
    } else {
      dims.add_dim()->set_dim_value(d);
    }
  }
}

DType ExportedDType(const Value& v, DType float_dtype) {
  return IsInteger(v.dtype) ? v.dtype : float_dtype;
}

// Placeholders become graph inputs; parameters and state initializers holding their values as
// given; constants Constant nodes (Note [Helper tensors]) in the model's dtype, the dtype a plan
// computes them in.
void WriteSources(const Graph& graph, const std::unordered_map<std::string, Tensor>& values,
                  const std::vector<bool>& needed, DType float_dtype, onnx::GraphProto& out) {
  for (ValueId id = 0; id < graph.num_values(); ++id) {
    const Value& v = graph.value(id);
    if (!needed[static_cast<size_t>(id)]) continue;
    switch (v.kind) {
      case ValueKind::kPlaceholder:
        WriteValueInfo(v.name, ExportedDType(v, float_dtype), v.shape, out.add_input());
        break;
      case ValueKind::kParameter:
      case ValueKind::kState:
        onnx_export::WriteTensor(values.at(v.name), v.name, out.add_initializer());
        break;
      case ValueKind::kConstant:
        onnx_export::WriteConstant(v.constant->CastTo(float_dtype), v.name, &out);
        break;
      case ValueKind::kNode:
        break;
    }
  }
}

Status WriteNodes(const Graph& graph, const std::vector<bool>& needed, DType float_dtype,
                  onnx::GraphProto& out) {
  onnx_export::NameTable names(graph);
  for (const Node& node : graph.nodes()) {
    if (!needed[static_cast<size_t>(node.output)]) continue;
    onnx_export::NodeWriter writer(graph, node, float_dtype, &out, &names);
    BF_RETURN_IF_ERROR(onnx_export::FindEmitter(node.op)(writer));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> ExportOnnx(const Graph& graph,
                                 const std::unordered_map<std::string, Tensor>& values,
                                 const OnnxExportOptions& options) {
  BF_ASSIGN_OR_RETURN(const std::vector<ValueId> outputs, InferenceOutputs(graph));
  const std::vector<bool> needed = ValuesNeededFor(graph, outputs);
  BF_RETURN_IF_ERROR(CheckExportable(graph, needed));
  BF_ASSIGN_OR_RETURN(const DType float_dtype, ModelFloatDType(graph, values, needed));

  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  onnx::OperatorSetIdProto& opset = *model.add_opset_import();
  opset.set_domain("");
  opset.set_version(kExportOnnxOpset);
  model.set_producer_name("backflow");
  model.set_producer_version(options.producer_version);
  model.set_doc_string(options.doc);
  onnx::GraphProto& out = *model.mutable_graph();
  out.set_name(graph.name.empty() ? "backflow" : graph.name);
  WriteSources(graph, values, needed, float_dtype, out);
  BF_RETURN_IF_ERROR(WriteNodes(graph, needed, float_dtype, out));
  for (ValueId id : outputs) {
    const Value& v = graph.value(id);
    WriteValueInfo(v.name, ExportedDType(v, float_dtype), v.shape, out.add_output());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return InternalError("ONNX export of graph " + Quote(graph.name) + " failed to serialize");
  }
  return bytes;
}

}  // namespace backflow
