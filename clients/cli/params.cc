// backflow params get | set: a model's parameters in and out as .npy files.
#include <cstdio>
#include <filesystem>
#include <map>

#include "clients/cli/npy.h"
#include "clients/cli/session.h"
#include "clients/cli/tensor_text.h"
#include "clients/common/models.h"
#include "engine/ir/tensor_proto.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

// Parameter names become file names; keep a name with a slash inside DIR.
std::string FileNameFor(std::string name) {
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  return name + ".npy";
}

int RunGet(Session& session, const Args& args) {
  const std::string what = "params get " + args.operands()[0];
  v1::GetParametersRequest request;
  request.set_model_id(args.operands()[0]);
  for (const std::string& name : args.Values("name")) request.add_names(name);
  v1::GetParametersResponse response;
  const grpc::Status status = session.Call(&Stub::GetParameters, request, &response);
  if (!status.ok()) return session.Fail(what, status);

  const std::string dir = args.Value("out");
  std::error_code error;
  if (!dir.empty() && !std::filesystem::create_directories(dir, error) && error) {
    return Fail(what, dir + ": " + error.message());
  }
  std::printf("step %lld\n", static_cast<long long>(response.step()));
  // The wire map has no order; print by name.
  const std::map<std::string, v1::Tensor> sorted(response.parameters().begin(),
                                                 response.parameters().end());
  for (const auto& [name, proto] : sorted) {
    StatusOr<Tensor> tensor = FromWire(proto, "parameter '" + name + "'");
    if (!tensor.ok()) return Fail(what, tensor.status());
    const std::string shape = FormatShape(tensor->shape().dims());
    if (dir.empty()) {
      std::printf("%s %s: %s\n", name.c_str(), shape.c_str(),
                  FormatValues(*tensor, 6, "%.7g").c_str());
      continue;
    }
    const std::string path = (std::filesystem::path(dir) / FileNameFor(name)).string();
    if (Status written = WriteNpy(path, *tensor); !written.ok()) return Fail(what, written);
    std::printf("%s %s -> %s\n", name.c_str(), shape.c_str(), path.c_str());
  }
  return kExitOk;
}

int RunSet(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  const std::string what = "params set " + id;
  v1::SetParametersRequest request;
  request.set_model_id(id);
  if (args.Has("if-step")) {
    StatusOr<int64_t> if_step = args.Integer("if-step", 0);
    if (!if_step.ok()) return UsageError("params set", if_step.status().message());
    request.set_if_step(*if_step);
  }
  std::vector<std::pair<std::string, std::string>> assignments;  // NAME, FILE
  for (size_t i = 1; i < args.operands().size(); ++i) {
    StatusOr<std::pair<std::string, std::string>> assignment = SplitAssignment(args.operands()[i]);
    if (!assignment.ok()) return UsageError("params set", assignment.status().message());
    assignments.push_back(std::move(*assignment));
  }
  // The model's dtype, so a float64 file can set a float32 model (and the reverse).
  v1::ModelInfo info;
  if (grpc::Status status = session.GetModel(id, &info); !status.ok()) {
    return session.Fail(what, status);
  }
  const DType dtype = clients::ModelDType(info);
  for (const auto& [name, path] : assignments) {
    StatusOr<Tensor> tensor = ReadNpy(path);
    if (!tensor.ok()) return Fail(what, tensor.status());
    TensorToProto(tensor->dtype() == dtype ? *tensor : tensor->CastTo(dtype),
                  &(*request.mutable_parameters())[name]);
  }
  v1::SetParametersResponse response;
  if (grpc::Status status = session.Call(&Stub::SetParameters, request, &response); !status.ok()) {
    return session.Fail(what, status);
  }
  const int count = request.parameters_size();
  std::printf("set %d parameter%s of %s at step %lld\n", count, count == 1 ? "" : "s", id.c_str(),
              static_cast<long long>(response.step()));
  return kExitOk;
}

}  // namespace

std::vector<Command> ParamCommands() {
  return {
      {.name = "params get",
       .operands = "ID",
       .summary = "write parameters to DIR/NAME.npy (or print first values)",
       .details = "The files load with numpy.load (format 1.0, '<f4' or '<f8', C order).\n",
       .flags = {{"name", FlagKind::kList, "NAME", "only this parameter (repeat for more)"},
                 {"out", FlagKind::kValue, "DIR", "write DIR/NAME.npy per parameter"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunGet},
      {.name = "params set",
       .operands = "ID NAME=FILE.npy...",
       .summary = "set parameters from .npy files (cast to the model's dtype)",
       .details = "Example: backflow params set m-1 f7_b=bias.npy --if-step 1874\n",
       .flags = {{"if-step", FlagKind::kValue, "S",
                  "apply only if the model is at step S (else FAILED_PRECONDITION)"}},
       .min_operands = 2,
       .max_operands = -1,
       .run = RunSet},
  };
}

}  // namespace backflow::cli
