// Fuzz target: every RPC's request handling, in process. The input is
//   u8 rpc | the request message, serialized
// where rpc (modulo 19) picks the RPC: 0-14 in the order service.proto's Backflow service had
// before checkpoint history (fuzz/generate_seeds.py's RPCS), 15 ListCheckpoints, 16
// DeleteCheckpoint, 17 DownloadCheckpoint (every chunk read), 18 UploadCheckpoint (the request
// is one CheckpointChunk: its header, then its data, then the end of the stream). The
// request is decoded as the RPC's message and run through the operation its handler runs
// (server/operations.h) on a ServiceEnv with a real data directory, as server/service.cc does:
// the model the request names is looked up (unknown ids fall back to the target model, a small
// MLP from fuzz/rpc_model.pbtxt, so mutated ids still reach the operation), and operations that
// change a model (TrainStep, Train, SetParameters, SaveCheckpoint, RestoreCheckpoint,
// DeleteCheckpoint, DeleteModel) run on a fresh copy created for the input and deleted after it, so
// no input depends on those before it. The answer is discarded: only crashes, undefined behaviour
// and hangs are findings. The limits are fuzz_limits.h's, far below the server's defaults.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "backflow/v1/service.pb.h"
#include "engine/api/import.h"
#include "fuzz/fuzz_env.h"
#include "fuzz/fuzz_limits.h"
#include "server/checkpoint_transfer.h"
#include "server/operations.h"
#include "server/service_env.h"

namespace {

namespace v1 = backflow::v1;
namespace ops = backflow::server::ops;
using backflow::Status;
using backflow::server::Model;

backflow::server::ServerConfig FuzzConfig(const std::string& data_dir) {
  backflow::server::ServerConfig config;
  config.data_dir = data_dir;
  config.log_level = "off";
  config.limits.max_message_bytes = 1 << 20;
  config.limits.max_nodes = backflow::fuzz::kMaxNodes;
  config.limits.max_tensor_elements = backflow::fuzz::kMaxTensorElements;
  config.limits.max_models = 8;
  config.limits.max_gradcheck_runs = 200;
  config.autosave = {};  // no background writes: a run depends on its input alone
  return config;
}

struct RpcEnv {
  RpcEnv() : pool(1) {
    spdlog::set_level(spdlog::level::off);
    auto opened = backflow::server::CheckpointStore::Open(dir.path());
    backflow::fuzz::CheckSetup(opened.status(), "CheckpointStore::Open");
    store = std::move(*opened);
    env = std::make_unique<backflow::server::ServiceEnv>(FuzzConfig(dir.path()), store.get(), &pool);
    auto graph = backflow::LoadGraphText(BACKFLOW_SOURCE_DIR "/fuzz/rpc_model.pbtxt");
    backflow::fuzz::CheckSetup(graph.status(), "fuzz/rpc_model.pbtxt");
    *create.mutable_graph() = *graph;
    create.mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
    target = NewModel();
  }

  // A model made from `create`, registered and recorded in the data directory.
  std::shared_ptr<Model> NewModel() {
    auto reservation = env->registry.Reserve();
    backflow::fuzz::CheckSetup(reservation.status(), "Reserve");
    v1::ModelInfo info;
    backflow::fuzz::CheckSetup(ops::CreateModel(*env, create, *reservation, &info), "CreateModel");
    return *env->registry.Get(info.id());
  }
  // Out of the registry and the data directory (what DeleteModel does).
  void Drop(const std::shared_ptr<Model>& model) {
    if (env->registry.Remove(model->id()).ok()) (void)ops::DeleteModel(*env, *model);
  }
  // The model `id` names, or the target model.
  std::shared_ptr<const Model> Find(const std::string& id) const {
    auto found = env->registry.Get(id);
    return found.ok() ? *found : target;
  }

  backflow::fuzz::ScratchDir dir;
  backflow::server::ComputePool pool;
  std::unique_ptr<backflow::server::CheckpointStore> store;
  std::unique_ptr<backflow::server::ServiceEnv> env;
  v1::CreateModelRequest create;
  std::shared_ptr<Model> target;
};

RpcEnv& Env() {
  static RpcEnv* env = new RpcEnv();  // never destroyed: libFuzzer exits from anywhere
  return *env;
}

// A fresh copy of the target model for an operation that changes it, dropped afterwards.
class Scratch {
 public:
  explicit Scratch(RpcEnv& env) : env_(env), model_(env.NewModel()) {}
  ~Scratch() { env_.Drop(model_); }
  Model& model() { return *model_; }

 private:
  RpcEnv& env_;
  std::shared_ptr<Model> model_;
};

template <typename Request>
bool Parse(std::string_view bytes, Request* request) {
  return request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// CreateModel, GetModel, ListModels, DeleteModel.
void RunModelRpc(RpcEnv& env, int rpc, std::string_view bytes) {
  if (rpc == 0) {
    v1::CreateModelRequest request;
    if (!Parse(bytes, &request)) return;
    auto reservation = env.env->registry.Reserve();
    if (!reservation.ok()) return;
    v1::ModelInfo info;
    if (ops::CreateModel(*env.env, request, *reservation, &info).ok()) {
      env.Drop(*env.env->registry.Get(info.id()));
    }
  } else if (rpc == 1) {
    v1::GetModelRequest request;
    if (Parse(bytes, &request)) (void)env.Find(request.model_id())->Info();
  } else if (rpc == 2) {
    for (const auto& model : env.env->registry.All()) (void)model->Info();
  } else {
    v1::DeleteModelRequest request;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    Scratch scratch(env);
    env.Drop(*env.env->registry.Get(scratch.model().id()));
  }
}

// Infer, ComputeGradients, GetParameters, Evaluate, CheckGradients, ExportModel.
void RunReadRpc(RpcEnv& env, int rpc, std::string_view bytes) {
  const backflow::RunOptions run;
  if (rpc == 4) {
    v1::InferRequest request;
    v1::InferResponse response;
    if (Parse(bytes, &request)) (void)ops::Infer(*env.env, *env.Find(request.model_id()), request, run, &response);
  } else if (rpc == 5) {
    v1::ComputeGradientsRequest request;
    v1::ComputeGradientsResponse response;
    if (Parse(bytes, &request)) (void)ops::ComputeGradients(*env.env, *env.Find(request.model_id()), request, run, &response);
  } else if (rpc == 8) {
    v1::GetParametersRequest request;
    v1::GetParametersResponse response;
    if (Parse(bytes, &request)) (void)ops::GetParameters(*env.Find(request.model_id()), request, &response);
  } else if (rpc == 12) {
    v1::EvaluateRequest request;
    v1::EvaluateResponse response;
    if (Parse(bytes, &request)) (void)ops::Evaluate(*env.env, request, run, &response);
  } else if (rpc == 13) {
    v1::CheckGradientsRequest request;
    v1::CheckGradientsResponse response;
    if (!Parse(bytes, &request)) return;
    const Model* model = request.has_model_id() ? env.Find(request.model_id()).get() : nullptr;
    (void)ops::CheckGradients(*env.env, model, request, run, &response);
  } else {
    v1::ExportModelRequest request;
    v1::ExportModelResponse response;
    if (Parse(bytes, &request)) (void)ops::ExportModel(*env.env, *env.Find(request.model_id()), request, &response);
  }
}

// UploadCheckpoint of one message; a model it creates is deleted again.
void RunUpload(RpcEnv& env, std::string_view bytes) {
  v1::CheckpointChunk chunk;
  if (!Parse(bytes, &chunk)) return;
  auto reservation = env.env->registry.Reserve();
  if (!reservation.ok()) return;
  auto upload = ops::CheckpointUpload::Begin(*env.env, chunk.header(), "");
  if (!upload.ok() || !(*upload)->Append(chunk.data()).ok()) return;
  v1::ModelInfo info;
  if (!(*upload)->Finish(*env.env, *reservation, &info).ok()) return;
  auto created = env.env->registry.Get(info.id());
  backflow::fuzz::CheckSetup(created.status(), "the uploaded model");
  backflow::fuzz::CheckSetup(ops::DeleteModel(*env.env, **created), "DeleteModel after an upload");
}

// TrainStep, Train (each message of the stream as it would arrive: decoded, then stepped; the
// input is one message, sent twice), SetParameters, SaveCheckpoint, RestoreCheckpoint,
// ListCheckpoints (of a copy with a checkpoint), DeleteCheckpoint.
void RunWriteRpc(RpcEnv& env, int rpc, std::string_view bytes) {
  const backflow::RunOptions run;
  Scratch scratch(env);
  Model& model = scratch.model();
  if (rpc == 6 || rpc == 7) {
    v1::TrainStepRequest request;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    for (int i = 0; i < (rpc == 6 ? 1 : 2); ++i) {
      v1::TrainStepResponse response;
      auto batch = ops::DecodeTrainBatch(*env.env, model, request);
      (void)ops::TrainStepOnBatch(*env.env, model, request, batch, run, &response);
    }
  } else if (rpc == 9) {
    v1::SetParametersRequest request;
    v1::SetParametersResponse response;
    if (Parse(bytes, &request)) (void)ops::SetParameters(*env.env, model, request, &response);
  } else if (rpc == 10) {
    v1::SaveCheckpointRequest request;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    (void)ops::SaveCheckpoint(*env.env, model, request.name(), request.replace());
  } else if (rpc == 15) {
    v1::ListCheckpointsRequest request;
    v1::ListCheckpointsResponse response;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    (void)ops::SaveCheckpoint(*env.env, model);  // so there is one to list
    (void)ops::ListCheckpoints(*env.env, model, &response);
  } else if (rpc == 16) {
    v1::DeleteCheckpointRequest request;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    (void)ops::SaveCheckpoint(*env.env, model, request.name());  // so there is one to delete
    (void)ops::SaveCheckpoint(*env.env, model);                  // and it is not the current one
    (void)ops::DeleteCheckpoint(*env.env, model, request.name());
  } else if (rpc == 17) {
    v1::DownloadCheckpointRequest request;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    (void)ops::SaveCheckpoint(*env.env, model, "named");  // so there are some to download
    (void)ops::SaveCheckpoint(*env.env, model);
    auto download = ops::CheckpointDownload::Open(*env.env, model, request);
    std::string chunk;
    while (download.ok()) {
      auto more = (*download)->Next(&chunk);
      if (!more.ok() || !*more) break;
    }
  } else if (rpc == 18) {
    RunUpload(env, bytes);
  } else {
    v1::RestoreCheckpointRequest request;
    v1::RestoreCheckpointResponse response;
    if (!Parse(bytes, &request)) return;
    (void)env.env->registry.Get(request.model_id());
    (void)ops::SaveCheckpoint(*env.env, model);  // so there is one to restore
    (void)ops::RestoreCheckpoint(*env.env, model, request, &response);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int rpc = data[0] % 19;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  RpcEnv& env = Env();
  switch (rpc) {
    case 0: case 1: case 2: case 3: RunModelRpc(env, rpc, bytes); break;
    case 4: case 5: case 8: case 12: case 13: case 14: RunReadRpc(env, rpc, bytes); break;
    default: RunWriteRpc(env, rpc, bytes); break;
  }
  return 0;
}
