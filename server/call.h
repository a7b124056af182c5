// UnaryCall: the reactor behind every unary RPC. It owns the call's request id and admission
// slot, logs the outcome (errors always, every call at debug level), and exposes the client's
// cancellation and deadline as RunOptions for the engine.
#ifndef BACKFLOW_SERVER_CALL_H_
#define BACKFLOW_SERVER_CALL_H_

#include <google/protobuf/message_lite.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "engine/core/status.h"
#include "engine/exec/program.h"
#include "server/admission.h"
#include "server/auth/token_store.h"

namespace backflow::server {

struct ServiceEnv;
class RequestMetrics;
class LogThrottles;

// Request id, RPC name, peer and timing, shared by unary calls and streams.
class CallLog {
 public:
  // `ctx` must stay valid until Done (its peer is read only for a line that is written).
  CallLog(ServiceEnv* env, const grpc::ServerContextBase* ctx, const char* rpc,
          std::string model_id);
  int64_t id() const { return id_; }
  const char* rpc() const { return rpc_; }
  std::chrono::steady_clock::time_point start() const { return start_; }
  // Logs the outcome: server faults at error level, client errors at warn, the rest at debug,
  // with the request id, method, model and peer; and counts it in the metrics
  // (backflow_requests_total, _request_duration_seconds). Errors and warnings are rate-limited
  // per method and code (one line a second, with a count of those left out: an overloaded server
  // refusing thousands of requests a second writes one line a second for them). `model_id`, if
  // not empty, is the model the line names instead of the constructor's (a stream learns its
  // model from its first message, an upload from the model it creates).
  void Done(const Status& status, std::string_view model_id = {}) const;

 private:
  RequestMetrics* const metrics_;  // null: metrics off
  const grpc::ServerContextBase* const ctx_;
  LogThrottles* const throttles_;
  const int64_t id_;
  const char* const rpc_;
  const std::string model_id_;
  const std::chrono::steady_clock::time_point start_;
};

// Counts a request refused before any work (admission, tokens) in the metrics, if they are on.
void CountRefusal(const ServiceEnv& env, const Status& refusal);

// RunOptions for a call: cancellation flag, the client's deadline on the steady clock, and the
// server's MemoryBudget.
RunOptions RunOptionsFor(ServiceEnv* env, const grpc::CallbackServerContext* ctx,
                         const std::atomic<bool>* cancelled);

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // `response` is the call's response message, counted in backflow_sent_bytes_total when the
  // call succeeds (it outlives the call: gRPC owns it).
  UnaryCall(ServiceEnv* env, grpc::CallbackServerContext* ctx, const char* rpc,
            std::string model_id, const google::protobuf::MessageLite* response);

  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override;

  RunOptions run() const { return RunOptionsFor(env_, ctx_, &cancelled_); }
  bool cancelled() const { return cancelled_.load(); }

  // Takes a slot for this call among the server's requests in flight (Admission::
  // AdmitRequest) and, with --auth-tokens, one of its token's max-in-flight, held until the
  // reply; the error that refused it otherwise. Call once, on the gRPC thread, before handing
  // the call's job on.
  Status Admit();
  // Finishes the call with `status`, giving its admission slot (if any) back first, so the
  // client's next request finds it free. The reactor may be gone when this returns.
  void Reply(const Status& status);
  // Runs `body` (on a compute thread), catching what it throws, and replies. A call cancelled
  // before it starts is not run.
  void RunAndReply(const std::function<Status()>& body);
  // When the work of a request that RunAndReply answers began elsewhere (a dynamic batch), for
  // the queue and compute times; by default RunAndReply's start.
  void WorkStarted(std::chrono::steady_clock::time_point started) { started_ = started; }

 private:
  ServiceEnv* const env_;
  grpc::CallbackServerContext* const ctx_;
  const google::protobuf::MessageLite* const response_;
  CallLog log_;
  AdmissionSlot slot_;  // empty until Admit(), and again from Reply()
  auth::InFlightSlot token_slot_;  // the token's max-in-flight share, held like slot_
  std::atomic<bool> cancelled_{false};
  // Ends this call's count in backflow_requests_queued, once (its work starts, or it is answered).
  void LeaveQueue();

  bool queued_ = false;  // counted in backflow_requests_queued
  std::optional<std::chrono::steady_clock::time_point> started_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CALL_H_
