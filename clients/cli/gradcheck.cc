// backflow gradcheck: the CheckGradients RPC. The server compares the analytic gradients of a
// graph's loss (a file, or a model's) with centred finite differences in float64 and reports
// the worst elements of each tensor:
//   backflow gradcheck models/mlp_tanh.pbtxt --wrt w2,b2
// Exit codes: 0 every tensor agrees, 1 some tensor disagrees (or a failed call or file), 2 usage.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

#include "clients/cli/session.h"
#include "clients/cli/tensor_text.h"
#include "engine/api/import.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value + 0.0);  // + 0.0: no "-0"
  return buffer;
}

std::string Position(const v1::GradientCheckElement& e) {
  std::string text;
  for (int64_t p : e.position()) text += (text.empty() ? "" : ", ") + std::to_string(p);
  return "[" + text + "]";
}

nlohmann::json Json(const v1::CheckGradientsResponse& response) {
  nlohmann::json json = {{"ok", response.ok()},
                         {"loss", response.loss()},
                         {"evaluations", response.evaluations()},
                         {"drawn", response.drawn()},
                         {"tensors", nlohmann::json::array()}};
  for (const v1::GradientCheckTensor& t : response.tensors()) {
    nlohmann::json worst = nlohmann::json::array();
    for (const v1::GradientCheckElement& e : t.worst()) {
      worst.push_back({{"index", e.index()},
                       {"position", e.position()},
                       {"analytic", e.analytic()},
                       {"numeric", e.numeric()},
                       {"abs_error", e.abs_error()},
                       {"relative_error", e.relative_error()}});
    }
    json["tensors"].push_back({{"name", t.name()},
                               {"shape", t.shape()},
                               {"checked", t.checked()},
                               {"total", t.total()},
                               {"max_relative_error", t.max_relative_error()},
                               {"max_abs_error", t.max_abs_error()},
                               {"ok", t.ok()},
                               {"worst", worst}});
  }
  return json;
}

void PrintTable(const std::string& what, const v1::CheckGradientsResponse& response) {
  std::string drawn;
  for (const std::string& name : response.drawn()) drawn += (drawn.empty() ? "" : ", ") + name;
  std::printf("%s: loss %s, %lld forward runs%s\n\n", what.c_str(),
              Format("%.10g", response.loss()).c_str(),
              static_cast<long long>(response.evaluations()),
              drawn.empty() ? "" : ("; drawn: " + drawn).c_str());
  std::printf("%-16s %17s %12s %12s  %s\n", "tensor", "checked", "max rel err", "max abs err",
              "verdict");
  for (const v1::GradientCheckTensor& t : response.tensors()) {
    const std::string checked = std::to_string(t.checked()) + "/" + std::to_string(t.total());
    std::printf("%-16s %17s %12s %12s  %s\n", t.name().c_str(), checked.c_str(),
                Format("%.3g", t.max_relative_error()).c_str(),
                Format("%.3g", t.max_abs_error()).c_str(), t.ok() ? "ok" : "MISMATCH");
  }
  std::printf("\nworst elements (analytic vs numeric):\n");
  for (const v1::GradientCheckTensor& t : response.tensors()) {
    for (const v1::GradientCheckElement& e : t.worst()) {
      std::printf("  %-24s %16s %16s  rel %s\n", (t.name() + Position(e)).c_str(),
                  Format("%.9g", e.analytic()).c_str(), Format("%.9g", e.numeric()).c_str(),
                  Format("%.3g", e.relative_error()).c_str());
    }
  }
  int bad = 0;
  std::string names;
  for (const v1::GradientCheckTensor& t : response.tensors()) {
    if (t.ok()) continue;
    ++bad;
    names += (names.empty() ? "" : ", ") + t.name();
  }
  if (bad == 0) {
    std::printf("\nall %d tensors agree\n", response.tensors_size());
  } else {
    std::printf("\n%d of %d tensors disagree: %s\n", bad, response.tensors_size(), names.c_str());
  }
}

// The request's settings from the flags; a usage error's message if one is malformed.
Status SetOptions(const Args& args, v1::CheckGradientsRequest& request) {
  BF_ASSIGN_OR_RETURN(uint64_t seed, args.Unsigned("seed", 0));
  request.set_seed(seed);
  for (const std::string& list : args.Values("wrt")) {
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) request.add_wrt(list.substr(start, comma - start));
      start = comma + 1;
    }
  }
  const double big = std::numeric_limits<double>::max();
  if (args.Has("epsilon")) {
    BF_ASSIGN_OR_RETURN(double epsilon, args.Number("epsilon", 0, 0, big));
    if (epsilon == 0) return InvalidArgumentError("--epsilon: must be positive");
    request.set_epsilon(epsilon);
  }
  if (args.Has("tolerance")) {
    BF_ASSIGN_OR_RETURN(double tolerance, args.Number("tolerance", 0, 0, big));
    request.set_tolerance(tolerance);
  }
  if (args.Has("abs-tolerance")) {
    BF_ASSIGN_OR_RETURN(double tolerance, args.Number("abs-tolerance", 0, 0, big));
    request.set_abs_tolerance(tolerance);
  }
  const int64_t most = std::numeric_limits<int64_t>::max();
  if (args.Has("elements")) {
    BF_ASSIGN_OR_RETURN(int64_t elements, args.Integer("elements", 0, 1, most));
    request.set_max_elements_per_tensor(elements);
  }
  if (args.Has("worst")) {
    BF_ASSIGN_OR_RETURN(int64_t worst, args.Integer("worst", 0, 0, most));
    request.set_worst_k(worst);
  }
  if (args.Has("batch")) {
    BF_ASSIGN_OR_RETURN(int64_t batch, args.Integer("batch", 0, 1, most));
    request.set_batch(batch);
  }
  return Status::Ok();
}

int RunGradcheck(Session& session, const Args& args) {
  const bool from_model = args.Has("model");
  if (from_model == !args.operands().empty()) {
    return UsageError("gradcheck", "give GRAPH or --model ID (one of them)");
  }
  const std::string what = "gradcheck " + (from_model ? args.Value("model") : args.operands()[0]);
  v1::CheckGradientsRequest request;
  if (Status options = SetOptions(args, request); !options.ok()) {
    return UsageError("gradcheck", options.message());
  }
  for (const std::string& input : args.Values("input")) {
    StatusOr<std::pair<std::string, std::string>> assignment = SplitAssignment(input);
    if (!assignment.ok()) return UsageError("gradcheck", assignment.status().message());
    StatusOr<Tensor> tensor = ParseTensorValue(assignment->second, DType::kFloat64);
    if (!tensor.ok()) return Fail(what + ": --input " + assignment->first, tensor.status());
    TensorToProto(*tensor, &(*request.mutable_values())[assignment->first]);
  }
  if (from_model) {
    request.set_model_id(args.Value("model"));
  } else {
    StatusOr<v1::Graph> graph = LoadGraphText(args.operands()[0]);
    if (!graph.ok()) return Fail(what, graph.status());
    *request.mutable_graph() = *graph;
  }
  v1::CheckGradientsResponse response;
  if (grpc::Status status = session.Call(&Stub::CheckGradients, request, &response); !status.ok()) {
    return session.Fail(what, status);
  }
  if (args.Has("json")) {
    std::printf("%s\n", Json(response).dump().c_str());
  } else {
    PrintTable(what, response);
  }
  return response.ok() ? kExitOk : kExitFailure;
}

}  // namespace

std::vector<Command> GradcheckCommands() {
  return {{
      .name = "gradcheck",
      .operands = "[GRAPH.pbtxt]",
      .summary = "compare a graph's gradients with finite differences (exit 1: mismatch)",
      .details =
          "The server differentiates the graph's loss analytically and by centred finite\n"
          "differences in float64, at the given values and values drawn with --seed, and\n"
          "reports per tensor the elements checked, the largest errors and the worst elements.\n"
          "Exit status: 0 every tensor agrees, 1 some tensor disagrees, 2 a usage error.\n"
          "Example: backflow gradcheck models/mlp_tanh.pbtxt --wrt w2,b2\n",
      .flags = {{"input", FlagKind::kList, "NAME=VALUE",
                 "a placeholder's or parameter's value: .npy file, number or list (repeat)"},
                {"model", FlagKind::kValue, "ID", "check a model's graph on its parameters"},
                {"wrt", FlagKind::kList, "NAME,...", "tensors to check (default: parameters)"},
                {"seed", FlagKind::kValue, "S", "seed of drawn values and samples (default 0)"},
                {"epsilon", FlagKind::kValue, "E", "finite-difference step (default 1e-6)"},
                {"tolerance", FlagKind::kValue, "T", "largest relative error (default 1e-6)"},
                {"abs-tolerance", FlagKind::kValue, "A", "or absolute error (default 1e-8)"},
                {"elements", FlagKind::kValue, "N", "elements checked per tensor (default 32)"},
                {"worst", FlagKind::kValue, "K", "worst elements shown per tensor (default 5)"},
                {"batch", FlagKind::kValue, "N", "batch size of drawn inputs (default 2)"},
                {"json", FlagKind::kSwitch, "", "print the report as one JSON object"}},
      .min_operands = 0,
      .max_operands = 1,
      .run = RunGradcheck,
  }};
}

}  // namespace backflow::cli
