// The end-to-end figures of backflow-bench, over gRPC to a running backflow-server: request
// latency against the transport floor (a grpc.health.v1 Check), training throughput over the
// Train stream (one or several jobs at once), and Infer throughput at a given concurrency.
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "backflow/v1/service.grpc.pb.h"
#include "bench/harness/sampler.h"
#include "bench/harness/subcommands.h"
#include "clients/common/rpc.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace backflow::bench {
namespace {

using v1::Backflow;

[[noreturn]] void Die(const std::string& what, const grpc::Status& status) {
  std::cerr << "backflow-bench: " << what << ": " << clients::FormatStatus(status) << "\n";
  std::exit(1);
}

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Backflow::Stub> stub;
};

Connection Connect(const std::string& address) {
  Connection c{clients::OpenChannel(address), nullptr};
  if (!c.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::cerr << "backflow-bench: cannot reach the server at " << address << "\n";
    std::exit(1);
  }
  c.stub = Backflow::NewStub(c.channel);
  return c;
}

// The optimizer of every workload, as in engine_work.cc and bench/pytorch_bench.py.
v1::OptimizerSpec Sgd() {
  v1::OptimizerSpec spec;
  spec.set_kind(v1::OptimizerSpec::SGD);
  spec.set_learning_rate(0.01);
  spec.set_momentum(0.9);
  return spec;
}

std::string CreateModelOrDie(Backflow::Stub& stub, const v1::Graph& graph) {
  v1::CreateModelRequest request;
  *request.mutable_graph() = graph;
  *request.mutable_optimizer() = Sgd();
  request.set_seed(1);
  request.set_name("backflow-bench");
  v1::ModelInfo info;
  grpc::ClientContext context;
  const grpc::Status status = stub.CreateModel(&context, request, &info);
  if (!status.ok()) Die("CreateModel", status);
  return info.id();
}

void DeleteModel(Backflow::Stub& stub, const std::string& id) {
  v1::DeleteModelRequest request;
  request.set_model_id(id);
  v1::DeleteModelResponse response;
  grpc::ClientContext context;
  stub.DeleteModel(&context, request, &response);  // best effort: the run's figures are taken
}

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

Json LatencyJson(const std::vector<double>& us) {
  return {{"calls", us.size()}, {"p50_us", Percentile(us, 50)}, {"p99_us", Percentile(us, 99)}};
}

// One training job: a Train stream on `model_id` that keeps up to `window` requests in flight
// (a writer thread) while this thread reads the answers.
struct StreamFigures {
  int64_t steps = 0;  // after the warm-up
  double seconds = 0;
  double first_loss = 0;
};

StreamFigures RunTrainStream(Backflow::Stub& stub, const std::string& model_id,
                             const std::vector<v1::TrainStepRequest>& pool, const Span& span,
                             int window) {
  grpc::ClientContext context;
  auto stream = stub.Train(&context);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;    // GUARDED_BY(mu)
  bool stop = false;    // GUARDED_BY(mu)
  std::thread writer([&] {
    for (size_t i = 0;; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || in_flight < window; });
        if (stop) break;
        ++in_flight;
      }
      v1::TrainStepRequest request = pool[i % pool.size()];
      if (i == 0) request.set_model_id(model_id);
      if (!stream->Write(request)) break;  // the stream ended: Finish says why
    }
    stream->WritesDone();
  });
  StreamFigures figures;
  v1::TrainStepResponse response;
  int64_t answered = 0;
  Clock::time_point start;
  while (stream->Read(&response)) {
    ++answered;
    if (answered == 1) figures.first_loss = response.loss();
    if (answered == span.warmup) start = Clock::now();
    const int64_t measured = answered - span.warmup;
    bool done = false;
    if (measured > 0) {
      figures.steps = measured;
      figures.seconds = SecondsSince(start);
      done = span.Done(start, measured);
    }
    std::lock_guard lock(mu);
    --in_flight;
    if (done) stop = true;
    cv.notify_all();
  }
  {
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
  writer.join();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) Die("Train stream", status);
  return figures;
}

std::vector<v1::TrainStepRequest> TrainPool(const v1::Graph& graph, int64_t batch) {
  std::vector<v1::TrainStepRequest> pool(8);
  for (size_t i = 0; i < pool.size(); ++i)
    *pool[i].mutable_batch() = ToWire(SyntheticBatch(graph, batch, i + 1));
  return pool;
}

}  // namespace

int CreateModel(Flags& flags) {
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string path = flags.Str("model", "");
  flags.Finish();
  Connection c = Connect(server);
  PrintJson({{"kind", "create"}, {"model_id", CreateModelOrDie(*c.stub, LoadGraphOrDie(path))}});
  return 0;
}

int Latency(Flags& flags) {
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string rpc = flags.Str("rpc", "trainstep");  // or evaluate
  const std::string model_path = flags.Str("model", "");   // a circuit whose inputs are parameters
  const std::string graph_path = flags.Str("graph", "");   // the same circuit with placeholders
  const std::string values = flags.Str("values", "x=3,y=-4");
  const int64_t calls = flags.Int("calls", 2000);
  const int64_t warmup = flags.Int("warmup", 100);
  const int server_pid = static_cast<int>(flags.Int("server-pid", 0));
  flags.Finish();
  if (rpc != "trainstep" && rpc != "evaluate") {
    std::cerr << "backflow-bench latency: --rpc is trainstep or evaluate\n";
    return 2;
  }
  Connection c = Connect(server);
  auto health = grpc::health::v1::Health::NewStub(c.channel);
  std::string model_id;
  v1::TrainStepRequest train;
  v1::EvaluateRequest evaluate;
  if (rpc == "trainstep") {
    model_id = CreateModelOrDie(*c.stub, LoadGraphOrDie(model_path));
    train.set_model_id(model_id);
  } else {
    *evaluate.mutable_graph() = LoadGraphOrDie(graph_path);
    std::istringstream pairs(values);
    for (std::string pair; std::getline(pairs, pair, ',');) {
      const size_t eq = pair.find('=');
      const float value = std::stof(pair.substr(eq + 1));
      v1::Tensor& t = (*evaluate.mutable_values())[pair.substr(0, eq)];
      t.set_dtype(v1::FLOAT32);
      t.mutable_data()->assign(reinterpret_cast<const char*>(&value), sizeof value);
      evaluate.add_wrt(pair.substr(0, eq));
    }
  }

  // The RPC and a health check in turn, so drift on a shared machine hits both alike.
  std::vector<double> health_us, rpc_us;
  double first_value = 0;
  ThreadSampler sampler(server_pid, std::chrono::milliseconds(5));
  for (int64_t i = 0; i < warmup + calls; ++i) {
    if (i == warmup) sampler.Start();
    const bool measured = i >= warmup;
    {
      grpc::ClientContext context;
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
      const Clock::time_point t0 = Clock::now();
      const grpc::Status status = health->Check(&context, request, &response);
      if (measured) health_us.push_back(MicrosSince(t0));
      if (!status.ok()) Die("Health.Check", status);
    }
    grpc::ClientContext context;
    if (rpc == "trainstep") {
      v1::TrainStepResponse response;
      const Clock::time_point t0 = Clock::now();
      const grpc::Status status = c.stub->TrainStep(&context, train, &response);
      if (measured) rpc_us.push_back(MicrosSince(t0));
      if (!status.ok()) Die("TrainStep", status);
      if (i == 0) first_value = response.loss();
    } else {
      v1::EvaluateResponse response;
      const Clock::time_point t0 = Clock::now();
      const grpc::Status status = c.stub->Evaluate(&context, evaluate, &response);
      if (measured) rpc_us.push_back(MicrosSince(t0));
      if (!status.ok()) Die("Evaluate", status);
      auto f = response.outputs().find("f");
      if (i == 0 && f != response.outputs().end() && f->second.data().size() == sizeof(float)) {
        float v = 0;
        std::memcpy(&v, f->second.data().data(), sizeof v);
        first_value = v;
      }
    }
  }
  Json threads = sampler.Stop();
  if (!model_id.empty()) DeleteModel(*c.stub, model_id);
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
    std::cerr << "backflow-bench train: needs --model PATH[,PATH...] (--model-id: one job)\n";
    return 2;
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
    job.model_id = existing.empty() ? CreateModelOrDie(*c.stub, graph) : existing;
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

int Infer(Flags& flags) {
  const std::string server = flags.Str("server", "127.0.0.1:50051");
  const std::string path = flags.Str("model", "");
  const std::string existing = flags.Str("model-id", "");
  const std::string output = flags.Str("output", "logits");
  const int64_t batch = flags.Int("batch", 64);
  const int concurrency = static_cast<int>(flags.Int("concurrency", 1));
  const int server_pid = static_cast<int>(flags.Int("server-pid", 0));
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  Connection c = Connect(server);
  const v1::Graph graph = LoadGraphOrDie(path);
  const std::string model_id = existing.empty() ? CreateModelOrDie(*c.stub, graph) : existing;
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  std::atomic<bool> stop{false};
  std::atomic<int> warm{0};
  Clock::time_point start;
  std::mutex start_mu;
  ThreadSampler sampler(server_pid, std::chrono::milliseconds(5));
  auto worker = [&](int w) {
    v1::InferRequest request;
    request.set_model_id(model_id);
    *request.mutable_inputs() = ToWire(SyntheticBatch(graph, batch, static_cast<uint64_t>(w) + 1));
    request.mutable_inputs()->erase("labels");
    request.add_outputs(output);
    auto call = [&] {
      grpc::ClientContext context;
      v1::InferResponse response;
      const grpc::Status status = c.stub->Infer(&context, request, &response);
      if (!status.ok()) Die("Infer", status);
    };
    for (int64_t i = 0; i < span.warmup; ++i) call();
    // The measured span starts when the last worker is warm.
    if (++warm == concurrency) {
      std::lock_guard lock(start_mu);
      start = Clock::now();
      sampler.Start();
    }
    while (warm.load() < concurrency) std::this_thread::yield();
    auto& mine = latencies[static_cast<size_t>(w)];
    while (!stop.load()) {
      const Clock::time_point t0 = Clock::now();
      call();
      mine.push_back(MicrosSince(t0));
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < concurrency; ++w) threads.emplace_back(worker, w);
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
  const double seconds = SecondsSince(measured_from);
  Json server_threads = sampler.Stop();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  if (existing.empty()) DeleteModel(*c.stub, model_id);
  PrintJson({{"kind", "infer"},
             {"batch", batch},
             {"concurrency", concurrency},
             {"calls", all.size()},
             {"seconds", seconds},
             {"samples_per_s", static_cast<double>(all.size()) * static_cast<double>(batch) / seconds},
             {"p50_us", Percentile(all, 50)},
             {"p99_us", Percentile(all, 99)},
             {"server_threads", server_threads}});
  return 0;
}

}  // namespace backflow::bench
