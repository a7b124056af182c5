#include "clients/load/options.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>

namespace backflow::load {
namespace {

// Parses all of `text` as a T in [min, max], or InvalidArgument naming the flag.
template <typename T>
StatusOr<T> ParseNumber(const std::string& flag, const std::string& text, T min, T max) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return InvalidArgumentError("--" + flag + ": '" + text + "' is not a number");
  }
  if (!(value >= min && value <= max)) {  // also rejects NaN
    return InvalidArgumentError("--" + flag + ": " + text + " is out of range");
  }
  return value;
}

using Setter = std::function<Status(LoadOptions&, const std::string&)>;

template <typename T, typename Field>
Setter Number(const std::string& flag, T min, T max, Field field) {
  return [=](LoadOptions& o, const std::string& text) -> Status {
    BF_ASSIGN_OR_RETURN(T value, ParseNumber<T>(flag, text, min, max));
    o.*field = value;
    return Status::Ok();
  };
}

Status SetMode(LoadOptions& o, const std::string& text) {
  static const std::map<std::string, RpcMode> kModes = {{"infer", RpcMode::kInfer},
                                                        {"train", RpcMode::kTrain},
                                                        {"gradients", RpcMode::kGradients},
                                                        {"evaluate", RpcMode::kEvaluate},
                                                        {"mixed", RpcMode::kMixed}};
  auto it = kModes.find(text);
  if (it == kModes.end()) {
    return InvalidArgumentError("--rpc: '" + text +
                                "' is not one of train, infer, gradients, evaluate, mixed");
  }
  o.mode = it->second;
  o.mode_name = text;
  return Status::Ok();
}

const std::map<std::string, Setter>& ValueFlags() {
  constexpr double kHuge = 1e9;
  constexpr int64_t kBig = int64_t{1} << 40;
  static const auto* flags = new std::map<std::string, Setter>{
      {"server",
       [](LoadOptions& o, const std::string& v) -> Status {
         if (v.find(':') == std::string::npos) {
           return InvalidArgumentError("--server: '" + v + "' is not HOST:PORT");
         }
         o.server = v;
         return Status::Ok();
       }},
      {"model",
       [](LoadOptions& o, const std::string& v) -> Status {
         o.model_path = v;
         return Status::Ok();
       }},
      {"rpc", SetMode},
      {"batch", Number<int64_t>("batch", 1, int64_t{1} << 24, &LoadOptions::batch)},
      {"concurrency", Number<int>("concurrency", 1, 4096, &LoadOptions::concurrency)},
      {"rate", Number<double>("rate", 1e-3, 1e7, &LoadOptions::rate)},
      {"duration", Number<double>("duration", 1e-3, kHuge, &LoadOptions::duration_s)},
      {"requests", Number<int64_t>("requests", 1, kBig, &LoadOptions::requests)},
      {"warmup", Number<double>("warmup", 0, kHuge, &LoadOptions::warmup_s)},
      {"timeout", Number<double>("timeout", 1e-3, kHuge, &LoadOptions::timeout_s)},
      {"optimizer",
       [](LoadOptions& o, const std::string& v) -> Status {
         if (v != "sgd" && v != "adam") {
           return InvalidArgumentError("--optimizer: '" + v + "' is not sgd or adam");
         }
         o.optimizer = v;
         return Status::Ok();
       }},
      {"lr",
       [](LoadOptions& o, const std::string& v) -> Status {
         BF_ASSIGN_OR_RETURN(double lr, ParseNumber<double>("lr", v, 0, kHuge));
         o.lr = lr;
         return Status::Ok();
       }},
      {"seed", Number<uint64_t>("seed", 0, UINT64_MAX, &LoadOptions::seed)},
      {"classes", Number<int64_t>("classes", 1, int64_t{1} << 24, &LoadOptions::classes)},
      {"max-in-flight", Number<int64_t>("max-in-flight", 1, kBig, &LoadOptions::max_in_flight)},
      {"model-id",
       [](LoadOptions& o, const std::string& v) -> Status {
         if (v.empty()) return InvalidArgumentError("--model-id: empty");
         o.model_id = v;
         return Status::Ok();
       }},
  };
  return *flags;
}

const std::map<std::string, bool LoadOptions::*>& BoolFlags() {
  static const auto* flags =
      new std::map<std::string, bool LoadOptions::*>{{"json", &LoadOptions::json},
                                                     {"keep-model", &LoadOptions::keep_model},
                                                     {"help", &LoadOptions::help}};
  return *flags;
}

// The cross-flag rules, once every flag has been read.
Status CheckCombination(const LoadOptions& o, const std::set<std::string>& seen) {
  if (seen.contains("concurrency") && seen.contains("rate")) {
    return InvalidArgumentError("--concurrency (closed) and --rate (open loop) exclude each other");
  }
  if (seen.contains("duration") && seen.contains("requests")) {
    return InvalidArgumentError("--duration and --requests exclude each other");
  }
  if (seen.contains("max-in-flight") && !seen.contains("rate")) {
    return InvalidArgumentError("--max-in-flight applies to the open loop (--rate) only");
  }
  if (o.model_path.empty()) return InvalidArgumentError("--model GRAPH.pbtxt is required");
  return Status::Ok();
}

}  // namespace

StatusOr<LoadOptions> ParseOptions(const std::vector<std::string>& args) {
  LoadOptions options;
  std::set<std::string> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!arg.starts_with("--")) return InvalidArgumentError("unexpected argument '" + arg + "'");
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (!seen.insert(name).second) return InvalidArgumentError("--" + name + " given twice");
    if (auto it = BoolFlags().find(name); it != BoolFlags().end()) {
      if (eq != std::string::npos) return InvalidArgumentError("--" + name + " takes no value");
      options.*(it->second) = true;
      continue;
    }
    auto it = ValueFlags().find(name);
    if (it == ValueFlags().end()) return InvalidArgumentError("unknown flag --" + name);
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return InvalidArgumentError("--" + name + " needs a value");
    }
    BF_RETURN_IF_ERROR(it->second(options, value));
  }
  if (options.help) return options;
  BF_RETURN_IF_ERROR(CheckCombination(options, seen));
  return options;
}

std::string Usage() {
  return R"(usage: backflow-load --model GRAPH.pbtxt [flags]

Sends synthetic batches to a backflow server and reports throughput and latency.

  --server HOST:PORT      server address (default 127.0.0.1:50051)
  --model GRAPH.pbtxt     the graph (text format); a model is created from it
  --model-id ID           load an existing model instead of creating one
  --rpc KIND              train | infer | gradients | evaluate | mixed (default infer);
                          mixed: 50% infer, 25% train, 15% gradients, 10% evaluate
  --batch N               samples per request (default 32)
  --concurrency N         closed loop: N workers, one request at a time each (default 4)
  --rate R                open loop: R requests per second on a fixed schedule
  --max-in-flight N       open loop: outstanding requests before a slot is dropped (1024)
  --duration SECONDS      measured time after the warmup (default 10)
  --requests N            measured requests instead of a duration
  --warmup SECONDS        requests sent first and not counted (default 1)
  --timeout SECONDS       deadline of each RPC (default 30)
  --optimizer sgd|adam    optimizer of the created model (default sgd)
  --lr X                  its learning rate (default: the server's, 0.01)
  --seed S                synthetic data and parameter seed (default 1)
  --classes K             labels are drawn from [0, K) (default 10)
  --keep-model            keep the created model (default: deleted at the end)
  --json                  print one JSON object instead of the table

Exit code: 0 when the run completed (RPC errors are part of the measurement), 1 when setup
failed, 2 for usage errors.
)";
}

}  // namespace backflow::load
