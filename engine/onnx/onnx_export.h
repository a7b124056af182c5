// ONNX export: a backflow model (its graph and the values of one snapshot) -> an onnx.ModelProto
// at opset kExportOnnxOpset that onnx.checker accepts and ONNX Runtime can serve.
//
// The exported graph is the inference graph: the graph's outputs and the nodes they need
// (losses, metrics and the placeholders only they read are left out; so are outputs that a loss
// or metric computes). Placeholders become graph inputs, float ones in the model's dtype.
// Parameters and running state become initializers holding exactly the values given (bit for
// bit, in their dtype); constants and every other float helper tensor become Constant nodes
// (ImportOnnx trains float initializers; Note [Helper tensors] in onnx_export_internal.h);
// integer helpers (Reshape's shape, axes, pads) are int64 initializers. The open batch
// dimension becomes the symbolic dimension "N". Tensors keep their backflow names, ONNX nodes
// are named after the tensor they write, and helpers are named "NODE.suffix".
//
// Each backflow op maps to the ONNX node(s) that compute it in inference mode (dropout is an
// ONNX Dropout, an identity there; batch_norm a BatchNormalization reading its running
// statistics); gelu and layer_norm, which opset 14 lacks, are written as torch.onnx.export
// writes them. docs/onnx.md lists the mapping. ImportOnnx reads what ExportOnnx writes, so
// import -> export -> import gives a graph that computes the same values bitwise.
//
// An op with no ONNX form (a loss on the path to an output, say) is InvalidArgument naming the
// node and its op.
//
// Thread safety: ExportOnnx reads only its arguments; any number of calls may run at once.
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/graph.h"

namespace backflow {

inline constexpr int64_t kExportOnnxOpset = 14;

struct OnnxExportOptions {
  std::string producer_version;  // written as producer_name "backflow", this version
  std::string doc;               // the model's doc_string ("model m-3 at step 250")
};

// `graph` is the model's forward graph (from ImportGraph); `values` hold every parameter and
// state the exported outputs need, by name, in the model's dtype: all float32 or all float64
// (float64 models export float64 initializers, inputs and outputs; a model with no values is
// float32). Returns the serialized ModelProto (ir_version 7, opset 14, producer "backflow").
// InvalidArgument for a value missing, misshapen, integer or of the other float dtype, and for
// a graph whose outputs are all losses or metrics.
StatusOr<std::string> ExportOnnx(const Graph& graph,
                                 const std::unordered_map<std::string, Tensor>& values,
                                 const OnnxExportOptions& options = {});

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_H_
