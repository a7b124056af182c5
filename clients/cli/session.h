// Session: what every backflow CLI command shares — the server address, the --timeout that
// bounds each call, the lazily opened channel — and the one place that turns failures into the
// CLI's error line and exit code:
//
//   backflow: <what>: CODE: message        exit 1 (an RPC failed; UNAVAILABLE reads
//                                           "cannot reach HOST:PORT")
//   backflow: <what>: message              exit 1 (a local problem: a file, a bad .npy)
//   backflow: <command>: message           exit 2 (usage), then "Try 'backflow <command> --help'."
//
// Not thread-safe except stub(), which may be used from several threads once created.
#ifndef BACKFLOW_CLIENTS_CLI_SESSION_H_
#define BACKFLOW_CLIENTS_CLI_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "clients/common/flags.h"
#include "clients/common/rpc.h"
#include "engine/core/status.h"

namespace backflow::cli {

using clients::Args;
using clients::FlagKind;
using clients::FlagSpec;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = clients::kExitUsage;

class Session {
 public:
  Session(std::string address, double timeout_seconds, clients::ChannelOptions channel = {})
      : address_(std::move(address)),
        timeout_seconds_(timeout_seconds),
        channel_options_(std::move(channel)) {}

  const std::string& address() const { return address_; }
  double timeout_seconds() const { return timeout_seconds_; }
  std::shared_ptr<grpc::Channel> channel();
  v1::Backflow::Stub& stub();

  // Sets the --timeout deadline on `context`.
  void SetDeadline(grpc::ClientContext& context) const;

  // One unary call with the --timeout deadline:
  //   session.Call(&v1::Backflow::Stub::GetModel, request, &info)
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::Backflow::Stub::*method)(grpc::ClientContext*, const Request&,
                                                               Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    SetDeadline(context);
    return (stub().*method)(&context, request, response);
  }

  // GetModel with the --timeout deadline (clients/common/models.h).
  grpc::Status GetModel(const std::string& model_id, v1::ModelInfo* info, bool history = false);

  // Prints the error line for a failed RPC and returns kExitFailure.
  int Fail(std::string_view what, const grpc::Status& status) const;

 private:
  std::string address_;
  double timeout_seconds_;
  clients::ChannelOptions channel_options_;  // --token, --tls-ca, --tls-cert, --tls-key
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

// Prints "backflow: WHAT: MESSAGE" (a local failure) and returns kExitFailure.
int Fail(std::string_view what, std::string_view message);
int Fail(std::string_view what, const Status& status);  // uses status.message()
// Prints the usage error and the hint to ask `command`'s help; returns kExitUsage.
int UsageError(std::string_view command, std::string_view message);

// One CLI command ("health", "models create", ...): its help and its entry point. `run` gets
// the parsed arguments, whose operand count is already checked against the bounds.
struct Command {
  std::string_view name;
  std::string_view operands;  // synopsis of the operands: "GRAPH.pbtxt"
  std::string_view summary;   // one line
  std::string_view details;   // more help text (may be empty)
  std::vector<FlagSpec> flags;
  int min_operands = 0;
  int max_operands = 0;  // -1: any number
  int (*run)(Session& session, const Args& args) = nullptr;
};

// The commands, in the order `backflow --help` lists them. Each file defines its group.
std::vector<Command> HealthCommands();
std::vector<Command> TokenCommands();  // token new
std::vector<Command> ModelCommands();
std::vector<Command> ParamCommands();       // params get/set
std::vector<Command> CheckpointCommands();  // checkpoint save/restore/list/delete
std::vector<Command> CheckpointTransferCommands();  // checkpoint download/upload
std::vector<Command> InferCommands();
std::vector<Command> EvalCommands();
std::vector<Command> GradcheckCommands();
std::vector<Command> TrainCommands();
std::vector<Command> GraphCommands();  // graph convert
std::vector<Command> ProfileCommands();

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_SESSION_H_
