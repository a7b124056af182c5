#include "bench/harness/common.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <limits>
#include <optional>
#include <random>

#include "clients/common/synthetic.h"
#include "clients/load/stats.h"
#include "engine/api/import.h"
#include "engine/ir/tensor_proto.h"
#include "engine/onnx/onnx_import.h"

namespace backflow::bench {

Flags::Flags(std::string program, clients::Args args, std::span<const clients::FlagSpec> specs)
    : program_(std::move(program)), args_(std::move(args)) {
  for (const clients::FlagSpec& spec : specs) declared_.emplace_back(spec.name);
}

std::string Flags::Str(const std::string& name, const std::string& fallback) {
  used_.insert(name);
  return args_.Value(name, fallback);
}

int64_t Flags::Int(const std::string& name, int64_t fallback) {
  used_.insert(name);
  StatusOr<int64_t> value = args_.Integer(name, fallback);
  if (!value.ok()) Exit(value.status());
  return *value;
}

double Flags::Real(const std::string& name, double fallback) {
  used_.insert(name);
  StatusOr<double> value = args_.Number(name, fallback);
  if (!value.ok()) Exit(value.status());
  return *value;
}

std::string Flags::Choice(const std::string& name, const std::string& fallback,
                          std::span<const std::string_view> choices) {
  used_.insert(name);
  StatusOr<std::string> value = args_.Choice(name, fallback, choices);
  if (!value.ok()) Exit(value.status());
  return *value;
}

void Flags::Finish() const {
  if (Status none = args_.NoOperands(); !none.ok()) Exit(none);
  for (const std::string& name : declared_) {
    if (args_.Has(name) && !used_.contains(name) && name != "help") {
      Exit(InternalError("--" + name + " is declared but not read"));
    }
  }
}

int Flags::UsageError(const std::string& message) const {
  return clients::PrintUsageError(program_, message);
}

void Flags::Exit(const Status& status) const { std::exit(UsageError(status.message())); }

std::vector<clients::FlagSpec> SpanFlags() {
  using clients::FlagKind;
  return {{"seconds", FlagKind::kValue, "S", "measure for at least S seconds (default 3)"},
          {"warmup", FlagKind::kValue, "N", "steps run first and not counted (default 5)"},
          {"min-steps", FlagKind::kValue, "N", "measure at least N steps (default 20)"}};
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
  const clients::SyntheticSpec spec{.batch = batch, .classes = SyntheticClasses(graph)};
  const auto wire = clients::SyntheticBatch(graph, spec, seed);
  NamedValues out;
  for (const v1::Placeholder& placeholder : graph.placeholders()) {
    StatusOr<Tensor> tensor = TensorFromProto(wire.at(placeholder.name()), placeholder.name(),
                                              std::numeric_limits<int64_t>::max());
    if (!tensor.ok()) {
      std::cerr << "backflow-bench: " << tensor.status().ToString() << "\n";
      std::exit(1);
    }
    out.names.push_back(placeholder.name());
    out.tensors.push_back(*std::move(tensor));
  }
  return out;
}

int64_t SyntheticClasses(const v1::Graph& graph) {
  constexpr int64_t kDefault = 10;
  for (const v1::Node& node : graph.nodes()) {
    if (node.op() != "softmax_cross_entropy" || node.inputs().empty()) continue;
    StatusOr<Graph> imported = ImportGraph(graph);
    const std::optional<ValueId> logits =
        imported.ok() ? imported->Find(node.inputs(0)) : std::nullopt;
    if (!logits) return kDefault;
    const Shape& shape = imported->value(*logits).shape;
    return shape.rank() == 2 && shape.dim(1) > 0 ? shape.dim(1) : kDefault;
  }
  return kDefault;
}

double Percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return load::Percentile(samples, q);  // backflow-load's nearest-rank definition
}

ModelFile LoadModelOrDie(const std::string& path) {
  ModelFile model;
  Status status = Status::Ok();
  if (path.ends_with(".onnx")) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    model.onnx = bytes.str();
    OnnxImportOptions options;
    options.loss = OnnxLossSpec{.kind = "softmax_cross_entropy"};
    StatusOr<OnnxImported> imported = in ? ImportOnnx(model.onnx, options)
                                         : StatusOr<OnnxImported>(NotFoundError("cannot read it"));
    if (imported.ok()) {
      model.graph = std::move(imported->graph);
      model.values = std::move(imported->values);
    }
    status = imported.status();
  } else {
    StatusOr<v1::Graph> graph = LoadGraphText(path);
    if (graph.ok()) model.graph = *std::move(graph);
    status = graph.status();
  }
  if (!status.ok()) {
    std::cerr << "backflow-bench: " << path << ": " << status.ToString() << "\n";
    std::exit(1);
  }
  return model;
}

v1::CreateModelRequest CreateRequestFor(const std::string& path) {
  v1::CreateModelRequest request;
  ModelFile file = LoadModelOrDie(path);
  if (file.onnx.empty()) {
    *request.mutable_graph() = std::move(file.graph);
  } else {
    request.mutable_onnx()->set_model(std::move(file.onnx));
    request.mutable_onnx()->mutable_loss()->set_kind("softmax_cross_entropy");
  }
  v1::OptimizerSpec* sgd = request.mutable_optimizer();
  sgd->set_kind(v1::OptimizerSpec::SGD);
  sgd->set_learning_rate(0.01);
  sgd->set_momentum(0.9);
  request.set_seed(1);
  request.set_name("backflow-bench");
  return request;
}

v1::Graph LoadGraphOrDie(const std::string& path) { return LoadModelOrDie(path).graph; }

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
