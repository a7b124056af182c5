// ONNX import: an onnx.ModelProto (as torch.onnx.export writes it) -> a backflow.v1.Graph plus
// the values of its parameters and running state, ready for CreateModel.
//
// The translation is static: every ONNX tensor becomes either a tensor of the backflow graph or
// a value known at import time. Known values (Constant nodes, integer initializers, and what
// Shape, Gather, Unsqueeze, Concat, Slice, Cast and integer arithmetic compute from them) are
// folded here, so the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains that PyTorch
// writes for `x.view(x.size(0), -1)` or multi-head attention become plain reshapes. Shapes are
// known for every dimension but the batch: dimension 0 of a graph input whose size is symbolic
// (a dim_param) is backflow's open batch dimension. Known values that depend on the batch size
// (x.size(0) * heads) are tracked as multiples of it and written as the -1 of a reshape.
//
// Errors are InvalidArgument naming the ONNX node (its name, or its first output), its op_type
// and the opset, and what is wrong; an operator outside the supported set lists the set.
// Models with external data are refused (onnx 1.12's loader has a path traversal there,
// CVE-2022-25882), as are opsets outside [kMinOnnxOpset, kMaxOnnxOpset] of the default domain.
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_IMPORT_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_IMPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/import.h"  // GraphLimits

namespace backflow {

inline constexpr int64_t kMinOnnxOpset = 11;
inline constexpr int64_t kMaxOnnxOpset = 17;

// The loss appended to an imported graph, on one of its outputs.
struct OnnxLossSpec {
  std::string kind;  // "softmax_cross_entropy", "squared_error", "sigmoid_cross_entropy"
  std::string output;  // an ONNX graph output; empty: the only one
  std::string labels = "labels";  // the placeholder added for the labels or targets
};

struct OnnxImportOptions {
  std::string name;  // the graph's name; empty: the ONNX graph's
  std::optional<OnnxLossSpec> loss;  // none: inference only
  std::vector<std::string> frozen;  // float initializers kept as constants
  GraphLimits limits;
};

struct OnnxImported {
  backflow::v1::Graph graph;
  // Parameters and running state by name, as float32 (ONNX's float initializers).
  std::map<std::string, Tensor> values;
  int64_t opset = 0;  // of the default domain
  std::string producer;  // "pytorch 1.13.0"
};

// The operators ImportOnnx translates, sorted ("Add", "AveragePool", ...).
const std::vector<std::string>& SupportedOnnxOps();

StatusOr<OnnxImported> ImportOnnx(std::string_view model_bytes, const OnnxImportOptions& options);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_IMPORT_H_
