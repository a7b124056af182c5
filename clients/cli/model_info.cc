#include "clients/cli/model_info.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "clients/cli/tensor_text.h"

namespace backflow::cli {
namespace {

using Kind = v1::OptimizerSpec::Kind;

std::string KindText(Kind kind) {
  switch (kind) {
    case v1::OptimizerSpec::ADAM:
      return "adam";
    case v1::OptimizerSpec::ADAMW:
      return "adamw";
    default:
      return "sgd";
  }
}

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

// 61706 -> "61,706".
std::string Grouped(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return value < 0 ? "-" + digits : digits;
}

nlohmann::json TensorInfosJson(const google::protobuf::RepeatedPtrField<v1::TensorInfo>& infos) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::TensorInfo& info : infos) {
    list.push_back({{"name", info.name()},
                    {"shape", std::vector<int64_t>(info.shape().begin(), info.shape().end())},
                    {"dtype", DTypeText(info.dtype())}});
  }
  return list;
}

// "  name   [shape]" lines with the names padded to one width.
std::string TensorInfoLines(const google::protobuf::RepeatedPtrField<v1::TensorInfo>& infos) {
  size_t width = 0;
  for (const v1::TensorInfo& info : infos) width = std::max(width, info.name().size());
  std::string text;
  for (const v1::TensorInfo& info : infos) {
    std::string name = info.name();
    name.resize(width, ' ');
    text += "  " + name + "  " +
            FormatShape(std::vector<int64_t>(info.shape().begin(), info.shape().end())) + "\n";
  }
  return text;
}

}  // namespace

std::string UtcTimeText(int64_t unix_ms, const char* format) {
  if (unix_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, format, &utc);
  return buffer;
}

std::string AlignColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      if (c + 1 < row.size()) cell.resize(widths[c] + 2, ' ');
      line += cell;
    }
    text += line + "\n";
  }
  return text;
}

std::vector<FlagSpec> OptimizerFlags() {
  return {
      {"optimizer", FlagKind::kValue, "sgd|adam|adamw", "optimizer (default sgd)"},
      {"lr", FlagKind::kValue, "X", "learning rate (default 0.01)"},
      {"momentum", FlagKind::kValue, "M", "SGD momentum (default 0)"},
      {"nesterov", FlagKind::kSwitch, "", "Nesterov momentum (SGD)"},
      {"weight-decay", FlagKind::kValue, "W",
       "L2 in the gradient (SGD, Adam) or decoupled (AdamW); default 0"},
  };
}

StatusOr<v1::OptimizerSpec> OptimizerFromArgs(const Args& args) {
  v1::OptimizerSpec spec;
  const std::string kind = args.Value("optimizer", "sgd");
  if (kind == "sgd") {
    spec.set_kind(v1::OptimizerSpec::SGD);
  } else if (kind == "adam") {
    spec.set_kind(v1::OptimizerSpec::ADAM);
  } else if (kind == "adamw") {
    spec.set_kind(v1::OptimizerSpec::ADAMW);
  } else {
    return InvalidArgumentError("--optimizer: '" + kind + "' is not sgd, adam or adamw");
  }
  if (args.Has("lr")) {
    BF_ASSIGN_OR_RETURN(double lr, args.Number("lr", 0));
    spec.set_learning_rate(lr);
  }
  BF_ASSIGN_OR_RETURN(double momentum, args.Number("momentum", 0));
  BF_ASSIGN_OR_RETURN(double weight_decay, args.Number("weight-decay", 0));
  spec.set_momentum(momentum);
  spec.set_nesterov(args.Has("nesterov"));
  spec.set_weight_decay(weight_decay);
  return spec;
}

std::string DescribeOptimizer(const v1::OptimizerSpec& spec) {
  std::string text = KindText(spec.kind());
  text += " lr=" + Number(spec.has_learning_rate() ? spec.learning_rate() : 0.01);
  if (spec.momentum() != 0) text += " momentum=" + Number(spec.momentum());
  if (spec.nesterov()) text += " nesterov";
  if (spec.weight_decay() != 0) text += " weight_decay=" + Number(spec.weight_decay());
  if (spec.has_beta1()) text += " beta1=" + Number(spec.beta1());
  if (spec.has_beta2()) text += " beta2=" + Number(spec.beta2());
  if (spec.has_epsilon()) text += " epsilon=" + Number(spec.epsilon());
  if (spec.clip_norm() != 0) text += " clip_norm=" + Number(spec.clip_norm());
  if (spec.has_clip_epsilon()) text += " clip_epsilon=" + Number(spec.clip_epsilon());
  return text;
}

std::string DTypeText(int proto_dtype) {
  switch (proto_dtype) {
    case v1::FLOAT64:
      return "float64";
    case v1::INT32:
      return "int32";
    case v1::INT64:
      return "int64";
    default:
      return "float32";
  }
}

namespace {

nlohmann::json StatisticsJson(const v1::TrainingStatistics& statistics) {
  nlohmann::json json = {{"samples", statistics.samples()},
                         {"steps_per_second", statistics.steps_per_second()},
                         {"samples_per_second", statistics.samples_per_second()}};
  if (statistics.has_loss()) {
    json["last_loss"] = statistics.last_loss();
    json["last_step_unix_ms"] = statistics.last_step_unix_ms();
  }
  if (statistics.has_history()) {
    nlohmann::json points = nlohmann::json::array();
    for (const v1::TrainingPoint& point : statistics.history().points()) {
      points.push_back(
          {{"step", point.step()},
           {"loss", point.loss()},
           {"metrics", std::vector<double>(point.metrics().begin(), point.metrics().end())},
           {"unix_ms", point.unix_ms()}});
    }
    json["history"] = {{"stride", statistics.history().stride()}, {"points", points}};
  }
  return json;
}

}  // namespace

nlohmann::json ModelInfoJson(const v1::ModelInfo& info) {
  const v1::OptimizerSpec& spec = info.optimizer();
  nlohmann::json optimizer = {
      {"kind", KindText(spec.kind())},
      {"learning_rate", spec.has_learning_rate() ? spec.learning_rate() : 0.01},
      {"momentum", spec.momentum()},
      {"nesterov", spec.nesterov()},
      {"weight_decay", spec.weight_decay()},
      {"clip_norm", spec.clip_norm()}};
  if (spec.has_beta1()) optimizer["beta1"] = spec.beta1();
  if (spec.has_beta2()) optimizer["beta2"] = spec.beta2();
  if (spec.has_epsilon()) optimizer["epsilon"] = spec.epsilon();
  if (spec.has_clip_epsilon()) optimizer["clip_epsilon"] = spec.clip_epsilon();
  return {{"id", info.id()},
          {"name", info.name()},
          {"graph_name", info.graph_name()},
          {"dtype", DTypeText(info.dtype())},
          {"parameters", TensorInfosJson(info.parameters())},
          {"inputs", TensorInfosJson(info.inputs())},
          {"outputs", TensorInfosJson(info.outputs())},
          {"loss", info.loss()},
          {"metrics", std::vector<std::string>(info.metrics().begin(), info.metrics().end())},
          {"parameter_count", info.parameter_count()},
          {"flops_per_sample", info.flops_per_sample()},
          {"step", info.step()},
          {"checkpoint_step", info.checkpoint_step()},
          {"optimizer", optimizer},
          {"created_unix_ms", info.created_unix_ms()},
          {"statistics", StatisticsJson(info.statistics())}};
}

namespace {

// "trained" and "rate" lines of `models show`.
std::string TrainingLines(const v1::TrainingStatistics& statistics) {
  if (!statistics.has_loss()) return "trained       never\n";
  std::string text = "trained       " + Grouped(statistics.samples()) + " samples; last loss " +
                     Number(statistics.last_loss()) + " at " +
                     UtcTimeText(statistics.last_step_unix_ms(), "%Y-%m-%d %H:%M:%S UTC") + "\n";
  char rate[96];
  std::snprintf(rate, sizeof rate, "%.2f steps/s, %.0f samples/s (last minute)",
                statistics.steps_per_second(), statistics.samples_per_second());
  return text + "rate          " + rate + "\n";
}

}  // namespace

std::string HistoryTable(const v1::ModelInfo& info) {
  std::vector<std::vector<std::string>> rows = {{"STEP", "LOSS"}};
  for (const std::string& metric : info.metrics()) rows[0].push_back(metric);
  rows[0].push_back("TIME");
  for (const v1::TrainingPoint& point : info.statistics().history().points()) {
    std::vector<std::string>& row = rows.emplace_back();
    row.push_back(std::to_string(point.step()));
    row.push_back(Number(point.loss()));
    for (int i = 0; i < info.metrics_size(); ++i) {
      row.push_back(i < point.metrics_size() ? Number(point.metrics(i)) : "-");
    }
    row.push_back(UtcTimeText(point.unix_ms(), "%Y-%m-%dT%H:%M:%SZ"));
  }
  return AlignColumns(rows);
}

std::string DescribeModel(const v1::ModelInfo& info) {
  std::string metrics;
  for (const std::string& metric : info.metrics()) {
    metrics += (metrics.empty() ? "" : ", ") + metric;
  }
  const std::string checkpoint =
      info.checkpoint_step() < 0 ? "no checkpoint"
                                 : "checkpoint at step " + std::to_string(info.checkpoint_step());
  std::string text;
  text += "model         " + info.id() + "\n";
  text += "name          " + (info.name().empty() ? "-" : info.name()) + "\n";
  text += "graph         " + (info.graph_name().empty() ? "-" : info.graph_name()) + "\n";
  text += "dtype         " + DTypeText(info.dtype()) + "\n";
  text += "optimizer     " + DescribeOptimizer(info.optimizer()) + "\n";
  text += "step          " + std::to_string(info.step()) + " (" + checkpoint + ")\n";
  text += "created       " + UtcTimeText(info.created_unix_ms(), "%Y-%m-%d %H:%M:%S UTC") + "\n";
  text += "loss          " + (info.loss().empty() ? "- (inference only)" : info.loss()) + "\n";
  text += "metrics       " + (metrics.empty() ? "-" : metrics) + "\n";
  text += TrainingLines(info.statistics());
  text += "FLOPs/sample  " + Grouped(info.flops_per_sample()) + " (forward)\n";
  text += "parameters    " + Grouped(info.parameter_count()) + " elements in " +
          std::to_string(info.parameters_size()) + " tensors\n";
  text += TensorInfoLines(info.parameters());
  text += "inputs        (N: the batch)\n" + TensorInfoLines(info.inputs());
  text += "outputs\n" + TensorInfoLines(info.outputs());
  return text;
}

std::string ModelTable(const google::protobuf::RepeatedPtrField<v1::ModelInfo>& models) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "GRAPH", "PARAMS", "STEP", "CHECKPOINT"}};
  for (const v1::ModelInfo& info : models) {
    rows.push_back({info.id(), info.name().empty() ? "-" : info.name(),
                    info.graph_name().empty() ? "-" : info.graph_name(),
                    std::to_string(info.parameter_count()), std::to_string(info.step()),
                    info.checkpoint_step() < 0 ? "-" : std::to_string(info.checkpoint_step())});
  }
  return AlignColumns(rows);
}

}  // namespace backflow::cli
