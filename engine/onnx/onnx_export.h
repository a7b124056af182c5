// ONNX export: a backflow model (its graph and the values of one snapshot) -> an onnx.ModelProto
// at opset kExportOnnxOpset that onnx.checker accepts and ONNX Runtime can serve.
//
// The exported graph is the inference graph: the graph's outputs and the nodes they need
// (losses, metrics and the placeholders only they read are left out). Parameters, running state
// and constants become initializers holding exactly the values given (bit for bit); the open
// batch dimension becomes the symbolic dimension "N". Each backflow op maps to the ONNX node(s)
// that compute it in inference mode (dropout is an ONNX Dropout, an identity there; batch_norm
// a BatchNormalization reading its running statistics). ImportOnnx maps what ExportOnnx writes
// back to the same ops, so import -> export -> import gives a graph that computes the same
// values bitwise.
//
// An op with no ONNX form (a loss on the path to an output, say) is InvalidArgument naming the
// node and its op.
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
  std::string doc;  // the model's doc_string ("model m-3 at step 250")
};

// `graph` is the model's forward graph (from ImportGraph); `values` hold every parameter and
// state it has, by name, in the model's dtype (float64 models export float64 initializers).
// Returns the serialized ModelProto.
StatusOr<std::string> ExportOnnx(const Graph& graph,
                                 const std::unordered_map<std::string, Tensor>& values,
                                 const OnnxExportOptions& options = {});

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_EXPORT_H_
