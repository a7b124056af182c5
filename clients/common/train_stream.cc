#include "clients/common/train_stream.h"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace backflow::clients {

grpc::Status StreamTrainSteps(v1::Backflow::Stub& stub, grpc::ClientContext& context,
                              const std::string& model_id, const TrainStreamCalls& calls,
                              int window) {
  auto stream = stub.Train(&context);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;  // GUARDED_BY(mu)
  bool stop = false;  // GUARDED_BY(mu)
  std::thread writer([&] {
    v1::TrainStepRequest request;
    for (bool first = true;; first = false) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || window <= 0 || in_flight < window; });
        if (stop) break;
        ++in_flight;
      }
      if (!calls.next(&request)) break;
      // The first request names the model; later ones may not.
      if (first) {
        request.set_model_id(model_id);
      } else {
        request.clear_model_id();
      }
      if (!stream->Write(request)) break;  // the stream ended: Finish says why
    }
    stream->WritesDone();
  });
  v1::TrainStepResponse answer;
  while (stream->Read(&answer)) {
    const bool more = calls.on_answer(answer);
    std::lock_guard lock(mu);
    --in_flight;
    if (!more) stop = true;
    cv.notify_all();
  }
  {
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
  writer.join();
  return stream->Finish();
}

}  // namespace backflow::clients
