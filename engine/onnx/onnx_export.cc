#include "engine/onnx/onnx_export.h"

namespace backflow {

StatusOr<std::string> ExportOnnx(const Graph& graph,
                                 const std::unordered_map<std::string, Tensor>& values,
                                 const OnnxExportOptions& options) {
  return InternalError("ONNX export is not written yet");
}

}  // namespace backflow
