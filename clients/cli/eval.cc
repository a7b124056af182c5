// backflow eval: the stateless Evaluate RPC — a graph file, values for its inputs, and back come
// the outputs and the gradients of a scalar. The seeds' circuits in one line each:
//   backflow eval models/seeds/staged.pbtxt --set x=3 --set y=-4
#include <algorithm>
#include <cstdio>
#include <map>

#include "clients/cli/session.h"
#include "clients/cli/tensor_text.h"
#include "engine/api/import.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

constexpr size_t kMaxPrintedValues = 100;

void AddUnique(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

// Outputs as asked, else the graph's outputs and loss, then whatever else came back.
std::vector<std::string> OutputOrder(const Args& args, const v1::Graph& graph,
                                     const v1::EvaluateResponse& response) {
  std::vector<std::string> order = args.Values("output");
  if (!order.empty()) return order;
  for (const std::string& name : graph.outputs()) AddUnique(order, name);
  if (!graph.loss().empty()) AddUnique(order, graph.loss());
  const std::map<std::string, v1::Tensor> sorted(response.outputs().begin(),
                                                 response.outputs().end());
  for (const auto& [name, _] : sorted) AddUnique(order, name);
  std::erase_if(order, [&](const std::string& name) { return !response.outputs().contains(name); });
  return order;
}

std::string Line(const std::string& label, const Tensor& tensor) {
  if (tensor.shape().rank() == 0) return label + " = " + FormatValues(tensor, 1, "%.10g");
  return label + " " + FormatShape(tensor.shape().dims()) + " = " +
         FormatValues(tensor, kMaxPrintedValues, "%.10g");
}

// Prints the response as text or one JSON object; returns the exit code.
int Report(const Args& args, const std::vector<std::string>& outputs,
           const std::vector<std::string>& wrt, const std::string& target,
           const v1::EvaluateResponse& response) {
  nlohmann::json json = {{"outputs", nlohmann::json::object()},
                         {"gradients", nlohmann::json::object()}};
  auto emit = [&](const char* section, const std::string& name, const v1::Tensor& proto,
                  const std::string& label) {
    StatusOr<Tensor> tensor = FromWire(proto, name);
    if (!tensor.ok()) return Fail("eval", tensor.status());
    if (args.Has("json")) {
      json[section][name] = TensorJson(*tensor);
    } else {
      std::printf("%s\n", Line(label, *tensor).c_str());
    }
    return kExitOk;
  };
  for (const std::string& name : outputs) {
    auto it = response.outputs().find(name);
    if (it == response.outputs().end()) return Fail("eval", "the server sent no '" + name + "'");
    if (emit("outputs", name, it->second, name) != kExitOk) return kExitFailure;
  }
  for (const std::string& name : wrt) {
    auto it = response.gradients().find(name);
    if (it == response.gradients().end()) return Fail("eval", "no gradient for '" + name + "'");
    if (emit("gradients", name, it->second, "d" + target + "/d" + name) != kExitOk) {
      return kExitFailure;
    }
  }
  if (args.Has("json")) std::printf("%s\n", json.dump().c_str());
  return kExitOk;
}

// The request from the flags; a usage error (exit 2) or a bad file (exit 1) sets *exit_code.
std::optional<v1::EvaluateRequest> BuildRequest(const Args& args, std::vector<std::string>* wrt,
                                                int* exit_code) {
  const std::string dtype_text = args.Value("dtype", "float64");
  StatusOr<int64_t> seed = args.Integer("seed", 0);
  if (dtype_text != "float32" && dtype_text != "float64") {
    *exit_code = UsageError("eval", "--dtype: '" + dtype_text + "' is not float32 or float64");
    return std::nullopt;
  }
  if (!seed.ok()) {
    *exit_code = UsageError("eval", seed.status().message());
    return std::nullopt;
  }
  const std::string mode = args.Value("mode", "");
  if (!mode.empty() && mode != "training" && mode != "inference") {
    *exit_code = UsageError("eval", "--mode: '" + mode + "' is not training or inference");
    return std::nullopt;
  }
  const DType dtype = dtype_text == "float32" ? DType::kFloat32 : DType::kFloat64;
  v1::EvaluateRequest request;
  if (!mode.empty()) {
    request.set_mode(mode == "training" ? v1::EvaluateRequest::MODE_TRAINING
                                        : v1::EvaluateRequest::MODE_INFERENCE);
  }
  request.set_dtype(dtype == DType::kFloat32 ? v1::FLOAT32 : v1::FLOAT64);
  request.set_seed(static_cast<uint64_t>(*seed));
  std::vector<std::string> set_names;
  for (const std::string& text : args.Values("set")) {
    StatusOr<std::pair<std::string, std::string>> assignment = SplitAssignment(text);
    if (!assignment.ok()) {
      *exit_code = UsageError("eval", "--set: " + assignment.status().message());
      return std::nullopt;
    }
    StatusOr<Tensor> value = ParseTensorValue(assignment->second, dtype);
    if (!value.ok()) {
      *exit_code = Fail("eval: --set " + assignment->first, value.status());
      return std::nullopt;
    }
    TensorToProto(*value, &(*request.mutable_values())[assignment->first]);
    AddUnique(set_names, assignment->first);
  }
  *wrt = args.Has("wrt") ? args.Values("wrt") : set_names;
  for (const std::string& name : *wrt) request.add_wrt(name);
  for (const std::string& name : args.Values("output")) request.add_outputs(name);
  request.set_target(args.Value("target"));
  return request;
}

int RunEval(Session& session, const Args& args) {
  int exit_code = kExitOk;
  std::vector<std::string> wrt;
  std::optional<v1::EvaluateRequest> request = BuildRequest(args, &wrt, &exit_code);
  if (!request) return exit_code;
  StatusOr<v1::Graph> graph = LoadGraphText(args.operands()[0]);
  if (!graph.ok()) return Fail("eval", graph.status());
  *request->mutable_graph() = *graph;
  v1::EvaluateResponse response;
  if (grpc::Status status = session.Call(&Stub::Evaluate, *request, &response); !status.ok()) {
    return session.Fail("eval " + args.operands()[0], status);
  }
  const std::string target = args.Value("target", graph->loss().empty() ? "target" : graph->loss());
  return Report(args, OutputOrder(args, *graph, response), wrt, target, response);
}

}  // namespace

std::vector<Command> EvalCommands() {
  return {{
      .name = "eval",
      .operands = "GRAPH.pbtxt",
      .summary = "stateless evaluation: outputs and gradients, full precision",
      .details =
          "VALUE is a number (\"3\", \"-4.5\"), a comma list (\"1,2,3\": 1-d) or an .npy file.\n"
          "Gradients are of --target (default: the graph's loss) with respect to --wrt\n"
          "(default: every name given with --set). Parameters not set take their initializers.\n"
          "Example: backflow eval models/seeds/staged.pbtxt --set x=3 --set y=-4\n",
      .flags = {{"set", FlagKind::kList, "NAME=VALUE", "a placeholder's or parameter's value"},
                {"wrt", FlagKind::kList, "NAME", "differentiate with respect to NAME (repeat)"},
                {"target", FlagKind::kValue, "NAME", "the scalar to differentiate (default loss)"},
                {"output", FlagKind::kList, "NAME", "a tensor to return (repeat)"},
                {"dtype", FlagKind::kValue, "float32|float64", "default float64"},
                {"seed", FlagKind::kValue, "S", "seed of the parameters' initializers and dropout"},
                {"mode", FlagKind::kValue, "training|inference",
                 "default: training with gradients, else inference"},
                {"json", FlagKind::kSwitch, "",
                 "print {\"outputs\": {...}, \"gradients\": {...}}; scalars as numbers"}},
      .min_operands = 1,
      .max_operands = 1,
      .run = RunEval,
  }};
}

}  // namespace backflow::cli
