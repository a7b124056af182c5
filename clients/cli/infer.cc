// backflow infer: a forward pass of a stored model on inputs from .npy files (or numbers).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "clients/cli/npy.h"
#include "clients/cli/session.h"
#include "clients/cli/tensor_text.h"
#include "clients/cli/top_k.h"
#include "clients/common/models.h"
#include "engine/ir/tensor_proto.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

// The order to show outputs in: as asked, else the model's output order, then any others.
std::vector<std::string> OutputOrder(const Args& args, const v1::ModelInfo& info,
                                     const v1::InferResponse& response) {
  std::vector<std::string> order = args.Values("output");
  if (!order.empty()) return order;
  for (const v1::TensorInfo& output : info.outputs()) {
    if (response.outputs().contains(output.name())) order.push_back(output.name());
  }
  const std::map<std::string, v1::Tensor> sorted(response.outputs().begin(),
                                                 response.outputs().end());
  for (const auto& [name, _] : sorted) {
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  }
  return order;
}

// --top-k K and --labels FILE, read once before the call.
struct Ranking {
  int64_t k = 0;  // 0: print values, not classes
  std::vector<std::string> labels;
};

StatusOr<Ranking> ParseRanking(const Args& args) {
  Ranking ranking;
  if (args.Has("labels") && !args.Has("top-k")) {
    return InvalidArgumentError("--labels goes with --top-k K");
  }
  if (!args.Has("top-k")) return ranking;
  const std::string text = args.Value("top-k");
  char* end = nullptr;
  const long long k = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || k < 1) {
    return InvalidArgumentError("--top-k takes a count of classes (1 or more), not '" + text + "'");
  }
  ranking.k = k;
  if (args.Has("labels")) {
    StatusOr<std::vector<std::string>> labels = ReadLabels(args.Value("labels"));
    if (!labels.ok()) return labels.status();
    ranking.labels = std::move(*labels);
  }
  return ranking;
}

// One output as text (values, or its top classes), a file under --out, or JSON.
Status ReportOne(const std::string& name, const Tensor& tensor, const Args& args,
                 const Ranking& ranking, nlohmann::json& outputs) {
  const std::string shape = FormatShape(tensor.shape().dims());
  const std::string dir = args.Value("out");
  if (args.Has("json")) {
    outputs[name] = {{"shape", tensor.shape().dims()}, {"values", tensor.ToDoubles()}};
  } else if (!dir.empty()) {
    const std::string path = (std::filesystem::path(dir) / (name + ".npy")).string();
    if (Status written = WriteNpy(path, tensor); !written.ok()) return written;
    std::printf("%s %s -> %s\n", name.c_str(), shape.c_str(), path.c_str());
  } else if (ranking.k == 0) {
    const char* format = tensor.dtype() == DType::kFloat32 ? "%.7g" : "%.10g";
    std::printf("%s %s: %s\n", name.c_str(), shape.c_str(),
                FormatValues(tensor, 10, format).c_str());
  }
  if (ranking.k == 0) return Status::Ok();
  StatusOr<std::vector<std::vector<RankedClass>>> ranked = TopK(tensor, ranking.k);
  if (!ranked.ok()) {
    return InvalidArgumentError("output '" + name + "': " + ranked.status().message());
  }
  if (args.Has("json")) {
    outputs[name]["top_k"] = TopKJson(*ranked, ranking.labels);
  } else {
    std::fputs(FormatTopK(name, *ranked, ranking.labels).c_str(), stdout);
  }
  return Status::Ok();
}

// Prints, writes or collects the outputs; returns the exit code.
int Report(const std::string& what, const Args& args, const Ranking& ranking,
           const std::vector<std::string>& order, const v1::InferResponse& response) {
  const std::string dir = args.Value("out");
  std::error_code error;
  if (!dir.empty() && !std::filesystem::create_directories(dir, error) && error) {
    return Fail(what, dir + ": " + error.message());
  }
  nlohmann::json outputs = nlohmann::json::object();
  if (!args.Has("json")) std::printf("step %lld\n", static_cast<long long>(response.step()));
  for (const std::string& name : order) {
    auto it = response.outputs().find(name);
    if (it == response.outputs().end()) return Fail(what, "the server sent no '" + name + "'");
    StatusOr<Tensor> tensor = FromWire(it->second, "output '" + name + "'");
    if (!tensor.ok()) return Fail(what, tensor.status());
    if (Status reported = ReportOne(name, *tensor, args, ranking, outputs); !reported.ok()) {
      return Fail(what, reported);
    }
  }
  if (args.Has("json")) {
    std::printf("%s\n",
                nlohmann::json({{"step", response.step()}, {"outputs", outputs}}).dump().c_str());
  }
  return kExitOk;
}

int RunInfer(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  const std::string what = "infer " + id;
  if (args.Has("json") && args.Has("out")) return UsageError("infer", "--json or --out, not both");
  StatusOr<Ranking> ranking = ParseRanking(args);
  if (!ranking.ok()) return UsageError("infer", ranking.status().message());
  v1::ModelInfo info;
  if (grpc::Status status = session.GetModel(id, &info); !status.ok()) {
    return session.Fail(what, status);
  }
  const DType dtype = clients::ModelDType(info);
  v1::InferRequest request;
  request.set_model_id(id);
  for (const std::string& input : args.Values("input")) {
    StatusOr<std::pair<std::string, std::string>> assignment = SplitAssignment(input);
    if (!assignment.ok()) return UsageError("infer", assignment.status().message());
    StatusOr<Tensor> tensor = ParseTensorValue(assignment->second, dtype);
    if (!tensor.ok()) return Fail(what + ": --input " + assignment->first, tensor.status());
    TensorToProto(*tensor, &(*request.mutable_inputs())[assignment->first]);
  }
  for (const std::string& output : args.Values("output")) request.add_outputs(output);
  v1::InferResponse response;
  if (grpc::Status status = session.Call(&Stub::Infer, request, &response); !status.ok()) {
    return session.Fail(what, status);
  }
  return Report(what, args, *ranking, OutputOrder(args, info, response), response);
}

}  // namespace

std::vector<Command> InferCommands() {
  return {{
      .name = "infer",
      .operands = "ID",
      .summary = "forward pass on inputs from .npy files; print/save outputs",
      .details = "VALUE is an .npy file (cast to the model's dtype), a number or a comma list.\n"
                 "Example: backflow infer m-1 --input images=batch.npy --output logits\n"
                 "Classes: backflow infer m-1 --input images=batch.npy --top-k 3 \\\n"
                 "           --labels models/fashion_mnist_labels.txt\n",
      .flags = {{"input", FlagKind::kList, "NAME=VALUE", "a placeholder's value (repeat)"},
                {"output", FlagKind::kList, "NAME",
                 "a tensor to return (repeat; default: the graph's outputs)"},
                {"out", FlagKind::kValue, "DIR", "write DIR/NAME.npy per output"},
                {"top-k", FlagKind::kValue, "K",
                 "print each row's K likeliest classes with softmax probabilities"},
                {"labels", FlagKind::kValue, "FILE",
                 "class names for --top-k, one per line (line 1 names class 0)"},
                {"json", FlagKind::kSwitch, "",
                 "print {\"step\": S, \"outputs\": {NAME: {\"shape\", \"values\"}}}"}},
      .min_operands = 1,
      .max_operands = 1,
      .run = RunInfer,
  }};
}

}  // namespace backflow::cli
