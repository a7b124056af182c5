// Whole training steps (Trainer::Step: forward, backward and an SGD-with-momentum update) of
// the models bench/pytorch_lenet.py also times, on one fixed synthetic batch of 64, so the two
// can be compared step for step (bench/run.sh prints them side by side).
//
//   build/bin/backflow-train-bench [--benchmark_filter=lenet5]
//
// Counters: step_time and samples/s, both in wall-clock time (the engine runs on several threads).
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/ir/import.h"
#include "engine/optim/trainer.h"

namespace backflow {
namespace {

constexpr int64_t kBatch = 64;

struct Batch {
  Tensor images, labels;
};

// Pixels uniform in [0, 1) and labels cycling through the ten classes: the data do not matter
// for speed, only the shapes.
Batch SyntheticBatch(const Shape& image_shape) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> pixel(0, 1);
  std::vector<double> pixels(static_cast<size_t>(image_shape.num_elements()));
  for (double& p : pixels) p = pixel(rng);
  std::vector<double> labels(kBatch);
  for (int64_t i = 0; i < kBatch; ++i) labels[static_cast<size_t>(i)] = static_cast<double>(i % 10);
  return {Tensor::FromValues(DType::kFloat32, image_shape, pixels),
          Tensor::FromValues(DType::kFloat32, Shape{kBatch}, labels)};
}

StatusOr<std::unique_ptr<Trainer>> MakeTrainer(const std::string& model) {
  BF_ASSIGN_OR_RETURN(v1::Graph proto,
                      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + model));
  BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(proto));
  // The configuration bench/pytorch_lenet.py uses.
  const OptimizerConfig sgd = {
      .kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
  return Trainer::Create(
      std::move(graph),
      TrainerOptions{
          .dtype = DType::kFloat32, .seed = 1, .optimizer = sgd, .metrics = {"accuracy"}});
}

void TrainStep(benchmark::State& state, const std::string& model) {
  StatusOr<std::unique_ptr<Trainer>> trainer = MakeTrainer(model);
  if (!trainer.ok()) {
    state.SkipWithError(trainer.status().ToString().c_str());
    return;
  }
  const Batch batch = SyntheticBatch(Shape{kBatch, 1, 28, 28});
  const FeedMap feeds = {{"images", &batch.images}, {"labels", &batch.labels}};
  // The first step compiles the plan (oneDNN primitives included): not what a step costs.
  StatusOr<StepResult> warm = (*trainer)->Step(feeds);
  if (!warm.ok()) {
    state.SkipWithError(warm.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    StatusOr<StepResult> step = (*trainer)->Step(feeds);
    if (!step.ok()) {
      state.SkipWithError(step.status().ToString().c_str());
      return;
    }
  }
  // Seconds per step (shown as e.g. "step_time=2.5ms"; the JSON holds seconds), and throughput.
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["step_time"] =
      benchmark::Counter(iterations, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["samples/s"] =
      benchmark::Counter(iterations * kBatch, benchmark::Counter::kIsRate);
}

// Names match bench/pytorch_lenet.py's "model=" so bench/run.sh can pair them.
BENCHMARK_CAPTURE(TrainStep, lenet5, std::string("lenet5.pbtxt"))
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(TrainStep, mlp_tanh, std::string("mlp_tanh.pbtxt"))
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace backflow

BENCHMARK_MAIN();
