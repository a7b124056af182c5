// BuildRequests, KindChooser and the calls of workload.h.
#include <cstring>
#include <random>

#include "clients/load/workload.h"

namespace backflow::load {
namespace {

namespace v1 = backflow::v1;

// One synthetic wire tensor for `placeholder`: see BuildRequests.
v1::Tensor SyntheticTensor(const v1::Placeholder& placeholder, const LoadOptions& options,
                           v1::DataType dtype, std::mt19937_64& rng) {
  v1::Tensor tensor;
  tensor.set_dtype(dtype);
  int64_t count = 1;
  for (int64_t dim : placeholder.shape()) {
    const int64_t size = dim < 0 ? options.batch : dim;
    tensor.add_shape(size);
    count *= size;
  }
  const bool labels = placeholder.shape_size() == 1 && placeholder.shape(0) < 0;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::uniform_int_distribution<int64_t> label(0, options.classes - 1);
  std::vector<double> values(static_cast<size_t>(count));
  for (double& v : values) v = labels ? static_cast<double>(label(rng)) : uniform(rng);
  std::string& data = *tensor.mutable_data();
  if (dtype == v1::FLOAT64) {
    data.resize(values.size() * sizeof(double));
    std::memcpy(data.data(), values.data(), data.size());
  } else {
    std::vector<float> floats(values.begin(), values.end());
    data.resize(floats.size() * sizeof(float));
    std::memcpy(data.data(), floats.data(), data.size());
  }
  return tensor;
}

}  // namespace

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
  std::mt19937_64 rng(seed);
  google::protobuf::Map<std::string, v1::Tensor> batch;
  for (const v1::Placeholder& placeholder : workload.graph.placeholders()) {
    batch[placeholder.name()] = SyntheticTensor(placeholder, options, workload.dtype, rng);
  }
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
