// backflow models create | list | show | delete.
#include <cstdio>

#include "clients/cli/model_info.h"
#include "clients/cli/session.h"
#include "engine/api/import.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

void PrintJson(const nlohmann::json& json) { std::printf("%s\n", json.dump(2).c_str()); }

// --dtype float32|float64 -> the wire enum.
StatusOr<v1::DataType> DTypeFromArgs(const Args& args, std::string_view fallback) {
  const std::string dtype = args.Value("dtype", fallback);
  if (dtype == "float32") return v1::FLOAT32;
  if (dtype == "float64") return v1::FLOAT64;
  return InvalidArgumentError("--dtype: '" + dtype + "' is not float32 or float64");
}

int RunCreate(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "models create";
  v1::CreateModelRequest request;
  StatusOr<v1::OptimizerSpec> optimizer = OptimizerFromArgs(args);
  StatusOr<int64_t> seed = args.Integer("seed", 0);
  StatusOr<v1::DataType> dtype = DTypeFromArgs(args, "float32");
  for (const Status& status : {optimizer.status(), seed.status(), dtype.status()}) {
    if (!status.ok()) return UsageError(kCommand, status.message());
  }
  StatusOr<v1::Graph> graph = LoadGraphText(args.operands()[0]);
  if (!graph.ok()) return Fail(kCommand, graph.status());
  *request.mutable_graph() = std::move(*graph);
  *request.mutable_optimizer() = *optimizer;
  request.set_seed(static_cast<uint64_t>(*seed));
  request.set_dtype(*dtype);
  request.set_name(args.Value("name"));
  v1::ModelInfo info;
  const grpc::Status status = session.Call(&Stub::CreateModel, request, &info);
  if (!status.ok()) return session.Fail(kCommand, status);
  if (args.Has("json")) {
    PrintJson(ModelInfoJson(info));
  } else {
    std::printf("%s\n", info.id().c_str());
  }
  return kExitOk;
}

int RunList(Session& session, const Args& args) {
  v1::ListModelsResponse response;
  const grpc::Status status = session.Call(&Stub::ListModels, v1::ListModelsRequest(), &response);
  if (!status.ok()) return session.Fail("models list", status);
  if (args.Has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::ModelInfo& info : response.models()) list.push_back(ModelInfoJson(info));
    PrintJson(list);
  } else {
    std::printf("%s", ModelTable(response.models()).c_str());
  }
  return kExitOk;
}

int RunShow(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  v1::ModelInfo info;
  const grpc::Status status = session.GetModel(id, &info);
  if (!status.ok()) return session.Fail("models show " + id, status);
  if (args.Has("json")) {
    PrintJson(ModelInfoJson(info));
  } else {
    std::printf("%s", DescribeModel(info).c_str());
  }
  return kExitOk;
}

int RunDelete(Session& session, const Args& args) {
  int exit_code = kExitOk;
  for (const std::string& id : args.operands()) {
    v1::DeleteModelRequest request;
    request.set_model_id(id);
    v1::DeleteModelResponse response;
    const grpc::Status status = session.Call(&Stub::DeleteModel, request, &response);
    if (status.ok()) {
      std::printf("deleted %s\n", id.c_str());
    } else {
      exit_code = session.Fail("models delete " + id, status);
    }
  }
  return exit_code;
}

const FlagSpec kJsonFlag = {"json", FlagKind::kSwitch, "", "print JSON"};

std::vector<FlagSpec> CreateFlags() {
  std::vector<FlagSpec> flags = OptimizerFlags();
  flags.insert(flags.end(),
               {{"seed", FlagKind::kValue, "S", "parameter initialisation seed (default 0)"},
                {"dtype", FlagKind::kValue, "float32|float64",
                 "parameters and computation (default float32)"},
                {"name", FlagKind::kValue, "NAME", "a label for people (ids come from the server)"},
                {"json", FlagKind::kSwitch, "", "print the new model's ModelInfo as JSON"}});
  return flags;
}

}  // namespace

std::vector<Command> ModelCommands() {
  return {
      {.name = "models create",
       .operands = "GRAPH.pbtxt",
       .summary = "create a model from a text-format graph; print its id",
       .details = "Example: backflow models create models/lenet5.pbtxt --optimizer sgd --lr 0.01 "
                  "--momentum 0.9\n",
       .flags = CreateFlags(),
       .min_operands = 1,
       .max_operands = 1,
       .run = RunCreate},
      {.name = "models list",
       .summary = "table of models: id, name, graph, params, step, checkpoint",
       .flags = {kJsonFlag},
       .run = RunList},
      {.name = "models show",
       .operands = "ID",
       .summary = "a model's parameters, inputs, outputs, loss, FLOPs and step",
       .flags = {kJsonFlag},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunShow},
      {.name = "models delete",
       .operands = "ID...",
       .summary = "delete models (and their checkpoints) from the server",
       .min_operands = 1,
       .max_operands = -1,
       .run = RunDelete},
  };
}

}  // namespace backflow::cli
