// How the CLI takes an ONNX model (`models create --onnx`, `train --onnx`) and moves a model's
// bytes between files and the server (`models export`, `models create --backflow`).
#ifndef BACKFLOW_CLIENTS_CLI_ONNX_ARGS_H_
#define BACKFLOW_CLIENTS_CLI_ONNX_ARGS_H_

#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "clients/common/flags.h"
#include "engine/core/status.h"

namespace backflow::cli {

// --onnx FILE, --loss KIND, --output NAME, --labels NAME, --frozen A,B.
std::vector<clients::FlagSpec> OnnxFlags();

// The usage errors of those flags: --loss, --output, --labels or --frozen without --onnx; a
// --loss that is not a known kind; no --loss where `loss_required` (training needs one).
Status CheckOnnxFlags(const clients::Args& args, bool loss_required);

// The OnnxModel the flags describe but for its `model` bytes (ReadFileBytes of --onnx FILE):
// the file is read when it is needed, so that a missing one is a failure, not a usage error.
v1::OnnxModel OnnxOptionsFromArgs(const clients::Args& args);

// A file's bytes, and a file written with exactly `bytes` (errors name the file).
StatusOr<std::string> ReadFileBytes(const std::string& path);
Status WriteFileBytes(const std::string& path, std::string_view bytes);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_ONNX_ARGS_H_
