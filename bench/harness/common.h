// Shared pieces of backflow-bench (bench/harness/): flags, engine batches, percentiles and
// the one-line JSON every subcommand prints for bench/run to read.
#ifndef BACKFLOW_BENCH_HARNESS_COMMON_H_
#define BACKFLOW_BENCH_HARNESS_COMMON_H_

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "backflow/v1/service.pb.h"
#include "clients/common/flags.h"
#include "engine/core/tensor.h"
#include "engine/core/tensor.h"

namespace backflow::bench {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// The flags of one subcommand, parsed by the parser of every backflow binary
// (clients/common/flags.h: a flag given twice keeps its last value; an unknown flag is a usage
// error before the subcommand runs). A value the getters cannot read is a usage error too:
// they print it and exit 2.
class Flags {
 public:
  // `program` names the subcommand in errors: "backflow-bench sgemm"; `specs` are its flags.
  Flags(std::string program, clients::Args args, std::span<const clients::FlagSpec> specs);
  std::string Str(const std::string& name, const std::string& fallback);
  int64_t Int(const std::string& name, int64_t fallback);
  double Real(const std::string& name, double fallback);
  // Str(name, fallback), which must be one of `choices`.
  std::string Choice(const std::string& name, const std::string& fallback,
                     std::span<const std::string_view> choices);
  // Exits 2 for an operand, or for a flag that was given but that no getter asked for (one
  // declared for the subcommand in main.cc that its code does not read).
  void Finish() const;
  // Prints `message` as this subcommand's usage error; returns the exit code, 2.
  int UsageError(const std::string& message) const;

 private:
  [[noreturn]] void Exit(const Status& status) const;

  std::string program_;
  clients::Args args_;
  std::vector<std::string> declared_;
  std::set<std::string> used_;
};

// The flags of a timed loop (Span::FromFlags).
std::vector<clients::FlagSpec> SpanFlags();

// How long a measurement runs: at least `seconds` and at least `min_steps` steps, after
// `warmup` steps that are not counted.
struct Span {
  double seconds = 3;
  int64_t warmup = 5;
  int64_t min_steps = 20;
  static Span FromFlags(Flags& flags);
  bool Done(Clock::time_point start, int64_t steps) const;
};

// The synthetic batch of a model as engine tensors: clients::SyntheticBatch with
// SyntheticClasses(graph) classes, decoded (float32 values, labels as floats in [0, classes),
// integer placeholders as ids in [0, classes) of their own dtype). Seeded, so every run (and
// bench/pytorch_bench.py's pool of the same size) does the same work, and the same seed sends
// the same batch over the wire.
struct NamedValues {
  std::vector<std::string> names;  // the graph's placeholders, in order
  std::vector<Tensor> tensors;
};
NamedValues SyntheticBatch(const v1::Graph& graph, int64_t batch, uint64_t seed);

// The number of classes labels are drawn from: the width of the logits that the graph's first
// softmax_cross_entropy reads (2 for transformer_repeat), or 10 if the graph has none or that
// width is not known.
int64_t SyntheticClasses(const v1::Graph& graph);

// The nearest-rank percentile q (0..100] of `samples` (clients/load/stats.h; sorted here); 0
// when empty.
double Percentile(std::vector<double> samples, double q);

// A workload's model: a backflow graph in text format (models/...), or an ONNX model (a path
// ending in .onnx), imported as the server imports it with a softmax cross-entropy loss on its
// only output and the labels input "labels"; `values` then holds its initializers.
struct ModelFile {
  v1::Graph graph;
  std::map<std::string, Tensor> values;
  std::string onnx;  // the file's bytes, for CreateModelRequest.onnx
};
ModelFile LoadModelOrDie(const std::string& path);

// CreateModel for the model of `path`: its graph or its ONNX bytes (softmax cross-entropy on
// the output), seed 1, and the optimizer of every workload (SGD, lr 0.01, momentum 0.9, as in
// engine_work.cc and bench/pytorch_bench.py).
v1::CreateModelRequest CreateRequestFor(const std::string& path);

// LoadModelOrDie(path).graph (exits 1 with the error if it cannot read the file).
v1::Graph LoadGraphOrDie(const std::string& path);

// Prints `object` as one line on stdout and flushes.
void PrintJson(const Json& object);

// Seconds since `start`.
double SecondsSince(Clock::time_point start);

// This process's peak resident set (getrusage ru_maxrss), KiB.
int64_t PeakRssKib();

}  // namespace backflow::bench

#endif  // BACKFLOW_BENCH_HARNESS_COMMON_H_
