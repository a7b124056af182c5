#include "clients/cli/train_stream.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <span>
#include <thread>

#include "clients/cli/interrupt.h"
#include "clients/cli/stall_watchdog.h"
#include "clients/cli/tensor_text.h"
#include "clients/common/models.h"
#include "clients/common/tensors.h"
#include "clients/common/train_stream.h"

namespace backflow::cli {
namespace {

// Writes `count` float32 elements to `proto` as `dims` in `dtype` (float64 widens them).
void SetWireTensor(const std::vector<int64_t>& dims, DType dtype, const float* values,
                   int64_t count, v1::Tensor* proto) {
  clients::EncodeTensor(dims, clients::WireDType(dtype),
                        std::span<const float>(values, static_cast<size_t>(count)), proto);
}

}  // namespace

StatusOr<DataFeed> FeedFor(const v1::ModelInfo& info, const Dataset& data) {
  DataFeed feed;
  feed.dtype = clients::ModelDType(info);
  for (const v1::TensorInfo& input : info.inputs()) {
    const bool label_shaped = input.shape_size() == 1 && input.shape(0) == -1;
    if (label_shaped && (feed.labels.empty() || input.name() == "labels")) {
      feed.labels = input.name();
      const bool ids = input.dtype() == v1::INT64 || input.dtype() == v1::INT32;
      feed.labels_dtype = ids ? input.dtype() : clients::WireDType(feed.dtype);
    }
  }
  for (const v1::TensorInfo& input : info.inputs()) {
    if (input.name() == feed.labels) continue;
    if (!feed.images.empty()) {
      return InvalidArgumentError(
          "the model has more than two inputs; train feeds images and "
          "labels only");
    }
    feed.images = input.name();
    feed.sample_shape.assign(input.shape().begin(), input.shape().end());
  }
  if (feed.labels.empty() || feed.images.empty()) {
    return InvalidArgumentError("the model needs two inputs: images [N, ...] and labels [N]");
  }
  const int64_t sample_elements = data.images.num_elements() / std::max<int64_t>(data.size(), 1);
  int64_t elements = 1;
  for (size_t i = 1; i < feed.sample_shape.size(); ++i) elements *= feed.sample_shape[i];
  if (feed.sample_shape.empty() || feed.sample_shape[0] != -1 || elements != sample_elements) {
    return InvalidArgumentError("input '" + feed.images + "' " + FormatShape(feed.sample_shape) +
                                " does not take the data's samples of " +
                                std::to_string(sample_elements) + " values");
  }
  feed.sample_shape.erase(feed.sample_shape.begin());
  return feed;
}

void FillBatch(const DataFeed& feed, const Tensor& images, const Tensor& labels,
               google::protobuf::Map<std::string, v1::Tensor>* batch) {
  const int64_t size = labels.num_elements();
  std::vector<int64_t> dims = {size};
  dims.insert(dims.end(), feed.sample_shape.begin(), feed.sample_shape.end());
  SetWireTensor(dims, feed.dtype, images.data<float>(), images.num_elements(),
                &(*batch)[feed.images]);
  const std::vector<int64_t> label_dims = {size};
  clients::EncodeTensor(label_dims, feed.labels_dtype,
                        std::span<const float>(labels.data<float>(), static_cast<size_t>(size)),
                        &(*batch)[feed.labels]);
}

grpc::Status StreamEpoch(Session& session, const std::string& model_id, const DataFeed& feed,
                         BatchIterator& batches,
                         const std::function<void(const v1::TrainStepResponse&)>& on_answer) {
  grpc::ClientContext context;
  StallWatchdog watchdog(&context, session.timeout_seconds());
  Tensor images, labels;
  const clients::TrainStreamCalls calls = {
      .next =
          [&](v1::TrainStepRequest* request) {
            if (Interrupted() || !batches.Next(&images, &labels)) return false;
            FillBatch(feed, images, labels, request->mutable_batch());
            return true;
          },
      .on_answer =
          [&](const v1::TrainStepResponse& answer) {
            watchdog.Progress();
            on_answer(answer);
            return true;
          },
  };
  grpc::Status status = clients::StreamTrainSteps(session.stub(), context, model_id, calls);
  if (watchdog.fired()) {
    char message[96];
    std::snprintf(message, sizeof message, "no answer on the Train stream for %g s (--timeout)",
                  session.timeout_seconds());
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, message);
  }
  return status;
}

StatusOr<std::string> ScoreOutput(const v1::ModelInfo& info) {
  for (const v1::TensorInfo& output : info.outputs()) {
    if (output.name() == "logits") return output.name();
  }
  for (const v1::TensorInfo& output : info.outputs()) {
    if (output.shape_size() == 2 && output.shape(0) == -1) return output.name();
  }
  return InvalidArgumentError("the model has no output of shape [N, C] to score");
}

grpc::Status TestAccuracy(Session& session, const std::string& model_id, const DataFeed& feed,
                          const Dataset& data, const std::string& output, int64_t chunk,
                          double* accuracy) {
  const int64_t size = data.size();
  const int64_t sample_elements = data.images.num_elements() / std::max<int64_t>(size, 1);
  const float* labels = data.labels.data<float>();
  int64_t correct = 0;
  for (int64_t start = 0; start < size; start += chunk) {
    const int64_t n = std::min(chunk, size - start);
    v1::InferRequest request;
    request.set_model_id(model_id);
    request.add_outputs(output);
    std::vector<int64_t> dims = {n};
    dims.insert(dims.end(), feed.sample_shape.begin(), feed.sample_shape.end());
    SetWireTensor(dims, feed.dtype, data.images.data<float>() + start * sample_elements,
                  n * sample_elements, &(*request.mutable_inputs())[feed.images]);
    v1::InferResponse response;
    grpc::Status status = session.Call(&v1::Backflow::Stub::Infer, request, &response);
    if (!status.ok()) return status;
    auto it = response.outputs().find(output);
    if (it == response.outputs().end()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "the server sent no '" + output + "'");
    }
    StatusOr<Tensor> scores = FromWire(it->second, output);
    if (!scores.ok() || scores->shape().rank() != 2 || scores->shape().dim(0) != n) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "output '" + output + "' is not [N, C]");
    }
    const int64_t classes = scores->shape().dim(1);
    const std::vector<double> values = scores->ToDoubles();
    for (int64_t i = 0; i < n; ++i) {
      const auto row = values.begin() + i * classes;
      const int64_t best = std::max_element(row, row + classes) - row;
      correct += best == static_cast<int64_t>(labels[start + i]);
    }
  }
  *accuracy = size > 0 ? static_cast<double>(correct) / static_cast<double>(size) : 0;
  return grpc::Status::OK;
}

}  // namespace backflow::cli
