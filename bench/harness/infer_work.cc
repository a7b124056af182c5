// backflow-bench infer: inference throughput and latency over gRPC at a given concurrency,
// through backflow.v1 Infer or the Open Inference Protocol's ModelInfer (--protocol), so that
// bench/run can set the two side by side on one server.
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "bench/harness/sampler.h"
#include "bench/harness/subcommands.h"
#include "bench/harness/wire_common.h"
#include "inference/grpc_service.grpc.pb.h"

namespace backflow::bench {
namespace {

// The figures of `infer`: every worker's call latencies over the measured span.
struct InferFigures {
  std::vector<double> us;
  double seconds = 0;
  Json server_threads;
};

// One call of a worker: its status.
using WorkerCall = std::function<grpc::Status()>;

// Each worker runs its call in a loop; the measured span starts when the last is warm (its
// span.warmup calls done) and lasts span.seconds.
InferFigures RunInferWorkers(const std::vector<WorkerCall>& calls, const char* rpc,
                             const Span& span, ThreadSampler& sampler) {
  const int concurrency = static_cast<int>(calls.size());
  std::vector<std::vector<double>> latencies(calls.size());
  std::atomic<bool> stop{false};
  std::atomic<int> warm{0};
  Clock::time_point start;
  std::mutex start_mu;
  auto worker = [&](size_t w) {
    auto call = [&] {
      const grpc::Status status = calls[w]();
      if (!status.ok()) Die(rpc, status);
    };
    for (int64_t i = 0; i < span.warmup; ++i) call();
    if (++warm == concurrency) {
      std::lock_guard lock(start_mu);
      start = Clock::now();
      sampler.Start();
    }
    while (warm.load() < concurrency) std::this_thread::yield();
    auto& mine = latencies[w];
    while (!stop.load()) {
      const Clock::time_point t0 = Clock::now();
      call();
      mine.push_back(MicrosSince(t0));
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 0; w < calls.size(); ++w) threads.emplace_back(worker, w);
  while (warm.load() < concurrency) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Clock::time_point measured_from;
  {
    std::lock_guard lock(start_mu);
    measured_from = start;
  }
  while (SecondsSince(measured_from) < span.seconds)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (std::thread& t : threads) t.join();
  InferFigures figures{.seconds = SecondsSince(measured_from), .server_threads = sampler.Stop()};
  for (const auto& l : latencies) figures.us.insert(figures.us.end(), l.begin(), l.end());
  return figures;
}

// The same request as ModelInfer, its tensors in raw_input_contents (what Triton's clients and
// perf_analyzer send).
inference::ModelInferRequest AsModelInfer(const v1::InferRequest& request) {
  inference::ModelInferRequest converted;
  converted.set_model_name(request.model_id());
  for (const auto& [name, tensor] : request.inputs()) {
    auto* input = converted.add_inputs();
    input->set_name(name);
    input->set_datatype(tensor.dtype() == v1::FLOAT64 ? "FP64"
                        : tensor.dtype() == v1::INT64 ? "INT64"
                        : tensor.dtype() == v1::INT32 ? "INT32"
                                                      : "FP32");
    *input->mutable_shape() = tensor.shape();
    converted.add_raw_input_contents(tensor.data());
  }
  for (const std::string& output : request.outputs()) converted.add_outputs()->set_name(output);
  return converted;
}

}  // namespace

int Infer(Flags& flags) {
  constexpr std::string_view kProtocols[] = {"backflow", "oip"};
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string path = flags.Str("model", "");
  const std::string existing = flags.Str("model-id", "");
  const std::string output = flags.Str("output", "logits");
  const std::string protocol = flags.Choice("protocol", "backflow", kProtocols);
  const int64_t batch = flags.Int("batch", 64);
  const int concurrency = static_cast<int>(flags.Int("concurrency", 1));
  const int server_pid = static_cast<int>(flags.Int("server-pid", 0));
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  Connection c = Connect(server);
  auto oip = inference::GRPCInferenceService::NewStub(c.channel);
  const v1::Graph graph = LoadGraphOrDie(path);
  const std::string model_id = existing.empty() ? CreateModelOrDie(*c.stub, path) : existing;
  // Each worker its own synthetic batch (seed = worker + 1), made here on one thread: reading
  // `graph` from several threads at once races inside protobuf (a parsed map field is synced
  // into its map on first const access; ThreadSanitizer reported it in bench_harness_test).
  std::vector<v1::InferRequest> requests(static_cast<size_t>(concurrency));
  std::vector<inference::ModelInferRequest> oip_requests(requests.size());
  std::vector<WorkerCall> calls;
  for (size_t w = 0; w < requests.size(); ++w) {
    v1::InferRequest& request = requests[w];
    request.set_model_id(model_id);
    request.add_outputs(output);
    *request.mutable_inputs() = WireBatch(graph, batch, w + 1);
    request.mutable_inputs()->erase("labels");
    oip_requests[w] = AsModelInfer(request);
    if (protocol == "oip") {
      calls.push_back([&oip, &request = oip_requests[w]] {
        grpc::ClientContext context;
        inference::ModelInferResponse response;
        return oip->ModelInfer(&context, request, &response);
      });
    } else {
      calls.push_back([&c, &request] {
        grpc::ClientContext context;
        v1::InferResponse response;
        return c.stub->Infer(&context, request, &response);
      });
    }
  }
  ThreadSampler sampler(server_pid, std::chrono::milliseconds(5));
  const InferFigures figures =
      RunInferWorkers(calls, protocol == "oip" ? "ModelInfer" : "Infer", span, sampler);
  if (existing.empty()) DeleteModel(*c.stub, model_id);
  const auto n = static_cast<double>(figures.us.size());
  PrintJson({{"kind", "infer"},
             {"protocol", protocol},
             {"batch", batch},
             {"concurrency", concurrency},
             {"calls", figures.us.size()},
             {"seconds", figures.seconds},
             {"samples_per_s", n * static_cast<double>(batch) / figures.seconds},
             {"p50_us", Percentile(figures.us, 50)},
             {"p99_us", Percentile(figures.us, 99)},
             {"server_threads", figures.server_threads}});
  return 0;
}

}  // namespace backflow::bench
