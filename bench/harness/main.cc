// backflow-bench: the measuring half of the benchmark harness. bench/run starts servers and
// PyTorch, calls these subcommands and prints the table; each subcommand prints one JSON line.
//
//   backflow-bench engine-train --model models/lenet5.pbtxt --batch 64 [--seconds S]
//   backflow-bench engine-infer --model models/lenet5.pbtxt --batch 64
//   backflow-bench sgemm [--size 2048] [--threads N]
//   backflow-bench create  --server HOST:PORT --model PATH
//   backflow-bench latency --server HOST:PORT --rpc trainstep|evaluate
//                          --model models/staged_circuit.pbtxt --graph models/seeds/staged.pbtxt
//                          [--calls N] [--server-pid PID]
//   backflow-bench train   --server HOST:PORT --model PATH[,PATH...] [--jobs K] [--batch B]
//                          [--window W] [--model-id ID] [--server-pid PID]
//   backflow-bench infer   --server HOST:PORT --model PATH [--concurrency C] [--model-id ID]
//                          [--protocol backflow|oip]
//
// Timed loops take --seconds (default 3), --warmup (steps not counted, default 5) and
// --min-steps (default 20). --server-pid adds the server's running-thread samples and CPU use.
#include <cstdio>
#include <string>
#include <vector>

#include "bench/harness/subcommands.h"

namespace backflow::bench {
namespace {

using clients::FlagKind;
using clients::FlagSpec;

struct Subcommand {
  std::string_view name;
  int (*run)(Flags&);
  std::string_view summary;
  std::vector<FlagSpec> flags;
  bool timed = false;  // takes SpanFlags()
};

const FlagSpec kServer = {"server", FlagKind::kValue, "HOST:PORT",
                          "the server (default 127.0.0.1:50051)"};
const FlagSpec kModel = {"model", FlagKind::kValue, "PATH", "the graph (text format)"};
const FlagSpec kModelId = {"model-id", FlagKind::kValue, "ID",
                           "use this model instead of creating one"};
const FlagSpec kBatch = {"batch", FlagKind::kValue, "B", "samples per step (default 64)"};
const FlagSpec kOutput = {"output", FlagKind::kValue, "NAME", "output to infer (default logits)"};
const FlagSpec kServerPid = {"server-pid", FlagKind::kValue, "PID",
                             "sample this server's threads and CPU use"};

std::vector<Subcommand> Subcommands() {
  return {
      {"engine-train", EngineTrain, "training steps on the engine, in process", {kModel, kBatch},
       true},
      {"engine-infer", EngineInfer, "inference on the engine, in process",
       {kModel, kBatch, kOutput}, true},
      {"sgemm", Sgemm, "oneDNN's sgemm roofline of this machine",
       {{"size", FlagKind::kValue, "N", "N x N matrices (default 2048)"},
        {"threads", FlagKind::kValue, "T", "threads (default: every core)"}},
       true},
      {"create", CreateModel, "create a model and print its id", {kServer, kModel}},
      {"latency", Latency, "one RPC at a time against the health-check floor",
       {kServer,
        {"rpc", FlagKind::kValue, "trainstep|evaluate", "the RPC (default trainstep)"},
        {"model", FlagKind::kValue, "PATH", "trainstep: a circuit whose inputs are parameters"},
        {"graph", FlagKind::kValue, "PATH", "evaluate: the same circuit with placeholders"},
        {"values", FlagKind::kValue, "N=V,...", "evaluate: the inputs (default x=3,y=-4)"},
        {"calls", FlagKind::kValue, "N", "measured calls (default 2000)"},
        {"warmup", FlagKind::kValue, "N", "calls first, not measured (default 100)"},
        kServerPid}},
      {"train", Train, "training throughput over the Train stream",
       {kServer,
        {"model", FlagKind::kValue, "PATH[,PATH...]", "the graphs, cycled over the jobs"},
        kModelId, kBatch,
        {"jobs", FlagKind::kValue, "K", "streams at once, one model each (default 1)"},
        {"window", FlagKind::kValue, "W", "requests each stream keeps unanswered (default 4)"},
        kServerPid},
       true},
      {"infer", Infer, "Infer throughput and latency at a concurrency",
       {kServer, kModel, kModelId, kOutput, kBatch,
        {"concurrency", FlagKind::kValue, "C", "calls at once (default 1)"},
        {"protocol", FlagKind::kValue, "backflow|oip",
         "backflow.v1 Infer or the Open Inference Protocol's ModelInfer (default backflow)"},
        kServerPid},
       true},
  };
}

void PrintHelp(const std::vector<Subcommand>& subcommands) {
  std::printf(
      "usage: backflow-bench SUBCOMMAND [--flags]\n\n"
      "The measuring half of bench/run; each subcommand prints one JSON line.\n\n");
  for (const Subcommand& sub : subcommands) {
    std::printf("  %-14.*s%.*s\n", static_cast<int>(sub.name.size()), sub.name.data(),
                static_cast<int>(sub.summary.size()), sub.summary.data());
  }
  std::printf("\n'backflow-bench SUBCOMMAND --help' shows its flags.\n");
}

int Main(const std::vector<std::string>& argv) {
  const std::vector<Subcommand> subcommands = Subcommands();
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    PrintHelp(subcommands);
    return argv.empty() ? clients::kExitUsage : 0;
  }
  std::string names;
  for (const Subcommand& sub : subcommands) {
    names += (names.empty() ? "" : ", ") + std::string(sub.name);
    if (sub.name != argv[0]) continue;
    const std::string program = "backflow-bench " + argv[0];
    std::vector<FlagSpec> specs = sub.flags;
    if (sub.timed) {
      for (FlagSpec& spec : SpanFlags()) specs.push_back(std::move(spec));
    }
    specs.push_back({"help", FlagKind::kSwitch, "", "show this help and exit"});
    StatusOr<clients::Args> args = clients::ParseArgs(std::span(argv).subspan(1), specs);
    if (!args.ok()) return clients::PrintUsageError(program, args.status().message());
    if (args->Has("help")) {
      std::printf("usage: %s [--flags]\n\n%.*s\n\n%s", program.c_str(),
                  static_cast<int>(sub.summary.size()), sub.summary.data(),
                  clients::FormatFlags(specs).c_str());
      return 0;
    }
    Flags flags(program, *std::move(args), specs);
    return sub.run(flags);
  }
  return clients::PrintUsageError("backflow-bench",
                                  "unknown subcommand '" + argv[0] + "' (one of: " + names + ")");
}

}  // namespace
}  // namespace backflow::bench

int main(int argc, char** argv) {
  return backflow::bench::Main(std::vector<std::string>(argv + 1, argv + argc));
}
