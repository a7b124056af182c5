// backflow-load's command line: what to send, how hard, and for how long.
#ifndef BACKFLOW_CLIENTS_LOAD_OPTIONS_H_
#define BACKFLOW_CLIENTS_LOAD_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clients/common/rpc.h"
#include "engine/core/status.h"

namespace backflow::load {

// Which RPCs a run sends. kMixed draws each request's kind (see workload.h).
enum class RpcMode { kInfer, kTrain, kGradients, kEvaluate, kMixed };

struct LoadOptions {
  std::string server = "127.0.0.1:50051";
  clients::ChannelOptions channel;  // --token, --tls-ca, --tls-cert, --tls-key (and $BACKFLOW_*)
  std::string model_path;  // required: the graph (text format)
  RpcMode mode = RpcMode::kInfer;
  std::string mode_name = "infer";
  int64_t batch = 32;
  int concurrency = 4;     // closed loop: worker threads
  double rate = 0;         // > 0: open loop at this many requests per second
  double duration_s = 10;  // measured phase, after the warmup
  int64_t requests = 0;    // > 0: measured requests (open loop: scheduled slots) instead of time
  double warmup_s = 1;
  double timeout_s = 30;          // per RPC
  std::string optimizer = "sgd";  // sgd | adam, for the model the run creates
  std::optional<double> lr;
  uint64_t seed = 1;
  int64_t classes = 10;          // labels are drawn from [0, classes)
  int64_t max_in_flight = 1024;  // open loop: outstanding requests before slots are dropped
  bool json = false;
  std::string model_id;     // non-empty: load this existing model instead of creating one
  bool keep_model = false;  // keep the model the run created (default: delete it at the end)
  bool help = false;

  bool open_loop() const { return rate > 0; }
};

// Parses argv[1..] ("--flag value" or "--flag=value") with the flag parser of every backflow
// binary (clients/common/flags.h: a flag given twice keeps its last value). InvalidArgument with
// a one-line reason for unknown flags, bad values and conflicting flags.
StatusOr<LoadOptions> ParseOptions(const std::vector<std::string>& args);

// The --help text.
std::string Usage();

}  // namespace backflow::load

#endif  // BACKFLOW_CLIENTS_LOAD_OPTIONS_H_
