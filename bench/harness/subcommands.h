// The subcommands of backflow-bench. Each reads its flags, runs one measurement and prints one
// JSON object on one line (see bench/harness/main.cc for the list and bench/run for the caller).
#ifndef BACKFLOW_BENCH_HARNESS_SUBCOMMANDS_H_
#define BACKFLOW_BENCH_HARNESS_SUBCOMMANDS_H_

#include "bench/harness/common.h"

namespace backflow::bench {

// In process (engine_work.cc).
int EngineTrain(Flags& flags);
int EngineInfer(Flags& flags);
int Sgemm(Flags& flags);

// Over gRPC against a running server (wire_work.cc).
int CreateModel(Flags& flags);
int Latency(Flags& flags);
int Train(Flags& flags);
int Infer(Flags& flags);  // infer_work.cc

}  // namespace backflow::bench

#endif  // BACKFLOW_BENCH_HARNESS_SUBCOMMANDS_H_
