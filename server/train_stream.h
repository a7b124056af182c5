// TrainStream: the reactor behind the Train RPC, a bidirectional stream of training steps.
//
// Note [Train stream flow]
// Requests are read one at a time and posted to the model's SerialQueue as they arrive, so
// steps apply in stream order, while the client may run ahead by up to stream_window requests
// (read, queued or computed but not yet written). Past the window the reactor stops reading,
// and gRPC's flow control holds the client back: that is the back-pressure. Responses are
// written one at a time in request order (the queue completes steps in order). The first
// failing request ends the stream with its status, prefixed "request K: ": the requests before
// it are still applied and answered, the ones queued behind it are skipped, so the model's
// step is exactly the number of answers delivered. (A request can fail when it is read, for a
// wrong model id, or when its step runs; either way K orders it.)
// The next read starts only once the request just read is on the queue: otherwise a step
// finishing meanwhile could start it, and its request could reach the queue first (which the
// thousand-step stream test caught, once steps were fast enough, as losses diverging from the
// engine's from some step on).
// Each request's batch is decoded (copied into engine tensors and checked) on the gRPC thread
// that read it, like the protobuf parsing before it, so the model's queue spends its time on
// the steps alone; a decoding error is reported by that request's step, in order. On the MLP
// (batch 64, a 0.6 ms step) this took the copy and check of 200 KB off every step's critical
// path (docs/PERFORMANCE.md).
// The reactor finishes only when no job of it is queued or running, which is what makes it
// safe for jobs to call back into it.
//
// Note [Idle streams]
// A stream holds one of --max-streams slots for as long as it is open, so a client that opens
// streams and sends nothing would lock everyone else out. With --stream-idle-timeout T, a stream
// that waits on its client for T (no request read, no answer taken by the client, and no step
// queued or running, so a slow step never counts) fails with DEADLINE_EXCEEDED as its next
// request, like any failing request. One grpc::Alarm per stream checks: it fires T after the
// last activity, and re-arms itself for the rest when there was activity since. The alarm is a
// job like a step: the reactor finishes only after its callback has run (Cancel() makes that
// prompt), so the callback never outlives the reactor. A cancel asked for while the callback
// re-arms finds either the new alarm, or the flag that the new alarm checks once it is set. An answer the client never reads would
// keep its write pending for ever, so an idle stream with a write pending is also cancelled.
#ifndef BACKFLOW_SERVER_TRAIN_STREAM_H_
#define BACKFLOW_SERVER_TRAIN_STREAM_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "backflow/v1/service.grpc.pb.h"
#include "server/admission.h"
#include "server/auth/token_store.h"
#include "server/call.h"
#include "server/convert.h"
#include "server/model.h"
#include "server/service_env.h"

namespace backflow::server {

class TrainStream final
    : public grpc::ServerBidiReactor<v1::TrainStepRequest, v1::TrainStepResponse> {
 public:
  TrainStream(ServiceEnv* env, grpc::CallbackServerContext* ctx);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What to start once the lock is released (callbacks never run under our lock).
  struct Actions {
    const v1::TrainStepResponse* write = nullptr;
    bool read = false;
    std::optional<std::chrono::steady_clock::duration> arm_alarm;  // in; Note [Idle streams]
    bool cancel_alarm = false;
    bool cancel_call = false;  // an idle stream whose answer the client never takes
    std::optional<Status> finish;
    std::string model_id;  // with `finish`: the model the log line names
  };
  Actions NextLocked();
  void Perform(const Actions& actions);
  Status AcceptLocked(int64_t index, const v1::TrainStepRequest& request);
  // Records that request `index` failed; the earliest failing request is the stream's error.
  void FailLocked(int64_t index, Status status);
  bool FailedLocked() const { return error_index_ >= 0; }
  // The idle alarm's callback: `fired` false when it was cancelled (Note [Idle streams]).
  void OnIdleAlarm(bool fired);
  void IdleCheckLocked(Actions* actions);
  void RunStep(int64_t index, std::shared_ptr<const v1::TrainStepRequest> request,
               std::shared_ptr<const StatusOr<TensorMap>> batch);

  ServiceEnv* const env_;
  grpc::CallbackServerContext* const ctx_;
  CallLog log_;
  AdmissionSlot slot_;  // among the Train streams open; given back when the reactor is deleted
  auth::InFlightSlot token_slot_;  // the token's max-in-flight share, held like slot_
  std::atomic<bool> cancelled_{false};
  v1::TrainStepRequest incoming_;  // filled by the one outstanding read

  std::mutex mu_;
  std::shared_ptr<Model> model_;  // GUARDED_BY(mu_): from the first request
  std::string first_model_id_;    // GUARDED_BY(mu_): as the first request named it (its start)
  int64_t received_ = 0;  // GUARDED_BY(mu_)
  int64_t in_flight_ = 0;  // GUARDED_BY(mu_): posted steps not yet done
  std::deque<std::unique_ptr<v1::TrainStepResponse>> ready_;  // GUARDED_BY(mu_)
  std::unique_ptr<v1::TrainStepResponse> writing_;  // GUARDED_BY(mu_)
  bool reading_ = false;  // GUARDED_BY(mu_)
  bool reads_done_ = false;  // GUARDED_BY(mu_)
  bool finished_ = false;  // GUARDED_BY(mu_)
  Status error_;  // GUARDED_BY(mu_): the failure of the earliest failing request
  int64_t error_index_ = -1;  // GUARDED_BY(mu_): that request's index; -1: none
  // Note [Idle streams]: the last read or write done, and the alarm (replaced on each arming,
  // only while it is not pending or from its own callback).
  std::chrono::steady_clock::time_point last_activity_;  // GUARDED_BY(mu_)
  bool alarm_pending_ = false;  // GUARDED_BY(mu_): armed, callback not yet run
  std::atomic<bool> alarm_cancelled_{false};  // written under mu_: Cancel() asked for
  std::mutex alarm_mu_;  // taken without mu_ held, never the other way round
  std::unique_ptr<grpc::Alarm> alarm_;  // GUARDED_BY(alarm_mu_)
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TRAIN_STREAM_H_
