// SetUp and TearDown of workload.h: the graph, the server connection and the model.
#include <algorithm>
#include <chrono>

#include "clients/common/models.h"
#include "clients/common/rpc.h"
#include "clients/common/tensors.h"
#include "clients/load/workload.h"
#include "engine/api/import.h"

namespace backflow::load {
namespace {

namespace v1 = backflow::v1;

// How long setup waits for the first connection: the RPC timeout, but no more than this, so a
// silent address is reported promptly. A refused connection is reported at once.
constexpr std::chrono::seconds kMaxConnectWait(10);

Status WaitForServer(const LoadOptions& options, grpc::Channel& channel) {
  const auto wait = std::min<std::chrono::duration<double>>(
      std::chrono::duration<double>(options.timeout_s), kMaxConnectWait);
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(wait);
  for (grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
       state != GRPC_CHANNEL_READY; state = channel.GetState(/*try_to_connect=*/true)) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return UnavailableError("cannot reach the server at " + options.server +
                              ": the connection failed (is backflow-server running there? "
                              "`make run` starts one on 127.0.0.1:50051)");
    }
    if (!channel.WaitForStateChange(state, deadline)) {
      return UnavailableError("cannot reach the server at " + options.server + ": no answer in " +
                              std::to_string(static_cast<int>(wait.count())) + " s");
    }
  }
  return Status::Ok();
}

v1::OptimizerSpec Optimizer(const LoadOptions& options) {
  v1::OptimizerSpec spec;
  spec.set_kind(options.optimizer == "adam" ? v1::OptimizerSpec::ADAM : v1::OptimizerSpec::SGD);
  if (options.lr) spec.set_learning_rate(*options.lr);
  return spec;
}

Status CreateModel(const LoadOptions& options, v1::Backflow::Stub& stub, Workload& workload) {
  v1::CreateModelRequest request;
  *request.mutable_graph() = workload.graph;
  *request.mutable_optimizer() = Optimizer(options);
  request.set_seed(options.seed);
  request.set_name("backflow-load");
  v1::ModelInfo info;
  grpc::ClientContext context;
  clients::SetTimeout(context, std::chrono::duration<double>(options.timeout_s));
  const grpc::Status status = stub.CreateModel(&context, request, &info);
  if (!status.ok())
    return Status(StatusCode::kUnknown, "CreateModel: " + clients::FormatStatus(status));
  workload.model_id = info.id();
  workload.created_model = true;
  workload.dtype = clients::WireDType(clients::ModelDType(info));
  return Status::Ok();
}

// An existing model: its dtype decides the batches'. NOT_FOUND is what the run will measure,
// so only failures to talk to the server at all are setup errors.
Status LookUpModel(const LoadOptions& options, v1::Backflow::Stub& stub, Workload& workload) {
  workload.model_id = options.model_id;
  v1::ModelInfo info;
  const grpc::Status status = clients::GetModel(
      stub, options.model_id, std::chrono::duration<double>(options.timeout_s), &info);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return Status::Ok();
  if (!status.ok())
    return Status(StatusCode::kUnknown, "GetModel: " + clients::FormatStatus(status));
  workload.dtype = clients::WireDType(clients::ModelDType(info));
  return Status::Ok();
}

}  // namespace

StatusOr<Workload> SetUp(const LoadOptions& options, v1::Backflow::Stub& stub,
                         grpc::Channel& channel) {
  Workload workload;
  StatusOr<v1::Graph> graph = LoadGraphText(options.model_path);
  if (!graph.ok()) return graph.status();
  workload.graph = *std::move(graph);
  // Checked here so a bad graph is a setup error even when only Evaluate is sent.
  if (StatusOr<Graph> imported = ImportGraph(workload.graph); !imported.ok()) {
    return imported.status().WithPrefix(options.model_path);
  }
  BF_RETURN_IF_ERROR(WaitForServer(options, channel));
  if (!options.model_id.empty()) {
    BF_RETURN_IF_ERROR(LookUpModel(options, stub, workload));
  } else if (options.mode != RpcMode::kEvaluate) {
    BF_RETURN_IF_ERROR(CreateModel(options, stub, workload));
  }
  return workload;
}

std::string TearDown(const LoadOptions& options, const Workload& workload,
                     v1::Backflow::Stub& stub) {
  if (!workload.created_model || options.keep_model) return "";
  v1::DeleteModelRequest request;
  request.set_model_id(workload.model_id);
  v1::DeleteModelResponse response;
  grpc::ClientContext context;
  clients::SetTimeout(context, std::chrono::duration<double>(options.timeout_s));
  const grpc::Status status = stub.DeleteModel(&context, request, &response);
  if (status.ok()) return "";
  return "could not delete model " + workload.model_id + ": " + clients::FormatStatus(status);
}

}  // namespace backflow::load
