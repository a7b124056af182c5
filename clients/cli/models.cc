// backflow models create | list | show | delete.
#include <cstdio>

#include "clients/cli/model_info.h"
#include "clients/cli/onnx_args.h"
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

// Where `models create` takes its model from: GRAPH.pbtxt, --onnx FILE or --backflow FILE
// (exactly one), and which flags go with each. InvalidArgument is a usage error.
Status CheckCreateSources(const Args& args) {
  const int sources = static_cast<int>(args.operands().size()) + (args.Has("onnx") ? 1 : 0) +
                      (args.Has("backflow") ? 1 : 0);
  if (sources == 0) {
    return InvalidArgumentError("missing GRAPH.pbtxt (or --onnx FILE, or --backflow FILE)");
  }
  if (sources > 1) {
    return InvalidArgumentError("give one of GRAPH.pbtxt, --onnx FILE and --backflow FILE");
  }
  if (args.Has("backflow")) {
    std::vector<std::string_view> fixed = {"seed", "dtype"};
    for (const FlagSpec& flag : OptimizerFlags()) fixed.push_back(flag.name);
    for (std::string_view flag : fixed) {
      if (args.Has(flag)) {
        return InvalidArgumentError("--" + std::string(flag) +
                                    " does not apply to --backflow FILE, which recreates the "
                                    "model as it was exported");
      }
    }
  }
  return CheckOnnxFlags(args, /*loss_required=*/false);
}

// The request for `models create` from files already checked by CheckCreateSources; a file
// that cannot be read or parsed is an error naming it.
StatusOr<v1::CreateModelRequest> LoadCreateRequest(const Args& args) {
  v1::CreateModelRequest request;
  if (args.Has("backflow")) {
    const std::string path = args.Value("backflow");
    BF_ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
    if (!request.ParseFromString(bytes)) {
      return InvalidArgumentError(path +
                                  ": not a CreateModelRequest (write one with `backflow "
                                  "models export ID --backflow FILE`)");
    }
    return request;
  }
  if (args.Has("onnx")) {
    *request.mutable_onnx() = OnnxOptionsFromArgs(args);
    BF_ASSIGN_OR_RETURN(*request.mutable_onnx()->mutable_model(),
                        ReadFileBytes(args.Value("onnx")));
  } else {
    BF_ASSIGN_OR_RETURN(*request.mutable_graph(), LoadGraphText(args.operands()[0]));
  }
  return request;
}

int RunCreate(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "models create";
  StatusOr<v1::OptimizerSpec> optimizer = OptimizerFromArgs(args);
  StatusOr<int64_t> seed = args.Integer("seed", 0);
  StatusOr<v1::DataType> dtype = DTypeFromArgs(args, "float32");
  StatusOr<int64_t> batch_rows = args.Integer("max-batch-rows", 0);
  StatusOr<int64_t> batch_delay = args.Integer("batch-delay-us", 0);
  for (const Status& status : {CheckCreateSources(args), optimizer.status(), seed.status(),
                               dtype.status(), batch_rows.status(), batch_delay.status()}) {
    if (!status.ok()) return UsageError(kCommand, status.message());
  }
  StatusOr<v1::CreateModelRequest> request = LoadCreateRequest(args);
  if (!request.ok()) return Fail(kCommand, request.status());
  if (!args.Has("backflow")) {
    *request->mutable_optimizer() = *optimizer;
    request->set_seed(static_cast<uint64_t>(*seed));
    request->set_dtype(*dtype);
  }
  if (args.Has("name") || !args.Has("backflow")) request->set_name(args.Value("name"));
  // The server checks the values (INVALID_ARGUMENT naming the field).
  if (args.Has("max-batch-rows")) request->mutable_batching()->set_max_rows(*batch_rows);
  if (args.Has("batch-delay-us")) request->mutable_batching()->set_delay_us(*batch_delay);
  v1::ModelInfo info;
  const grpc::Status status = session.Call(&Stub::CreateModel, *request, &info);
  if (!status.ok()) return session.Fail(kCommand, status);
  if (args.Has("json")) {
    PrintJson(ModelInfoJson(info));
  } else {
    std::printf("%s\n", info.id().c_str());
  }
  return kExitOk;
}

int RunExport(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  const std::string what = "models export " + id;
  if (args.Has("onnx") == args.Has("backflow")) {
    return UsageError("models export", "give --onnx FILE or --backflow FILE (one of them)");
  }
  const bool onnx = args.Has("onnx");
  const std::string path = args.Value(onnx ? "onnx" : "backflow");
  v1::ExportModelRequest request;
  request.set_model_id(id);
  request.set_format(onnx ? v1::ExportModelRequest::ONNX : v1::ExportModelRequest::BACKFLOW);
  v1::ExportModelResponse response;
  const grpc::Status status = session.Call(&Stub::ExportModel, request, &response);
  if (!status.ok()) return session.Fail(what, status);
  const std::string bytes = onnx ? response.onnx() : response.model().SerializeAsString();
  if (Status written = WriteFileBytes(path, bytes); !written.ok()) return Fail(what, written);
  std::printf("model %s at step %lld -> %s (%zu bytes)\n", id.c_str(),
              static_cast<long long>(response.step()), path.c_str(), bytes.size());
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
  const grpc::Status status = session.GetModel(id, &info, args.Has("history"));
  if (!status.ok()) return session.Fail("models show " + id, status);
  if (args.Has("json")) {
    PrintJson(ModelInfoJson(info));
  } else {
    std::printf("%s", DescribeModel(info).c_str());
    if (args.Has("history")) std::printf("history\n%s", HistoryTable(info).c_str());
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
  std::vector<FlagSpec> flags = OnnxFlags();
  flags.push_back({"backflow", FlagKind::kValue, "FILE",
                   "recreate a model from `models export ID --backflow FILE`"});
  const std::vector<FlagSpec> optimizer = OptimizerFlags();
  flags.insert(flags.end(), optimizer.begin(), optimizer.end());
  flags.insert(flags.end(),
               {{"seed", FlagKind::kValue, "S", "parameter initialisation seed (default 0)"},
                {"dtype", FlagKind::kValue, "float32|float64",
                 "parameters and computation (default float32)"},
                {"name", FlagKind::kValue, "NAME", "a label for people (ids come from the server)"},
                {"max-batch-rows", FlagKind::kValue, "N",
                 "dynamic batching of its inference: rows per run, 1: off\n(default: the "
                 "server's --max-batch-rows)"},
                {"batch-delay-us", FlagKind::kValue, "US",
                 "how long a request may wait to be batched (default: the\nserver's)"},
                {"json", FlagKind::kSwitch, "", "print the new model's ModelInfo as JSON"}});
  return flags;
}

}  // namespace

std::vector<Command> ModelCommands() {
  return {
      {.name = "models create",
       .operands = "[GRAPH.pbtxt]",
       .summary = "create a model from a text-format graph (or --onnx FILE); print its id",
       .details = "Examples: backflow models create models/lenet5.pbtxt --optimizer sgd --lr 0.01 "
                  "--momentum 0.9\n"
                  "          backflow models create --onnx mlp.onnx --loss softmax_cross_entropy "
                  "--optimizer adam\n"
                  "          backflow models create --backflow model.pb   (from `models export`)\n",
       .flags = CreateFlags(),
       .min_operands = 0,
       .max_operands = 1,
       .run = RunCreate},
      {.name = "models export",
       .operands = "ID",
       .summary = "write a model with its current values as ONNX or as backflow's request",
       .details =
           "--onnx FILE: an ONNX model (opset 14, inference graph, no loss) holding the values\n"
           "of one snapshot bit for bit. --backflow FILE: the binary CreateModelRequest that\n"
           "recreates the model (graph, optimizer, dtype, values; not optimizer moments), for\n"
           "`models create --backflow FILE`. Prints the step the values are from.\n",
       .flags = {{"onnx", FlagKind::kValue, "FILE", "write ONNX"},
                 {"backflow", FlagKind::kValue, "FILE", "write a binary CreateModelRequest"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunExport},
      {.name = "models list",
       .summary = "table of models: id, name, graph, params, step, checkpoint",
       .flags = {kJsonFlag},
       .run = RunList},
      {.name = "models show",
       .operands = "ID",
       .summary = "a model's parameters, inputs, outputs, loss, FLOPs, step and training",
       .details = "--history adds the loss curve the server keeps: the first step, every\n"
                  "stride-th and the latest, up to 1,025 points, kept with the checkpoints.\n",
       .flags = {kJsonFlag,
                 {"history", FlagKind::kSwitch, "", "the loss curve (step, loss, metrics, time)"}},
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
