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
//
// Timed loops take --seconds (default 3), --warmup (steps not counted, default 5) and
// --min-steps (default 20). --server-pid adds the server's running-thread samples and CPU use.
#include <iostream>
#include <map>
#include <string>

#include "bench/harness/subcommands.h"

int main(int argc, char** argv) {
  using namespace backflow::bench;
  const std::map<std::string, int (*)(Flags&)> commands = {
      {"engine-train", EngineTrain}, {"engine-infer", EngineInfer}, {"sgemm", Sgemm},
      {"create", CreateModel},       {"latency", Latency},          {"train", Train},
      {"infer", Infer}};
  if (argc < 2 || !commands.count(argv[1])) {
    std::cerr << "usage: backflow-bench {engine-train|engine-infer|sgemm|create|latency|train|"
                 "infer} [--flags]\n(see bench/harness/main.cc)\n";
    return 2;
  }
  Flags flags(argc, argv, 2);
  return commands.at(argv[1])(flags);
}
