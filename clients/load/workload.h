// What backflow-load sends: the model it loads, the synthetic requests of each worker, and the
// choice of RPC kind for each request.
#ifndef BACKFLOW_CLIENTS_LOAD_WORKLOAD_H_
#define BACKFLOW_CLIENTS_LOAD_WORKLOAD_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "clients/load/options.h"
#include "engine/core/status.h"

namespace backflow::load {

enum class RpcKind { kInfer, kTrain, kGradients, kEvaluate };

// "infer", "train", "gradients", "evaluate": the keys of the report.
std::string_view RpcKindName(RpcKind kind);

// The model under load, fixed at setup and shared read-only by every worker.
struct Workload {
  backflow::v1::Graph graph;
  // The model requests go to; empty when only Evaluate is sent (it needs no model).
  std::string model_id;
  bool created_model = false;  // the run created it (and deletes it unless --keep-model)
  backflow::v1::DataType dtype = backflow::v1::FLOAT32;  // of the synthetic batches
};

// Loads and checks the graph, waits for the server, and creates the model (or, with
// --model-id, looks the given one up: an unknown id is not a setup error, because its
// NOT_FOUND answers are what such a run measures). Errors are one line for the user.
StatusOr<Workload> SetUp(const LoadOptions& options, backflow::v1::Backflow::Stub& stub,
                         grpc::Channel& channel);

// Deletes the model if the run created it and the user did not ask to keep it. Returns a
// warning for the user, or "" when all went well.
std::string TearDown(const LoadOptions& options, const Workload& workload,
                     backflow::v1::Backflow::Stub& stub);

// One worker's requests, encoded once and reused for every call.
struct Requests {
  backflow::v1::InferRequest infer;
  backflow::v1::TrainStepRequest train;
  backflow::v1::ComputeGradientsRequest gradients;
  backflow::v1::EvaluateRequest evaluate;
};

// A batch of options.batch samples for every placeholder, drawn from `seed`
// (clients/common/synthetic.h): a placeholder of shape [-1] holds class labels, integers in
// [0, classes) stored as floats; any other holds uniform values in [0, 1). The open batch
// dimension (-1) becomes options.batch.
Requests BuildRequests(const Workload& workload, const LoadOptions& options, uint64_t seed);

// The kind of each successive request: always the same for a single-kind mode; for kMixed a
// seeded draw of 50% infer, 25% train, 15% gradients, 10% evaluate.
class KindChooser {
 public:
  KindChooser(RpcMode mode, uint64_t seed) : mode_(mode), rng_(seed) {}
  RpcKind Next();

 private:
  RpcMode mode_;
  std::mt19937_64 rng_;
};

// Issues one blocking call of `kind` with `requests`.
grpc::Status CallSync(backflow::v1::Backflow::Stub& stub, const Requests& requests, RpcKind kind,
                      grpc::ClientContext* context);

// Starts one call of `kind` with gRPC's callback API and returns at once; `done` runs on a gRPC
// thread with the call's status. `requests` must stay alive, unchanged, until the call has
// started (it is serialised before this returns); `context` until `done` runs.
void CallAsync(backflow::v1::Backflow::Stub& stub, const Requests& requests, RpcKind kind,
               grpc::ClientContext* context, std::function<void(grpc::Status)> done);

}  // namespace backflow::load

#endif  // BACKFLOW_CLIENTS_LOAD_WORKLOAD_H_
