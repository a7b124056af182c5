// The RPC side of `backflow train`: feeding a labelled image dataset to a model over the Train
// stream, and measuring test accuracy with Infer.
#ifndef BACKFLOW_CLIENTS_CLI_TRAIN_STREAM_H_
#define BACKFLOW_CLIENTS_CLI_TRAIN_STREAM_H_

#include <functional>
#include <string>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "clients/cli/session.h"
#include "engine/core/status.h"
#include "engine/data/dataset.h"

namespace backflow::cli {

// Which placeholders take the images and the labels, and how images are shaped for them.
struct DataFeed {
  std::string images;                 // placeholder name
  std::string labels;                 // the placeholder of shape [N]
  std::vector<int64_t> sample_shape;  // the images placeholder's shape after the batch dim
  DType dtype = DType::kFloat32;      // the model's
  v1::DataType labels_dtype = v1::FLOAT32;  // the labels placeholder's: INT64 or INT32 if so
                                            // declared, else the model's
};

// Matches the model's two placeholders to `data`: labels is the one shaped [N] (preferring the
// name "labels"), images the other, whose per-sample shape must hold as many elements as one
// of the data's samples (so [N, 784] takes 1x28x28 images too). InvalidArgument otherwise.
StatusOr<DataFeed> FeedFor(const v1::ModelInfo& info, const Dataset& data);

// Puts a batch (images [B, ...] and labels [B], float32 as BatchIterator deals them) into
// `batch` in the feed's names, shape and dtypes.
void FillBatch(const DataFeed& feed, const Tensor& images, const Tensor& labels,
               google::protobuf::Map<std::string, v1::Tensor>* batch);

// Streams the rest of `batches`' current epoch to model `model_id` over one Train stream: a
// writer thread sends batches as fast as the server's read-ahead window and gRPC flow control
// let it, while this thread reads the answers and passes each to `on_answer`, in order. If no
// answer arrives for the session's --timeout the stream is cancelled (DEADLINE_EXCEEDED).
// Returns the stream's final status.
grpc::Status StreamEpoch(Session& session, const std::string& model_id, const DataFeed& feed,
                         BatchIterator& batches,
                         const std::function<void(const v1::TrainStepResponse&)>& on_answer);

// The output to score: "logits" if the model has it, else its first output of shape [N, C].
StatusOr<std::string> ScoreOutput(const v1::ModelInfo& info);

// The fraction of `data` whose arg-max of `output` ([N, C]) is its label, from Infer calls on
// chunks of `chunk` samples.
grpc::Status TestAccuracy(Session& session, const std::string& model_id, const DataFeed& feed,
                          const Dataset& data, const std::string& output, int64_t chunk,
                          double* accuracy);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_TRAIN_STREAM_H_
