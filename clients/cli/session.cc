#include "clients/cli/session.h"

#include <chrono>
#include <cstdio>

#include "clients/common/models.h"
#include "clients/common/rpc.h"

namespace backflow::cli {
namespace {

// Error lines stay one line even when a server message spans several.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

std::shared_ptr<grpc::Channel> Session::channel() {
  if (channel_ == nullptr) channel_ = clients::OpenChannel(address_, channel_options_);
  return channel_;
}

v1::Backflow::Stub& Session::stub() {
  if (stub_ == nullptr) stub_ = v1::Backflow::NewStub(channel());
  return *stub_;
}

void Session::SetDeadline(grpc::ClientContext& context) const {
  clients::SetTimeout(context, std::chrono::duration<double>(timeout_seconds_));
}

grpc::Status Session::GetModel(const std::string& model_id, v1::ModelInfo* info, bool history) {
  return clients::GetModel(stub(), model_id, std::chrono::duration<double>(timeout_seconds_), info,
                           history);
}

int Session::Fail(std::string_view what, const grpc::Status& status) const {
  // gRPC answers UNAVAILABLE both when it found no server and when the server refused the call
  // (it is shutting down): only the first is "cannot reach", said without gRPC's internals.
  const std::string reason = clients::ConnectFailure(status, channel_options_.tls());
  if (!reason.empty()) {
    std::fprintf(stderr, "backflow: cannot reach %s: %s\n", address_.c_str(), reason.c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "backflow: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               OneLine(clients::FormatStatus(status)).c_str());
  return kExitFailure;
}

int Fail(std::string_view what, std::string_view message) {
  std::fprintf(stderr, "backflow: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               OneLine(std::string(message)).c_str());
  return kExitFailure;
}

int Fail(std::string_view what, const Status& status) { return Fail(what, status.message()); }

int UsageError(std::string_view command, std::string_view message) {
  return clients::PrintUsageError(command.empty() ? "backflow" : "backflow " + std::string(command),
                                  message);
}

}  // namespace backflow::cli
