// The in-process figures of backflow-bench: training steps and inference straight on the
// engine's Trainer (no gRPC), and the sgemm roofline of this machine.
#include <iostream>
#include <memory>
#include <optional>

#include "bench/harness/subcommands.h"
#include "engine/api/import.h"
#include "engine/api/machine.h"
#include "engine/api/trainer.h"
#include "engine/ir/cost.h"

namespace backflow::bench {
namespace {

// The batches of one model as engine tensors, a pool of `count` cycled by the loops below (the
// PyTorch side cycles the same number).
struct EngineBatches {
  std::vector<std::vector<Tensor>> tensors;  // [batch][placeholder]
  std::vector<FeedMap> feeds;
};

EngineBatches MakeBatches(const v1::Graph& graph, int64_t batch, int count) {
  EngineBatches out;
  out.tensors.resize(static_cast<size_t>(count));
  std::vector<std::string> names;
  for (int b = 0; b < count; ++b) {
    NamedValues values = SyntheticBatch(graph, batch, static_cast<uint64_t>(b) + 1);
    out.tensors[static_cast<size_t>(b)] = std::move(values.tensors);
    names = std::move(values.names);
  }
  // The feeds point into `tensors`, which no longer grows.
  for (auto& tensors : out.tensors) {
    FeedMap feeds;
    for (size_t i = 0; i < names.size(); ++i) feeds[names[i]] = &tensors[i];
    out.feeds.push_back(std::move(feeds));
  }
  return out;
}

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::cerr << "backflow-bench: " << what << ": " << status.ToString() << "\n";
  std::exit(1);
}

struct Model {
  v1::Graph proto;
  std::unique_ptr<Trainer> trainer;
  int64_t forward_flops = 0;  // per sample
};

Model MakeModel(const std::string& path) {
  Model model;
  ModelFile file = LoadModelOrDie(path);
  model.proto = std::move(file.graph);
  StatusOr<Graph> graph = ImportGraph(model.proto);
  if (!graph.ok()) Die(path, graph.status());
  model.forward_flops = EstimateForwardFlops(*graph);
  std::vector<std::string> metrics;
  for (const std::string& output : model.proto.outputs())
    if (output == "accuracy") metrics.push_back(output);
  // The optimizer every workload of bench/run uses, here and in bench/pytorch_bench.py.
  const OptimizerConfig sgd = {
      .kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(
      *std::move(graph),
      TrainerOptions{.dtype = DType::kFloat32, .seed = 1, .optimizer = sgd, .metrics = metrics});
  if (!trainer.ok()) Die(path, trainer.status());
  model.trainer = *std::move(trainer);
  if (!file.values.empty()) {
    const Status set = model.trainer->SetParameters(ParameterMap(file.values.begin(), file.values.end()));
    if (!set.ok()) Die(path, set);
  }
  return model;
}

// Calls `once` span.warmup times, prints the steady-state marker (bench/run counts oneDNN's
// "create" lines after it, with ONEDNN_VERBOSE, to prove no primitive is created in steady
// state), then calls it until the span is done. Returns each measured call's microseconds and
// sets `seconds` to the measured span.
template <typename F>
std::vector<double> TimeCalls(const Span& span, F once, double* seconds) {
  for (int64_t i = 0; i < span.warmup; ++i) once();
  std::cout << "backflow-bench: steady state" << std::endl;
  std::vector<double> us;
  const Clock::time_point start = Clock::now();
  while (!span.Done(start, static_cast<int64_t>(us.size()))) {
    const Clock::time_point t0 = Clock::now();
    once();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  *seconds = SecondsSince(start);
  return us;
}

}  // namespace

int EngineTrain(Flags& flags) {
  const std::string path = flags.Str("model", "");
  const int64_t batch = flags.Int("batch", 64);
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  Model model = MakeModel(path);
  const EngineBatches batches = MakeBatches(model.proto, batch, 8);
  size_t next = 0;
  std::optional<double> first_loss;
  auto step = [&] {
    StatusOr<StepResult> result = model.trainer->Step(batches.feeds[next++ % batches.feeds.size()]);
    if (!result.ok()) Die(path, result.status());
    if (!first_loss) first_loss = result->loss;
  };
  double seconds = 0;
  const std::vector<double> step_us = TimeCalls(span, step, &seconds);
  const auto steps = static_cast<double>(step_us.size());
  PrintJson({{"kind", "engine_train"},
             {"model", path},
             {"batch", batch},
             {"steps", step_us.size()},
             {"seconds", seconds},
             {"samples_per_s", steps * static_cast<double>(batch) / seconds},
             {"step_p50_us", Percentile(step_us, 50)},
             {"step_p99_us", Percentile(step_us, 99)},
             {"forward_flops_per_sample", model.forward_flops},
             {"first_loss", first_loss.value_or(0)},
             // The most cores kernels held at once (Note [Threads never exceed cores]).
             {"compute_cores_peak", PeakComputeCoresInUse()},
             {"cores", ComputeCores()},
             {"peak_rss_kib", PeakRssKib()}});
  return 0;
}

int EngineInfer(Flags& flags) {
  const std::string path = flags.Str("model", "");
  const int64_t batch = flags.Int("batch", 64);
  const std::string output = flags.Str("output", "logits");
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  Model model = MakeModel(path);
  // Inference feeds only the inputs the output needs: drop the labels.
  EngineBatches batches = MakeBatches(model.proto, batch, 8);
  for (FeedMap& feeds : batches.feeds) feeds.erase("labels");
  size_t next = 0;
  auto infer = [&] {
    auto result = model.trainer->Infer(batches.feeds[next++ % batches.feeds.size()], {output});
    if (!result.ok()) Die(path, result.status());
  };
  double seconds = 0;
  const std::vector<double> call_us = TimeCalls(span, infer, &seconds);
  PrintJson({{"kind", "engine_infer"},
             {"model", path},
             {"batch", batch},
             {"calls", call_us.size()},
             {"seconds", seconds},
             {"samples_per_s",
              static_cast<double>(call_us.size()) * static_cast<double>(batch) / seconds},
             {"p50_us", Percentile(call_us, 50)},
             {"p99_us", Percentile(call_us, 99)},
             {"forward_flops_per_sample", model.forward_flops},
             {"peak_rss_kib", PeakRssKib()}});
  return 0;
}

int Sgemm(Flags& flags) {
  const int64_t n = flags.Int("size", 2048);
  const int threads = static_cast<int>(flags.Int("threads", ComputeCores()));
  const Span span = Span::FromFlags(flags);
  flags.Finish();
  StatusOr<std::unique_ptr<SgemmProbe>> probe = SgemmProbe::Create(n, threads);
  if (!probe.ok()) Die("sgemm", probe.status());
  auto run = [&] {
    const Status status = (*probe)->Run();
    if (!status.ok()) Die("sgemm", status);
  };
  for (int64_t i = 0; i < span.warmup; ++i) run();
  int64_t calls = 0;
  const Clock::time_point start = Clock::now();
  while (!span.Done(start, calls)) {
    run();
    ++calls;
  }
  const double seconds = SecondsSince(start);
  const double flops = (*probe)->flops();
  PrintJson({{"kind", "sgemm"},
             {"size", n},
             {"threads", threads},
             {"calls", calls},
             {"seconds", seconds},
             {"gflop_per_s", flops * static_cast<double>(calls) / seconds / 1e9}});
  return 0;
}

}  // namespace backflow::bench
