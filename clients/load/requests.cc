// BuildRequests, KindChooser and the calls of workload.h.
#include <random>

#include "clients/common/synthetic.h"
#include "clients/load/workload.h"

namespace backflow::load {
namespace v1 = backflow::v1;

std::string_view RpcKindName(RpcKind kind) {
  switch (kind) {
    case RpcKind::kInfer:
      return "infer";
    case RpcKind::kTrain:
      return "train";
    case RpcKind::kGradients:
      return "gradients";
    case RpcKind::kEvaluate:
      return "evaluate";
  }
  return "?";
}

Requests BuildRequests(const Workload& workload, const LoadOptions& options, uint64_t seed) {
  const google::protobuf::Map<std::string, v1::Tensor> batch = clients::SyntheticBatch(
      workload.graph, {.batch = options.batch, .classes = options.classes, .dtype = workload.dtype},
      seed);
  Requests requests;
  requests.infer.set_model_id(workload.model_id);
  *requests.infer.mutable_inputs() = batch;
  requests.train.set_model_id(workload.model_id);
  *requests.train.mutable_batch() = batch;
  requests.gradients.set_model_id(workload.model_id);
  *requests.gradients.mutable_batch() = batch;
  // Evaluate draws the parameters from the seed on the server, and computes the default
  // outputs with no gradients (wrt empty): the cheapest full use of the RPC.
  *requests.evaluate.mutable_graph() = workload.graph;
  *requests.evaluate.mutable_values() = batch;
  requests.evaluate.set_seed(options.seed);
  requests.evaluate.set_dtype(workload.dtype);
  return requests;
}

RpcKind KindChooser::Next() {
  switch (mode_) {
    case RpcMode::kInfer:
      return RpcKind::kInfer;
    case RpcMode::kTrain:
      return RpcKind::kTrain;
    case RpcMode::kGradients:
      return RpcKind::kGradients;
    case RpcMode::kEvaluate:
      return RpcKind::kEvaluate;
    case RpcMode::kMixed:
      break;
  }
  const int draw = std::uniform_int_distribution<int>(0, 99)(rng_);
  if (draw < 50) return RpcKind::kInfer;
  if (draw < 75) return RpcKind::kTrain;
  if (draw < 90) return RpcKind::kGradients;
  return RpcKind::kEvaluate;
}

grpc::Status CallSync(v1::Backflow::Stub& stub, const Requests& requests, RpcKind kind,
                      grpc::ClientContext* context) {
  switch (kind) {
    case RpcKind::kInfer: {
      v1::InferResponse response;
      return stub.Infer(context, requests.infer, &response);
    }
    case RpcKind::kTrain: {
      v1::TrainStepResponse response;
      return stub.TrainStep(context, requests.train, &response);
    }
    case RpcKind::kGradients: {
      v1::ComputeGradientsResponse response;
      return stub.ComputeGradients(context, requests.gradients, &response);
    }
    case RpcKind::kEvaluate: {
      v1::EvaluateResponse response;
      return stub.Evaluate(context, requests.evaluate, &response);
    }
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unknown RPC kind");
}

namespace {

// Starts `method` with a response that lives until the call is done.
template <typename Response, typename Request, typename Method>
void StartWithResponse(Method method, const Request& request, grpc::ClientContext* context,
                       std::function<void(grpc::Status)> done) {
  auto* response = new Response;
  method(context, &request, response, [response, done = std::move(done)](grpc::Status status) {
    delete response;
    done(std::move(status));
  });
}

}  // namespace

void CallAsync(v1::Backflow::Stub& stub, const Requests& requests, RpcKind kind,
               grpc::ClientContext* context, std::function<void(grpc::Status)> done) {
  auto* async = stub.async();
  switch (kind) {
    case RpcKind::kInfer:
      return StartWithResponse<v1::InferResponse>(
          [async](auto... args) { async->Infer(std::move(args)...); }, requests.infer, context,
          std::move(done));
    case RpcKind::kTrain:
      return StartWithResponse<v1::TrainStepResponse>(
          [async](auto... args) { async->TrainStep(std::move(args)...); }, requests.train, context,
          std::move(done));
    case RpcKind::kGradients:
      return StartWithResponse<v1::ComputeGradientsResponse>(
          [async](auto... args) { async->ComputeGradients(std::move(args)...); },
          requests.gradients, context, std::move(done));
    case RpcKind::kEvaluate:
      return StartWithResponse<v1::EvaluateResponse>(
          [async](auto... args) { async->Evaluate(std::move(args)...); }, requests.evaluate,
          context, std::move(done));
  }
}

}  // namespace backflow::load
