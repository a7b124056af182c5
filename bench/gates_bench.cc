// Per-gate cost at LeNet-5 sizes (batch 64), forward alone and forward plus backward, through
// the whole engine: each case is a one-gate graph run by Program::Run, so the figures include
// the executor's per-node overhead as training sees it, not only the kernel.
//
//   build/bin/backflow-gates-bench [--benchmark_filter=conv]
//
// Each case is a graph in text format whose node "y" is the gate under test; for the backward
// the bench appends L = sum(y) (or takes y itself when it is a scalar loss) and fetches dL/d of
// every float input, which runs the gate's backward gates exactly as training does.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/api/import.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

struct GateCase {
  const char* name;
  const char* graph;  // placeholders with full shapes, parameters, and the node "y"
};

const GateCase kCases[] = {
    {"matmul_64x784x256", R"graph(
       placeholders { name: "a" shape: [64, 784] }
       placeholders { name: "b" shape: [784, 256] }
       nodes { name: "y" op: "matmul" inputs: ["a", "b"] })graph"},
    {"linear_64x784x256", R"graph(
       placeholders { name: "x" shape: [64, 784] }
       parameters { name: "w" shape: [784, 256] init { glorot {} } }
       parameters { name: "b" shape: [256] }
       nodes { name: "y" op: "linear" inputs: ["x", "w", "b"] })graph"},
    {"conv2d_64x1x28x28_6@5x5_pad2", R"graph(
       placeholders { name: "x" shape: [64, 1, 28, 28] }
       parameters { name: "w" shape: [6, 1, 5, 5] init { he {} } }
       parameters { name: "b" shape: [6] }
       nodes {
         name: "y" op: "conv2d" inputs: ["x", "w", "b"]
         attrs { key: "padding" value { ints { values: [2, 2] } } }
       })graph"},
    {"conv2d_64x6x14x14_16@5x5", R"graph(
       placeholders { name: "x" shape: [64, 6, 14, 14] }
       parameters { name: "w" shape: [16, 6, 5, 5] init { he {} } }
       parameters { name: "b" shape: [16] }
       nodes { name: "y" op: "conv2d" inputs: ["x", "w", "b"] })graph"},
    {"max_pool2d_64x6x28x28_2x2", R"graph(
       placeholders { name: "x" shape: [64, 6, 28, 28] }
       nodes {
         name: "y" op: "max_pool2d" inputs: "x"
         attrs { key: "kernel" value { ints { values: [2, 2] } } }
         attrs { key: "stride" value { ints { values: [2, 2] } } }
       })graph"},
    {"softmax_cross_entropy_64x10", R"graph(
       placeholders { name: "x" shape: [64, 10] }
       placeholders { name: "labels" shape: [64] }
       nodes { name: "y" op: "softmax_cross_entropy" inputs: ["x", "labels"] })graph"},
    {"relu_64x256", R"graph(
       placeholders { name: "x" shape: [64, 256] }
       nodes { name: "y" op: "relu" inputs: "x" })graph"},
    {"tanh_64x256", R"graph(
       placeholders { name: "x" shape: [64, 256] }
       nodes { name: "y" op: "tanh" inputs: "x" })graph"},
    {"add_64x256", R"graph(
       placeholders { name: "x" shape: [64, 256] }
       placeholders { name: "z" shape: [64, 256] }
       nodes { name: "y" op: "add" inputs: ["x", "z"] })graph"},
};

// A graph ready to run, its inputs, and what a forward or a forward+backward run fetches.
struct Prepared {
  std::shared_ptr<Graph> graph;
  std::map<std::string, Tensor> tensors;
  FeedMap feeds;
  std::vector<ValueId> forward, backward;
};

// Placeholders get values in [-1, 1), except "labels", which get class ids below 10.
Status FillInputs(Prepared& p) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (ValueId id : p.graph->ValuesOfKind(ValueKind::kPlaceholder)) {
    const Value& v = p.graph->value(id);
    std::vector<double> values(static_cast<size_t>(v.shape.num_elements()));
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = v.name == "labels" ? static_cast<double>(i % 10) : uniform(rng);
    }
    p.tensors[v.name] = Tensor::FromValues(DType::kFloat32, v.shape, values);
  }
  BF_ASSIGN_OR_RETURN(auto params, InitializeParameters(*p.graph, DType::kFloat32, 1));
  for (auto& [name, tensor] : params) p.tensors[name] = std::move(tensor);
  for (const auto& [name, tensor] : p.tensors) p.feeds[name] = &tensor;
  return Status::Ok();
}

StatusOr<std::unique_ptr<Prepared>> Prepare(const GateCase& c) {
  BF_ASSIGN_OR_RETURN(v1::Graph proto, ParseGraphText(c.graph));
  BF_ASSIGN_OR_RETURN(Graph imported, ImportGraph(proto));
  auto p = std::make_unique<Prepared>();
  p->graph = std::make_shared<Graph>(std::move(imported));
  Graph& g = *p->graph;
  const ValueId y = *g.Find("y");
  p->forward = {y};
  ValueId loss = y;
  if (g.value(y).shape.num_elements() != 1) {
    BF_ASSIGN_OR_RETURN(loss, g.AddNode("L", "sum", {y}));
  }
  std::vector<ValueId> wrt;
  for (ValueId id = 0; id < g.num_values(); ++id) {
    const Value& v = g.value(id);
    const bool input = v.kind == ValueKind::kPlaceholder || v.kind == ValueKind::kParameter;
    if (input && v.name != "labels") wrt.push_back(id);
  }
  BF_ASSIGN_OR_RETURN(p->backward, AppendBackward(g, loss, wrt));
  p->backward.push_back(loss);
  BF_RETURN_IF_ERROR(FillInputs(*p));
  return p;
}

void RunGate(benchmark::State& state, const GateCase& c, bool backward) {
  StatusOr<std::unique_ptr<Prepared>> p = Prepare(c);
  if (!p.ok()) {
    state.SkipWithError(p.status().ToString().c_str());
    return;
  }
  Program program((*p)->graph);
  const std::vector<ValueId>& fetches = backward ? (*p)->backward : (*p)->forward;
  StatusOr<std::vector<Tensor>> warm = program.Run((*p)->feeds, fetches);  // compiles the plan
  if (!warm.ok()) {
    state.SkipWithError(warm.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    StatusOr<std::vector<Tensor>> out = program.Run((*p)->feeds, fetches);
    benchmark::DoNotOptimize(out);
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 64, benchmark::Counter::kIsRate);
}

// Registered at start-up from the table, two benchmarks per case: gate/forward and
// gate/forward_backward.
const bool kRegistered = [] {
  for (const GateCase& c : kCases) {
    for (bool backward : {false, true}) {
      const std::string name = std::string(c.name) + (backward ? "/forward_backward" : "/forward");
      benchmark::RegisterBenchmark(
          name.c_str(), [&c, backward](benchmark::State& state) { RunGate(state, c, backward); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace backflow

BENCHMARK_MAIN();
