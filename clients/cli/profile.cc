// backflow profile: where a model's step (or inference) goes on the server, node by node, from
// the RunProfile the server answers a request with `profile: true` (docs/cli.md).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "clients/cli/session.h"
#include "clients/common/models.h"
#include "clients/common/synthetic.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;

constexpr std::string_view kModes[] = {"gradients", "train", "infer"};

struct ProfileArgs {
  std::string mode;
  int64_t batch = 32;
  int64_t runs = 5;
  int64_t classes = 10;
  int64_t top = 25;
  uint64_t seed = 1;
};

// The class count of synthetic labels: --classes, else the last dimension of the model's first
// output when it is a [batch, classes] tensor (a classifier's logits), else 10.
int64_t DefaultClasses(const v1::ModelInfo& info) {
  if (info.outputs_size() > 0) {
    const v1::TensorInfo& output = info.outputs(0);
    if (output.shape_size() == 2 && output.shape(1) > 0) return output.shape(1);
  }
  return 10;
}

StatusOr<ProfileArgs> ParseProfileArgs(const Args& args, const v1::ModelInfo& info) {
  ProfileArgs parsed;
  BF_ASSIGN_OR_RETURN(parsed.mode, args.Choice("mode", "gradients", kModes));
  BF_ASSIGN_OR_RETURN(parsed.batch, args.Integer("batch", 32, 1, 1 << 20));
  BF_ASSIGN_OR_RETURN(parsed.runs, args.Integer("runs", 5, 1, 1000));
  BF_ASSIGN_OR_RETURN(parsed.classes, args.Integer("classes", DefaultClasses(info), 1, 1 << 30));
  BF_ASSIGN_OR_RETURN(parsed.top, args.Integer("top", 25, 0, 1 << 30));
  BF_ASSIGN_OR_RETURN(parsed.seed, args.Unsigned("seed", 1));
  return parsed;
}

// A synthetic batch for the model's placeholders (clients/common/synthetic.h). Inference leaves
// out labels (the placeholders of shape [-1]), as a client asking for predictions does.
google::protobuf::Map<std::string, v1::Tensor> MakeBatch(const v1::ModelInfo& info,
                                                         const ProfileArgs& args) {
  v1::Graph inputs;
  for (const v1::TensorInfo& input : info.inputs()) {
    const bool labels = input.shape_size() == 1 && input.shape(0) < 0;
    if (labels && args.mode == "infer") continue;
    v1::Placeholder* placeholder = inputs.add_placeholders();
    placeholder->set_name(input.name());
    *placeholder->mutable_shape() = input.shape();
    if (input.dtype() == v1::INT32 || input.dtype() == v1::INT64) {
      placeholder->set_dtype(input.dtype());
    }
  }
  const clients::SyntheticSpec spec{
      .batch = args.batch,
      .classes = args.classes,
      .dtype = clients::ModelDType(info) == DType::kFloat64 ? v1::FLOAT64 : v1::FLOAT32};
  return clients::SyntheticBatch(inputs, spec, args.seed);
}

// Sends `request` `runs` times; *best gets the fastest run's profile and *chosen its index.
template <typename Request, typename Response>
grpc::Status Fastest(Session& session,
                     grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                     const Request& request, int64_t runs, v1::RunProfile* best, int64_t* chosen) {
  for (int64_t run = 0; run < runs; ++run) {
    Response response;
    if (grpc::Status status = session.Call(method, request, &response); !status.ok()) {
      return status;
    }
    if (*chosen < 0 || response.profile().wall_ns() < best->wall_ns()) {
      best->Swap(response.mutable_profile());
      *chosen = run;
    }
  }
  return grpc::Status::OK;
}

// The profiled request of the chosen kind, built once and sent args.runs times.
grpc::Status ProfileRuns(Session& session, const std::string& id, const ProfileArgs& args,
                         const google::protobuf::Map<std::string, v1::Tensor>& batch,
                         v1::RunProfile* best, int64_t* chosen) {
  if (args.mode == "train") {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    *request.mutable_batch() = batch;
    request.set_profile(true);
    return Fastest(session, &Stub::TrainStep, request, args.runs, best, chosen);
  }
  if (args.mode == "gradients") {
    v1::ComputeGradientsRequest request;
    request.set_model_id(id);
    *request.mutable_batch() = batch;
    request.set_profile(true);
    return Fastest(session, &Stub::ComputeGradients, request, args.runs, best, chosen);
  }
  v1::InferRequest request;
  request.set_model_id(id);
  *request.mutable_inputs() = batch;
  request.set_profile(true);
  return Fastest(session, &Stub::Infer, request, args.runs, best, chosen);
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string_view PhaseName(v1::NodeProfile::Phase phase) {
  switch (phase) {
    case v1::NodeProfile::PHASE_FORWARD:
      return "forward";
    case v1::NodeProfile::PHASE_BACKWARD:
      return "backward";
    case v1::NodeProfile::PHASE_OPTIMIZER:
      return "optimizer";
    default:
      return "?";
  }
}

std::string Bytes(int64_t bytes) {
  char text[32];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  }
  return text;
}

// The summary lines: the run, the plan, the time per phase and on oneDNN.
void PrintSummary(const std::string& id, const ProfileArgs& args, int64_t chosen,
                  const v1::RunProfile& profile) {
  std::printf(
      "profile of %s (%s, batch %lld): run %lld of %lld, the fastest: %.3f ms on the server\n",
      id.c_str(), args.mode.c_str(), static_cast<long long>(args.batch),
      static_cast<long long>(chosen + 1), static_cast<long long>(args.runs), Ms(profile.wall_ns()));
  const double wall = std::max<double>(1, static_cast<double>(profile.wall_ns()));
  std::printf("  plan %.3f ms (%s); nodes busy %.3f ms (%.1f%% of the run)", Ms(profile.plan_ns()),
              profile.plan_compiled() ? "compiled" : "cached", Ms(profile.busy_ns()),
              100.0 * static_cast<double>(profile.busy_ns()) / wall);
  if (profile.padded_rows() > 0) {
    std::printf("; computed on %lld padded rows", static_cast<long long>(profile.padded_rows()));
  }
  std::printf("\n");
  int64_t phase_ns[4] = {0, 0, 0, 0};
  int phase_nodes[4] = {0, 0, 0, 0};
  int64_t onednn_ns = 0;
  int onednn_nodes = 0;
  for (const v1::NodeProfile& node : profile.nodes()) {
    phase_ns[node.phase()] += node.duration_ns();
    ++phase_nodes[node.phase()];
    if (node.onednn_primitives() > 0) {
      onednn_ns += node.duration_ns();
      ++onednn_nodes;
    }
  }
  std::printf("  node time: forward %.3f ms in %d nodes, backward %.3f ms in %d", Ms(phase_ns[1]),
              phase_nodes[1], Ms(phase_ns[2]), phase_nodes[2]);
  if (phase_nodes[3] > 0) std::printf(", optimizer %.3f ms", Ms(phase_ns[3]));
  std::printf("; oneDNN %.3f ms in %d of %d nodes\n", Ms(onednn_ns), onednn_nodes,
              profile.nodes_size());
}

void PrintTable(const v1::RunProfile& profile, int64_t top) {
  std::vector<const v1::NodeProfile*> nodes;
  for (const v1::NodeProfile& node : profile.nodes()) nodes.push_back(&node);
  std::stable_sort(nodes.begin(), nodes.end(), [](const auto* a, const auto* b) {
    return a->duration_ns() > b->duration_ns();
  });
  const size_t shown = top == 0 ? nodes.size() : std::min<size_t>(nodes.size(), top);
  int name_width = 4;  // "NODE"
  int op_width = 2;
  for (size_t i = 0; i < shown; ++i) {
    name_width = std::max(name_width, static_cast<int>(nodes[i]->name().size()));
    op_width = std::max(op_width, static_cast<int>(nodes[i]->op().size()));
  }
  const double wall = std::max<double>(1, static_cast<double>(profile.wall_ns()));
  std::printf("\n%-*s  %-*s  %-9s %9s %6s %8s %5s %6s %10s\n", name_width, "NODE", op_width, "OP",
              "PHASE", "TIME ms", "%RUN", "WAIT ms", "CORES", "ONEDNN", "OUTPUT");
  for (size_t i = 0; i < shown; ++i) {
    const v1::NodeProfile& node = *nodes[i];
    std::printf("%-*s  %-*s  %-9s %9.3f %6.1f %8.3f %5d %6d %10s\n", name_width,
                node.name().c_str(), op_width, node.op().c_str(),
                std::string(PhaseName(node.phase())).c_str(), Ms(node.duration_ns()),
                100.0 * static_cast<double>(node.duration_ns()) / wall, Ms(node.wait_ns()),
                node.cores(), node.onednn_primitives(), Bytes(node.output_bytes()).c_str());
  }
  if (shown < nodes.size()) {
    std::printf("(%zu more nodes; --top 0 shows all)\n", nodes.size() - shown);
  }
}

nlohmann::json ProfileJson(const std::string& id, const ProfileArgs& args, int64_t chosen,
                           const v1::RunProfile& profile) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const v1::NodeProfile& node : profile.nodes()) {
    nodes.push_back({{"name", node.name()},
                     {"op", node.op()},
                     {"phase", PhaseName(node.phase())},
                     {"start_ms", Ms(node.start_ns())},
                     {"time_ms", Ms(node.duration_ns())},
                     {"wait_ms", Ms(node.wait_ns())},
                     {"cores", node.cores()},
                     {"onednn_primitives", node.onednn_primitives()},
                     {"output_bytes", node.output_bytes()}});
  }
  return {{"model", id},
          {"mode", args.mode},
          {"batch", args.batch},
          {"runs", args.runs},
          {"run", chosen + 1},
          {"wall_ms", Ms(profile.wall_ns())},
          {"plan_ms", Ms(profile.plan_ns())},
          {"plan_compiled", profile.plan_compiled()},
          {"busy_ms", Ms(profile.busy_ns())},
          {"padded_rows", profile.padded_rows()},
          {"nodes", std::move(nodes)}};
}

int RunProfileCommand(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  const std::string what = "profile " + id;
  v1::ModelInfo info;
  if (grpc::Status status = session.GetModel(id, &info); !status.ok()) {
    return session.Fail(what, status);
  }
  StatusOr<ProfileArgs> parsed = ParseProfileArgs(args, info);
  if (!parsed.ok()) return UsageError("profile", parsed.status().message());
  if (parsed->mode != "infer" && info.loss().empty()) {
    return Fail(what, "the model has no loss: only --mode infer can profile it");
  }
  const auto batch = MakeBatch(info, *parsed);
  v1::RunProfile best;
  int64_t chosen = -1;
  if (grpc::Status status = ProfileRuns(session, id, *parsed, batch, &best, &chosen);
      !status.ok()) {
    return session.Fail(what, status);
  }
  if (args.Has("json")) {
    std::printf("%s\n", ProfileJson(id, *parsed, chosen, best).dump().c_str());
    return kExitOk;
  }
  PrintSummary(id, *parsed, chosen, best);
  PrintTable(best, parsed->top);
  return kExitOk;
}

}  // namespace

std::vector<Command> ProfileCommands() {
  return {{
      .name = "profile",
      .operands = "ID",
      .summary = "where a step goes on the server: time, bytes and oneDNN use of every node",
      .details =
          "Sends RUNS requests with `profile: true` on a synthetic batch (uniform values in\n"
          "[0, 1), labels and ids in [0, CLASSES)) and prints the fastest run's profile, its\n"
          "nodes slowest first. --mode gradients (the default) runs forward and backward and\n"
          "changes nothing; --mode train applies RUNS optimizer steps on that batch to the\n"
          "model; --mode infer profiles inference of the graph's outputs on the batch without\n"
          "its labels (placeholders of shape [-1]).\n"
          "Example: backflow profile m-1 --batch 64\n",
      .flags = {{"mode", FlagKind::kValue, "MODE", "gradients (default), train or infer"},
                {"batch", FlagKind::kValue, "N", "rows of the synthetic batch (default 32)"},
                {"runs", FlagKind::kValue, "N",
                 "requests to send; the fastest is shown (default 5)"},
                {"classes", FlagKind::kValue, "N",
                 "labels are drawn in [0, N) (default: the width of the model's first output)"},
                {"seed", FlagKind::kValue, "S", "seed of the synthetic batch (default 1)"},
                {"top", FlagKind::kValue, "K", "show the K slowest nodes (default 25; 0: all)"},
                {"json", FlagKind::kSwitch, "", "print the profile as JSON, times in ms"}},
      .min_operands = 1,
      .max_operands = 1,
      .run = RunProfileCommand,
  }};
}

}  // namespace backflow::cli
