#include "clients/load/options.h"

#include "clients/common/flags.h"
#include "clients/common/rpc.h"

namespace backflow::load {
namespace {

using clients::FlagKind;
using clients::FlagSpec;

constexpr double kHuge = 1e9;
constexpr int64_t kBig = int64_t{1} << 40;
constexpr std::string_view kModes[] = {"train", "infer", "gradients", "evaluate", "mixed"};
constexpr std::string_view kOptimizers[] = {"sgd", "adam"};

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"server", FlagKind::kValue, "HOST:PORT", "server address (default 127.0.0.1:50051)"},
      {"token", FlagKind::kValue, "TOKEN",
       "sent as 'authorization: Bearer TOKEN' (default $BACKFLOW_TOKEN)"},
      {"tls-ca", FlagKind::kValue, "FILE",
       "use TLS, trusting server certificates this PEM CA signed\n(default $BACKFLOW_TLS_CA)"},
      {"tls-cert", FlagKind::kValue, "FILE",
       "client certificate for mutual TLS (default $BACKFLOW_TLS_CERT)"},
      {"tls-key", FlagKind::kValue, "FILE", "its private key (default $BACKFLOW_TLS_KEY)"},
      {"model", FlagKind::kValue, "GRAPH.pbtxt",
       "the graph (text format); a model is created from it"},
      {"model-id", FlagKind::kValue, "ID", "load an existing model instead of creating one"},
      {"rpc", FlagKind::kValue, "KIND",
       "train | infer | gradients | evaluate | mixed (default infer);\n"
       "mixed: 50% infer, 25% train, 15% gradients, 10% evaluate"},
      {"batch", FlagKind::kValue, "N", "samples per request (default 32)"},
      {"concurrency", FlagKind::kValue, "N",
       "closed loop: N workers, one request at a time each (default 4)"},
      {"rate", FlagKind::kValue, "R", "open loop: R requests per second on a fixed schedule"},
      {"max-in-flight", FlagKind::kValue, "N",
       "open loop: outstanding requests before a slot is dropped (1024)"},
      {"duration", FlagKind::kValue, "SECONDS", "measured time after the warmup (default 10)"},
      {"requests", FlagKind::kValue, "N", "measured requests instead of a duration"},
      {"warmup", FlagKind::kValue, "SECONDS", "requests sent first and not counted (default 1)"},
      {"timeout", FlagKind::kValue, "SECONDS", "deadline of each RPC (default 30)"},
      {"optimizer", FlagKind::kValue, "sgd|adam", "optimizer of the created model (default sgd)"},
      {"lr", FlagKind::kValue, "X", "its learning rate (default: the server's, 0.01)"},
      {"seed", FlagKind::kValue, "S", "synthetic data and parameter seed (default 1)"},
      {"classes", FlagKind::kValue, "K", "labels are drawn from [0, K) (default 10)"},
      {"keep-model", FlagKind::kSwitch, "", "keep the created model (default: deleted at the end)"},
      {"json", FlagKind::kSwitch, "", "print one JSON object instead of the table"},
      {"help", FlagKind::kSwitch, "", "show this help and exit"},
  };
  return *specs;
}

// The numeric flags, each in its range.
Status ReadNumbers(const clients::Args& args, LoadOptions& o) {
  BF_ASSIGN_OR_RETURN(o.batch, args.Integer("batch", o.batch, 1, int64_t{1} << 24));
  BF_ASSIGN_OR_RETURN(o.concurrency, args.Integer("concurrency", o.concurrency, 1, 4096));
  BF_ASSIGN_OR_RETURN(o.rate, args.Number("rate", o.rate, 1e-3, 1e7));
  BF_ASSIGN_OR_RETURN(o.duration_s, args.Number("duration", o.duration_s, 1e-3, kHuge));
  BF_ASSIGN_OR_RETURN(o.requests, args.Integer("requests", o.requests, 1, kBig));
  BF_ASSIGN_OR_RETURN(o.warmup_s, args.Number("warmup", o.warmup_s, 0, kHuge));
  BF_ASSIGN_OR_RETURN(o.timeout_s, args.Number("timeout", o.timeout_s, 1e-3, kHuge));
  if (args.Has("lr")) {
    BF_ASSIGN_OR_RETURN(o.lr, args.Number("lr", 0, 0, kHuge));
  }
  BF_ASSIGN_OR_RETURN(o.seed, args.Unsigned("seed", o.seed));
  BF_ASSIGN_OR_RETURN(o.classes, args.Integer("classes", o.classes, 1, int64_t{1} << 24));
  BF_ASSIGN_OR_RETURN(o.max_in_flight, args.Integer("max-in-flight", o.max_in_flight, 1, kBig));
  return Status::Ok();
}

// The cross-flag rules, once every flag has been read.
Status CheckCombination(const LoadOptions& o, const clients::Args& args) {
  if (args.Has("concurrency") && args.Has("rate")) {
    return InvalidArgumentError("--concurrency (closed) and --rate (open loop) exclude each other");
  }
  if (args.Has("duration") && args.Has("requests")) {
    return InvalidArgumentError("--duration and --requests exclude each other");
  }
  if (args.Has("max-in-flight") && !args.Has("rate")) {
    return InvalidArgumentError("--max-in-flight applies to the open loop (--rate) only");
  }
  if (o.model_path.empty()) return InvalidArgumentError("--model GRAPH.pbtxt is required");
  return Status::Ok();
}

}  // namespace

StatusOr<LoadOptions> ParseOptions(const std::vector<std::string>& argv) {
  LoadOptions o;
  BF_ASSIGN_OR_RETURN(const clients::Args args, clients::ParseArgs(argv, Specs()));
  BF_RETURN_IF_ERROR(args.NoOperands());
  BF_ASSIGN_OR_RETURN(o.server, args.Address("server", o.server));
  o.channel.token = args.Value("token", clients::TokenFromEnvironment());
  BF_RETURN_IF_ERROR(clients::ReadTlsFiles(
      args.Value("tls-ca", clients::FromEnvironment("BACKFLOW_TLS_CA")),
      args.Value("tls-cert", clients::FromEnvironment("BACKFLOW_TLS_CERT")),
      args.Value("tls-key", clients::FromEnvironment("BACKFLOW_TLS_KEY")), &o.channel));
  o.model_path = args.Value("model");
  if (args.Has("model-id")) {
    BF_ASSIGN_OR_RETURN(o.model_id, args.NonEmpty("model-id", ""));
  }
  BF_ASSIGN_OR_RETURN(o.mode_name, args.Choice("rpc", o.mode_name, kModes));
  o.mode = o.mode_name == "train"       ? RpcMode::kTrain
           : o.mode_name == "gradients" ? RpcMode::kGradients
           : o.mode_name == "evaluate"  ? RpcMode::kEvaluate
           : o.mode_name == "mixed"     ? RpcMode::kMixed
                                        : RpcMode::kInfer;
  BF_ASSIGN_OR_RETURN(o.optimizer, args.Choice("optimizer", o.optimizer, kOptimizers));
  BF_RETURN_IF_ERROR(ReadNumbers(args, o));
  o.json = args.Has("json");
  o.keep_model = args.Has("keep-model");
  o.help = args.Has("help");
  if (o.help) return o;
  BF_RETURN_IF_ERROR(CheckCombination(o, args));
  return o;
}

std::string Usage() {
  return "usage: backflow-load --model GRAPH.pbtxt [flags]\n\n"
         "Sends synthetic batches to a backflow server and reports throughput and latency.\n\n" +
         clients::FormatFlags(Specs(), {.column = 26}) +
         "\nExit code: 0 when the run completed (RPC errors are part of the measurement), 1 when "
         "setup\nfailed, 2 for usage errors.\n";
}

}  // namespace backflow::load
