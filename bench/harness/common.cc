#include "bench/harness/common.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "clients/load/stats.h"
#include "engine/ir/import.h"

namespace backflow::bench {

Flags::Flags(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      std::cerr << "backflow-bench: unexpected argument '" << arg << "'\n";
      std::exit(2);
    }
    arg = arg.substr(2);
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      values_[arg.substr(0, eq)] = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      values_[arg] = argv[++i];
    } else {
      std::cerr << "backflow-bench: --" << arg << " needs a value\n";
      std::exit(2);
    }
  }
}

std::string Flags::Str(const std::string& name, const std::string& fallback) {
  used_[name] = true;
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Flags::Int(const std::string& name, int64_t fallback) {
  const std::string text = Str(name, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0') {
    std::cerr << "backflow-bench: --" << name << " wants an integer, got '" << text << "'\n";
    std::exit(2);
  }
  return value;
}

double Flags::Real(const std::string& name, double fallback) {
  const std::string text = Str(name, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(value)) {
    std::cerr << "backflow-bench: --" << name << " wants a number, got '" << text << "'\n";
    std::exit(2);
  }
  return value;
}

void Flags::Finish() const {
  for (const auto& [name, value] : values_) {
    if (!used_.count(name)) {
      std::cerr << "backflow-bench: unknown flag --" << name << "\n";
      std::exit(2);
    }
  }
}

Span Span::FromFlags(Flags& flags) {
  Span span;
  span.seconds = flags.Real("seconds", span.seconds);
  span.warmup = flags.Int("warmup", span.warmup);
  span.min_steps = flags.Int("min-steps", span.min_steps);
  return span;
}

bool Span::Done(Clock::time_point start, int64_t steps) const {
  return steps >= min_steps && SecondsSince(start) >= seconds;
}

NamedValues SyntheticBatch(const v1::Graph& graph, int64_t batch, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::uniform_int_distribution<int> label(0, 9);
  NamedValues out;
  for (const v1::Placeholder& placeholder : graph.placeholders()) {
    std::vector<int64_t> shape;
    int64_t count = 1;
    for (int64_t dim : placeholder.shape()) {
      shape.push_back(dim < 0 ? batch : dim);
      count *= shape.back();
    }
    const bool labels = placeholder.shape_size() == 1 && placeholder.shape(0) < 0;
    std::vector<float> values(static_cast<size_t>(count));
    for (float& v : values) v = labels ? static_cast<float>(label(rng)) : uniform(rng);
    out.names.push_back(placeholder.name());
    out.shapes.push_back(std::move(shape));
    out.values.push_back(std::move(values));
  }
  return out;
}

google::protobuf::Map<std::string, v1::Tensor> ToWire(const NamedValues& batch) {
  google::protobuf::Map<std::string, v1::Tensor> wire;
  for (size_t i = 0; i < batch.names.size(); ++i) {
    v1::Tensor& tensor = wire[batch.names[i]];
    tensor.set_dtype(v1::FLOAT32);
    for (int64_t dim : batch.shapes[i]) tensor.add_shape(dim);
    tensor.mutable_data()->assign(reinterpret_cast<const char*>(batch.values[i].data()),
                                  batch.values[i].size() * sizeof(float));
  }
  return wire;
}

double Percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return load::Percentile(samples, q);  // backflow-load's nearest-rank definition
}

v1::Graph LoadGraphOrDie(const std::string& path) {
  StatusOr<v1::Graph> graph = LoadGraphText(path);
  if (!graph.ok()) {
    std::cerr << "backflow-bench: " << path << ": " << graph.status().ToString() << "\n";
    std::exit(1);
  }
  return *std::move(graph);
}

void PrintJson(const Json& object) {
  std::cout << object.dump() << std::endl;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t PeakRssKib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace backflow::bench
