// The end-to-end figures of backflow-bench, over gRPC to a running backflow-server: request
// latency against the transport floor (a grpc.health.v1 Check) and training throughput over the
// Train stream (one or several jobs at once). Inference throughput is infer_work.cc's.
#include <atomic>
#include <cstring>
#include <iostream>
#include <mutex>
#include <span>
#include <sstream>
#include <thread>

#include "backflow/v1/service.grpc.pb.h"
#include "bench/harness/sampler.h"
#include "bench/harness/subcommands.h"
#include "bench/harness/wire_common.h"
#include "clients/common/rpc.h"
#include "clients/common/synthetic.h"
#include "clients/common/tensors.h"
#include "clients/common/train_stream.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace backflow::bench {
namespace {

using v1::Backflow;

Json LatencyJson(const std::vector<double>& us) {
  return {{"calls", us.size()}, {"p50_us", Percentile(us, 50)}, {"p99_us", Percentile(us, 99)}};
}

// One training job: a Train stream on `model_id` that keeps up to `window` requests in flight
// (clients/common/train_stream.h) while this thread reads the answers.
struct StreamFigures {
  int64_t steps = 0;  // after the warm-up
  double seconds = 0;
  double first_loss = 0;
};

StreamFigures RunTrainStream(Backflow::Stub& stub, const std::string& model_id,
                             const std::vector<v1::TrainStepRequest>& pool, const Span& span,
                             int window) {
  StreamFigures figures;
  size_t sent = 0;
  int64_t answered = 0;
  Clock::time_point start;
  clients::TrainStreamCalls calls;
  calls.next = [&](v1::TrainStepRequest* request) {
    *request = pool[sent++ % pool.size()];
    return true;
  };
  calls.on_answer = [&](const v1::TrainStepResponse& response) {
    ++answered;
    if (answered == 1) figures.first_loss = response.loss();
    if (answered == span.warmup) start = Clock::now();
    const int64_t measured = answered - span.warmup;
    if (measured <= 0) return true;
    figures.steps = measured;
    figures.seconds = SecondsSince(start);
    return !span.Done(start, measured);
  };
  grpc::ClientContext context;
  const grpc::Status status = clients::StreamTrainSteps(stub, context, model_id, calls, window);
  if (!status.ok()) Die("Train stream", status);
  return figures;
}

std::vector<v1::TrainStepRequest> TrainPool(const v1::Graph& graph, int64_t batch) {
  std::vector<v1::TrainStepRequest> pool(8);
  for (size_t i = 0; i < pool.size(); ++i) *pool[i].mutable_batch() = WireBatch(graph, batch, i + 1);
  return pool;
}

// The requests of `latency`: a TrainStep on a model made from --model, or an Evaluate of
// --graph at --values.
struct LatencyCall {
  std::string rpc;
  std::string model_id;  // trainstep: created here, deleted at the end
  v1::TrainStepRequest train;
  v1::EvaluateRequest evaluate;
};

LatencyCall PrepareLatencyCall(Backflow::Stub& stub, const std::string& rpc,
                               const std::string& model_path, const std::string& graph_path,
                               const std::string& values) {
  LatencyCall call{.rpc = rpc};
  if (rpc == "trainstep") {
    call.model_id = CreateModelOrDie(stub, model_path);
    call.train.set_model_id(call.model_id);
    return call;
  }
  *call.evaluate.mutable_graph() = LoadGraphOrDie(graph_path);
  std::istringstream pairs(values);
  for (std::string pair; std::getline(pairs, pair, ',');) {
    const size_t eq = pair.find('=');
    const float value = std::stof(pair.substr(eq + 1));
    const std::string name = pair.substr(0, eq);
    clients::EncodeTensor({}, v1::FLOAT32, std::span<const float>(&value, 1),
                          &(*call.evaluate.mutable_values())[name]);
    call.evaluate.add_wrt(name);
  }
  return call;
}

// One call of `call`, its microseconds appended to `us` when `measured`; returns the value it
// computed (the loss, or the circuit's f).
double TimeLatencyCall(Backflow::Stub& stub, const LatencyCall& call, bool measured,
                       std::vector<double>& us) {
  grpc::ClientContext context;
  const Clock::time_point t0 = Clock::now();
  if (call.rpc == "trainstep") {
    v1::TrainStepResponse response;
    const grpc::Status status = stub.TrainStep(&context, call.train, &response);
    if (measured) us.push_back(MicrosSince(t0));
    if (!status.ok()) Die("TrainStep", status);
    return response.loss();
  }
  v1::EvaluateResponse response;
  const grpc::Status status = stub.Evaluate(&context, call.evaluate, &response);
  if (measured) us.push_back(MicrosSince(t0));
  if (!status.ok()) Die("Evaluate", status);
  auto f = response.outputs().find("f");
  float value = 0;
  if (f != response.outputs().end() && f->second.data().size() == sizeof(float)) {
    std::memcpy(&value, f->second.data().data(), sizeof value);
  }
  return value;
}

void TimeHealthCheck(grpc::health::v1::Health::Stub& health, bool measured,
                     std::vector<double>& us) {
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const Clock::time_point t0 = Clock::now();
  const grpc::Status status = health.Check(&context, request, &response);
  if (measured) us.push_back(MicrosSince(t0));
  if (!status.ok()) Die("Health.Check", status);
}

}  // namespace

int CreateModel(Flags& flags) {
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string path = flags.Str("model", "");
  flags.Finish();
  Connection c = Connect(server);
  PrintJson({{"kind", "create"}, {"model_id", CreateModelOrDie(*c.stub, path)}});
  return 0;
}

int Latency(Flags& flags) {
  constexpr std::string_view kRpcs[] = {"trainstep", "evaluate"};
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string rpc = flags.Choice("rpc", "trainstep", kRpcs);
  const std::string model_path = flags.Str("model", "");  // a circuit whose inputs are parameters
  const std::string graph_path = flags.Str("graph", "");  // the same circuit with placeholders
  const std::string values = flags.Str("values", "x=3,y=-4");
  const int64_t calls = flags.Int("calls", 2000);
  const int64_t warmup = flags.Int("warmup", 100);
  const int server_pid = static_cast<int>(flags.Int("server-pid", 0));
  flags.Finish();
  Connection c = Connect(server);
  auto health = grpc::health::v1::Health::NewStub(c.channel);
  const LatencyCall call = PrepareLatencyCall(*c.stub, rpc, model_path, graph_path, values);

  // The RPC and a health check in turn, so drift on a shared machine hits both alike.
  std::vector<double> health_us, rpc_us;
  double first_value = 0;
  ThreadSampler sampler(server_pid, std::chrono::milliseconds(5));
  for (int64_t i = 0; i < warmup + calls; ++i) {
    if (i == warmup) sampler.Start();
    const bool measured = i >= warmup;
    TimeHealthCheck(*health, measured, health_us);
    const double value = TimeLatencyCall(*c.stub, call, measured, rpc_us);
    if (i == 0) first_value = value;
  }
  Json threads = sampler.Stop();
  if (!call.model_id.empty()) DeleteModel(*c.stub, call.model_id);
  PrintJson({{"kind", "latency"},
             {"rpc", rpc},
             {"health", LatencyJson(health_us)},
             {rpc, LatencyJson(rpc_us)},
             {"first_value", first_value},
             {"server_threads", threads}});
  return 0;
}

int Train(Flags& flags) {
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string models = flags.Str("model", "");  // comma-separated: cycled over the jobs
  const std::string existing = flags.Str("model-id", "");
  const int64_t batch = flags.Int("batch", 64);
  const int jobs = static_cast<int>(flags.Int("jobs", 1));
  const int window = static_cast<int>(flags.Int("window", 4));
  const int server_pid = static_cast<int>(flags.Int("server-pid", 0));
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  std::vector<std::string> paths;
  std::istringstream list(models);
  for (std::string path; std::getline(list, path, ',');) paths.push_back(path);
  if (paths.empty() || jobs < 1 || (!existing.empty() && jobs != 1)) {
    return flags.UsageError("needs --model PATH[,PATH...] (--model-id: one job)");
  }
  Connection c = Connect(server);
  struct Job {
    std::string path, model_id;
    std::vector<v1::TrainStepRequest> pool;
    StreamFigures figures;
  };
  std::vector<Job> all(static_cast<size_t>(jobs));
  for (int j = 0; j < jobs; ++j) {
    Job& job = all[static_cast<size_t>(j)];
    job.path = paths[static_cast<size_t>(j) % paths.size()];
    const v1::Graph graph = LoadGraphOrDie(job.path);
    job.model_id = existing.empty() ? CreateModelOrDie(*c.stub, job.path) : existing;
    job.pool = TrainPool(graph, batch);
  }
  ThreadSampler sampler(server_pid, std::chrono::milliseconds(5));
  sampler.Start();  // includes the warm-up steps: thread counts matter there too
  std::vector<std::thread> threads;
  for (Job& job : all) {
    threads.emplace_back(
        [&] { job.figures = RunTrainStream(*c.stub, job.model_id, job.pool, span, window); });
  }
  for (std::thread& t : threads) t.join();
  Json server_threads = sampler.Stop();
  Json per_job = Json::array();
  double total = 0;
  for (Job& job : all) {
    const double rate = static_cast<double>(job.figures.steps * batch) / job.figures.seconds;
    total += rate;
    per_job.push_back({{"model", job.path},
                       {"steps", job.figures.steps},
                       {"seconds", job.figures.seconds},
                       {"samples_per_s", rate},
                       {"first_loss", job.figures.first_loss}});
    if (existing.empty()) DeleteModel(*c.stub, job.model_id);
  }
  PrintJson({{"kind", "train"},
             {"batch", batch},
             {"jobs", per_job},
             {"samples_per_s", total},
             {"server_threads", server_threads}});
  return 0;
}

}  // namespace backflow::bench
