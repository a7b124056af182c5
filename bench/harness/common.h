// Shared pieces of backflow-bench (bench/harness/): flags, synthetic batches, percentiles and
// the one-line JSON every subcommand prints for bench/run to read.
#ifndef BACKFLOW_BENCH_HARNESS_COMMON_H_
#define BACKFLOW_BENCH_HARNESS_COMMON_H_

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "backflow/v1/tensor.pb.h"

namespace backflow::bench {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// --name=value or --name value; a flag given twice keeps the last value. Unknown flags are an
// error when the subcommand reads its flags with Finish().
class Flags {
 public:
  Flags(int argc, char** argv, int first);
  std::string Str(const std::string& name, const std::string& fallback);
  int64_t Int(const std::string& name, int64_t fallback);
  double Real(const std::string& name, double fallback);
  // Exits 2 naming any flag no getter asked for.
  void Finish() const;

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
};

// How long a measurement runs: at least `seconds` and at least `min_steps` steps, after
// `warmup` steps that are not counted.
struct Span {
  double seconds = 3;
  int64_t warmup = 5;
  int64_t min_steps = 20;
  static Span FromFlags(Flags& flags);
  bool Done(Clock::time_point start, int64_t steps) const;
};

// The synthetic batch of a model: a placeholder of shape [-1] holds class ids in [0, 10) stored
// as floats, any other uniform values in [0, 1); -1 becomes `batch`. Seeded, so every run
// (and bench/pytorch_bench.py's pool of the same size) does the same work.
struct NamedValues {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> values;
};
NamedValues SyntheticBatch(const v1::Graph& graph, int64_t batch, uint64_t seed);
google::protobuf::Map<std::string, v1::Tensor> ToWire(const NamedValues& batch);

// The nearest-rank percentile q (0..100] of `samples` (clients/load/stats.h; sorted here); 0
// when empty.
double Percentile(std::vector<double> samples, double q);

// Reads models/... text graphs (exits 1 with the error if it cannot).
v1::Graph LoadGraphOrDie(const std::string& path);

// Prints `object` as one line on stdout and flushes.
void PrintJson(const Json& object);

// Seconds since `start`.
double SecondsSince(Clock::time_point start);

// This process's peak resident set (getrusage ru_maxrss), KiB.
int64_t PeakRssKib();

}  // namespace backflow::bench

#endif  // BACKFLOW_BENCH_HARNESS_COMMON_H_
