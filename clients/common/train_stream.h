// The client side of the Train stream, shared by `backflow train` and backflow-bench: one writer
// thread sends batches while the calling thread reads the answers (gRPC allows one reader and
// one writer on a stream at once), so the server's read-ahead window stays full.
#ifndef BACKFLOW_CLIENTS_COMMON_TRAIN_STREAM_H_
#define BACKFLOW_CLIENTS_COMMON_TRAIN_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>

#include "backflow/v1/service.grpc.pb.h"

namespace backflow::clients {

struct TrainStreamCalls {
  // Fills the next request's batch (the request is reused: overwrite what it holds); false
  // when there are no more batches. Runs on the writer thread.
  std::function<bool(v1::TrainStepRequest*)> next;
  // Takes each answer, in order, on the calling thread; false: send no further request (the
  // answers to those already sent still arrive).
  std::function<bool(const v1::TrainStepResponse&)> on_answer;
};

// Runs one Train stream on `context` to model `model_id` (named by the first request only) and
// returns its final status. `window` > 0 caps the requests sent but not yet answered; 0 leaves
// the pace to the server's window and gRPC flow control.
grpc::Status StreamTrainSteps(v1::Backflow::Stub& stub, grpc::ClientContext& context,
                              const std::string& model_id, const TrainStreamCalls& calls,
                              int window = 0);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_TRAIN_STREAM_H_
