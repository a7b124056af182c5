// The optimizer's step alone, as Trainer::Step runs it: the current values read, the next
// snapshot's written into fresh tensors, for SGD (with and without momentum) and Adam, on one
// float32 parameter of 4 Mi elements (about the 1.1 M-parameter MLP of bench/run times four) and
// on the 61,706 parameters of LeNet-5 in ten tensors.
//
//   build/bin/backflow-optimizer-bench [--benchmark_filter=adam]
//
// It is what the non-finite check of each update (Note [Non-finite updates] in optimizer.cc)
// is measured with: the figures before and after that check are in its commit message.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/optim/optimizer.h"

namespace backflow {
namespace {

using TensorMap = std::unordered_map<std::string, Tensor>;

// Small finite values that keep every update finite step after step.
Tensor Filled(const Shape& shape, double scale) {
  Tensor t(DType::kFloat32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    p[i] = static_cast<float>(scale * static_cast<double>((i * 7919) % 1000 - 500) / 500.0);
  }
  return t;
}

void RunSteps(benchmark::State& state, const OptimizerConfig& config,
              const std::vector<Shape>& shapes) {
  TensorMap current, grads_storage;
  std::unordered_map<std::string, const Tensor*> grads;
  int64_t elements = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string name = "p" + std::to_string(i);
    current.emplace(name, Filled(shapes[i], 0.1));
    grads_storage.emplace(name, Filled(shapes[i], 1e-3));
    elements += shapes[i].num_elements();
  }
  for (const auto& [name, g] : grads_storage) grads[name] = &g;
  std::unique_ptr<Optimizer> optimizer = *Optimizer::Create(config);
  for (auto _ : state) {
    TensorMap next;
    for (const auto& [name, value] : current) {
      next.emplace(name, Tensor::Uninitialized(value.dtype(), value.shape()));
    }
    Status status = optimizer->Step(current, next, grads);
    if (!status.ok()) state.SkipWithError(status.message().c_str());
    benchmark::DoNotOptimize(next);
  }
  state.SetItemsProcessed(state.iterations() * elements);
}

const std::vector<Shape> kLarge = {Shape({2048, 2048})};
const std::vector<Shape> kLeNet = {Shape({6, 1, 5, 5}), Shape({6}),      Shape({16, 6, 5, 5}),
                                   Shape({16}),         Shape({120, 400}), Shape({120}),
                                   Shape({84, 120}),    Shape({84}),     Shape({10, 84}),
                                   Shape({10})};

const OptimizerConfig kSgd = {.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01};
const OptimizerConfig kMomentum = {
    .kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
const OptimizerConfig kAdam = {.kind = OptimizerConfig::Kind::kAdam, .learning_rate = 1e-3};

void BM_Sgd4M(benchmark::State& s) { RunSteps(s, kSgd, kLarge); }
void BM_Momentum4M(benchmark::State& s) { RunSteps(s, kMomentum, kLarge); }
void BM_Adam4M(benchmark::State& s) { RunSteps(s, kAdam, kLarge); }
void BM_MomentumLeNet(benchmark::State& s) { RunSteps(s, kMomentum, kLeNet); }
void BM_AdamLeNet(benchmark::State& s) { RunSteps(s, kAdam, kLeNet); }

BENCHMARK(BM_Sgd4M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Momentum4M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Adam4M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MomentumLeNet)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AdamLeNet)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace backflow

BENCHMARK_MAIN();
