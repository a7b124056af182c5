// Models in and out of the server in interchange formats: the ONNX form of CreateModel, and
// ExportModel (ONNX, or backflow's own CreateModelRequest).
//
// Note [ONNX models are stored as backflow models]
// A CreateModelRequest with `onnx` is translated once, at creation, into the plain request it
// stands for: `graph` the imported graph, `initial_parameters` the ONNX initializers in the
// model's dtype, `onnx` cleared. The record keeps only that request, so the data directory,
// restarts, ModelInfo and ExportModel's BACKFLOW format treat the model like any other, and a
// restart never depends on the ONNX importer translating the same bytes the same way again.
#ifndef BACKFLOW_SERVER_MODEL_IO_H_
#define BACKFLOW_SERVER_MODEL_IO_H_

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"
#include "engine/ir/import.h"

namespace backflow::server {

// Rewrites a request with `onnx` into the plain request it stands for (Note [ONNX models are
// stored as backflow models]); a request without it is left as it is. InvalidArgument if the
// request also sets `graph` or `initial_parameters`; ImportOnnx's errors (InvalidArgument,
// ResourceExhausted past `limits`) as they come.
Status ResolveOnnxRequest(const GraphLimits& limits, v1::CreateModelRequest* request);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_MODEL_IO_H_
