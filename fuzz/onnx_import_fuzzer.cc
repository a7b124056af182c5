// Fuzz target: the ONNX importer. The input is an ONNX model file (a serialized onnx.ModelProto),
// as CreateModel's `onnx` field and `backflow models create --onnx` take it. ImportOnnx must
// answer any bytes with a Status; a model it accepts is imported again with a loss appended
// (what training from ONNX does), and every graph it produces goes through ImportGraph, as
// CreateModel then builds the model from it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/api/import.h"
#include "engine/onnx/onnx_import.h"
#include "fuzz/fuzz_limits.h"

namespace {

void ImportAndBuild(std::string_view bytes, const backflow::OnnxImportOptions& options) {
  backflow::StatusOr<backflow::OnnxImported> imported = backflow::ImportOnnx(bytes, options);
  if (imported.ok()) (void)backflow::ImportGraph(imported->graph, options.limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  backflow::OnnxImportOptions options;
  options.limits = backflow::fuzz::Limits();
  backflow::StatusOr<backflow::OnnxImported> plain = backflow::ImportOnnx(bytes, options);
  if (!plain.ok()) return 0;
  (void)backflow::ImportGraph(plain->graph, options.limits);
  for (const char* kind : {"softmax_cross_entropy", "squared_error"}) {
    options.loss = backflow::OnnxLossSpec{.kind = kind};
    ImportAndBuild(bytes, options);
  }
  return 0;
}
