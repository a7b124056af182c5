// ExportOnnx's inside: what an op's ONNX form is written with. Each backflow op that has an
// ONNX form has an emitter (a function of one NodeWriter) in a table by op name; the emitters
// live beside the other ops of their family (onnx_export_elementwise.cc, onnx_export_layers.cc,
// onnx_export_shape.cc), and an op with no entry has no ONNX form.
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_INTERNAL_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_INTERNAL_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/graph.h"
#include "onnx/onnx_pb.h"

namespace backflow::onnx_export {

// The ONNX element type of a backflow dtype (FLOAT, DOUBLE, INT32, INT64).
onnx::TensorProto_DataType ElemType(DType dtype);

// `tensor` as a TensorProto named `name`: its dtype, dims and raw_data (the bytes as they are:
// little-endian on every machine backflow builds for, as ONNX's raw_data is).
void WriteTensor(const Tensor& tensor, const std::string& name, onnx::TensorProto* out);

// Note [Helper tensors]
// ImportOnnx, like PyTorch's exporter, takes a float initializer for a weight: it becomes a
// trained parameter. So every float tensor of the export that is not a parameter or running
// state (backflow's constants, the scalars of add_scalar, square, gelu, layer_norm, clip and
// dropout, the ones and zeros of a batch_norm without weight and bias) is written as a Constant
// node, as torch.onnx.export writes such values; ImportOnnx folds those into settings (Pow's
// exponent 2 becomes square) or backflow constants. Integer tensors (Reshape's shape, axes,
// pads) are never trained, and are int64 initializers.
void WriteConstant(const Tensor& tensor, const std::string& name, onnx::GraphProto* out);

// The tensor names of one exported model: every value name of the backflow graph is taken
// (those are the names its tensors keep), and Fresh hands out the helper names.
class NameTable {
 public:
  explicit NameTable(const Graph& graph);
  // `base` if it is free, else `base` with the lowest free "_k" suffix; taken from then on.
  std::string Fresh(const std::string& base);

 private:
  std::unordered_set<std::string> taken_;
};

// Writes the ONNX node(s) of one backflow node into the ONNX graph. Tensors keep their backflow
// names: input i is input(i), and the last node written must produce output(), the node's name.
// Intermediate tensors and helper initializers are named "NODE.suffix" (NODE the backflow
// node's name); every ONNX node is named after the tensor it produces.
class NodeWriter {
 public:
  NodeWriter(const Graph& graph, const Node& node, DType float_dtype, onnx::GraphProto* out,
             NameTable* names);

  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  const std::string& input(int i) const { return input_value(i).name; }
  const Value& input_value(int i) const;
  const std::string& output() const { return node_.name; }
  const Value& output_value() const { return graph_.value(node_.output); }
  // The exported model's float dtype: its float inputs, outputs and initializers have it.
  DType float_dtype() const { return float_dtype_; }

  // Appends the ONNX node `op_type` reading `inputs` and writing `output` ("" names an absent
  // optional input).
  onnx::NodeProto& Add(std::string_view op_type, std::vector<std::string> inputs,
                       const std::string& output);
  // A fresh name "NODE.suffix" for an intermediate tensor.
  std::string Temp(std::string_view suffix);

  // Helper tensors named "NODE.suffix" (made unique); each returns the name. Note [Helper
  // tensors]: float helpers are Constant nodes, integer ones initializers.
  // A rank-0 Constant of the model's float dtype (`value` rounded to float32 in a float32 model).
  std::string Scalar(std::string_view suffix, double value);
  // A rank-0 float32 Constant, whatever the model's dtype.
  std::string Float32Scalar(std::string_view suffix, double value);
  // A Constant of the model's float dtype, `shape`, every element `value`.
  std::string Filled(std::string_view suffix, const Shape& shape, double value);
  // A 1-D int64 initializer (shapes, axes, pads).
  std::string Int64s(std::string_view suffix, std::span<const int64_t> values);

 private:
  std::string AddConstant(std::string_view suffix, const Tensor& tensor);

  const Graph& graph_;
  const Node& node_;
  DType float_dtype_;
  onnx::GraphProto* out_;
  NameTable* names_;
};

// Attributes of an ONNX node. Floats are float32 in ONNX: a backflow double is rounded.
void SetInt(onnx::NodeProto& node, const std::string& name, int64_t value);
void SetFloat(onnx::NodeProto& node, const std::string& name, double value);
void SetInts(onnx::NodeProto& node, const std::string& name, std::span<const int64_t> values);
void SetString(onnx::NodeProto& node, const std::string& name, const std::string& value);

// Writes one node's ONNX form; errors are InvalidArgument naming the node.
using Emitter = Status (*)(NodeWriter& writer);
using EmitterTable = std::map<std::string, Emitter, std::less<>>;

// The emitters of each family, added to `table` by op name.
void AddElementwiseEmitters(EmitterTable& table);
void AddLayerEmitters(EmitterTable& table);
void AddShapeEmitters(EmitterTable& table);

// The emitter of `op`, or nullptr if it has no ONNX form.
Emitter FindEmitter(std::string_view op);

// Losses and metrics: ops that only training and evaluation against labels compute. An output
// of the graph that one of them produces is not part of the exported inference graph.
bool IsLossOrMetric(std::string_view op);

}  // namespace backflow::onnx_export

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_INTERNAL_H_
