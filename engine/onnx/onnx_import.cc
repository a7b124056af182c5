#include "engine/onnx/onnx_import.h"

namespace backflow {

const std::vector<std::string>& SupportedOnnxOps() {
  static const std::vector<std::string> ops;
  return ops;
}

StatusOr<OnnxImported> ImportOnnx(std::string_view model_bytes, const OnnxImportOptions& options) {
  return InternalError("ONNX import is not written yet");
}

}  // namespace backflow
