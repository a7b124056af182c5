#include "server/checkpoint_stream.h"

#include <grpcpp/alarm.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "engine/core/tsan.h"
#include "server/call.h"
#include "server/caller_check.h"
#include "server/checkpoint_transfer.h"
#include "server/grpc_status.h"

namespace backflow::server {
namespace {

using Clock = std::chrono::steady_clock;

// What both reactors share: admission, finishing once, the idle alarm and the lifetime. The
// reactor deletes itself when gRPC is done with it and the alarm's last callback has run
// (Unref).
template <typename Base>
class CheckpointStream : public Base {
 public:
  void OnCancel() override { cancelled_.store(true); }

  void OnDone() override {
    BF_TSAN_ACQUIRE(this);
    bool alarm_pending = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      alarm_pending = alarm_pending_;
    }
    if (alarm_pending) {
      std::lock_guard<std::mutex> lock(alarm_mu_);
      cancel_alarm_.store(true);
      alarm_->Cancel();  // its callback runs soon, with `fired` false, and lets go
    }
    Unref();
  }

 protected:
  CheckpointStream(ServiceEnv* env, grpc::CallbackServerContext* ctx, const char* rpc,
                   std::string model_id)
      : env_(env), ctx_(ctx), rpc_(rpc), log_(env, ctx, rpc, std::move(model_id)) {}
  ~CheckpointStream() override = default;

  // The token's share and a stream slot.
  Status TakeSlots() {
    if (env_->tokens != nullptr) {
      BF_ASSIGN_OR_RETURN(token_slot_, env_->tokens->AdmitInFlight(AuthorizationHeader(ctx_)));
    }
    BF_ASSIGN_OR_RETURN(slot_, env_->admission.AdmitStream());
    return Status::Ok();
  }

  // The role (and, when a model is named, its prefix), the token's share and a stream slot.
  Status Admit(std::optional<std::string_view> model_name) {
    BF_RETURN_IF_ERROR(CheckCaller(*env_, ctx_, rpc_, model_name));
    if (Status taken = TakeSlots(); !taken.ok()) {
      CountRefusal(*env_, taken);
      return taken;
    }
    const auto timeout = env_->config.stream_idle_timeout;
    if (timeout.count() > 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        alarm_pending_ = true;
        last_activity_ = Clock::now();
      }
      refs_.fetch_add(1);  // the alarm's, until its last callback
      Arm(timeout);
    }
    return Status::Ok();
  }

  // Activity on the client's side: a chunk read or taken.
  void Touch() {
    std::lock_guard<std::mutex> lock(mu_);
    last_activity_ = Clock::now();
  }
  // Server work in flight: never idle meanwhile.
  void SetBusy(bool busy) {
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = busy;
    last_activity_ = Clock::now();
  }
  bool cancelled() const { return cancelled_.load(); }

  // Ends the call with `status` the first time; later calls do nothing. Nothing of the reactor
  // may be touched after it.
  void FinishOnce(const Status& status, std::string_view model_id = {}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    slot_ = AdmissionSlot();  // the next stream finds the place free
    token_slot_ = auth::InFlightSlot();
    log_.Done(status, model_id);
    BF_TSAN_RELEASE(this);
    this->Finish(ToGrpcStatus(status));
  }

  // The stream was idle for --stream-idle-timeout (the lock not held).
  virtual void OnIdle(const Status& status) = 0;

  ServiceEnv* const env_;
  grpc::CallbackServerContext* const ctx_;

 private:
  void Arm(Clock::duration in) {
    std::lock_guard<std::mutex> lock(alarm_mu_);
    alarm_ = std::make_unique<grpc::Alarm>();  // the old one, if any, has fired
    BF_TSAN_RELEASE(this);
    alarm_->Set(std::chrono::system_clock::now() + in, [this](bool fired) { OnAlarm(fired); });
    // OnDone may have cancelled the old alarm just before: this one goes too, so the reactor
    // never waits a whole timeout to be deleted (nor outlives the server).
    if (cancel_alarm_.load()) alarm_->Cancel();
  }

  void OnAlarm(bool fired) {
    BF_TSAN_ACQUIRE(this);
    const auto timeout = Clock::duration(env_->config.stream_idle_timeout);
    std::optional<Clock::duration> again;
    bool idle = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fired && !done_ && !finished_) {
        const Clock::time_point now = Clock::now();
        if (busy_) {
          again = timeout;
        } else if (now - last_activity_ < timeout) {
          again = std::max(last_activity_ + timeout - now,
                           Clock::duration(std::chrono::milliseconds(1)));
        } else {
          idle = true;
        }
      }
      // While OnIdle runs the alarm still counts as pending, so that an OnDone it causes cancels
      // nothing that matters and leaves the last reference to this callback.
      alarm_pending_ = again.has_value() || idle;
    }
    if (again) {
      Arm(*again);
      return;
    }
    if (idle) {
      OnIdle(DeadlineExceededError(
          std::string("the stream was idle for ") + std::to_string(timeout_seconds()) +
          " s (--stream-idle-timeout): nothing was sent or taken; open a new stream to go on"));
      std::lock_guard<std::mutex> lock(mu_);
      alarm_pending_ = false;
    }
    Unref();  // the alarm's: no callback comes after this one
  }

  // The reactor is deleted when gRPC is done with it (OnDone) and the alarm's last callback
  // has run, whichever comes last.
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 protected:
  // A message's bytes in backflow_sent_bytes_total / _received_bytes_total, if metrics are on.
  void CountSent(const google::protobuf::MessageLite& message) {
    if (env_->metrics != nullptr) {
      env_->metrics->Sent(rpc_, static_cast<int64_t>(message.ByteSizeLong()));
    }
  }
  void CountReceived(const google::protobuf::MessageLite& message) {
    if (env_->metrics != nullptr) {
      env_->metrics->Received(rpc_, static_cast<int64_t>(message.ByteSizeLong()));
    }
  }

  int64_t timeout_seconds() const {
    return static_cast<int64_t>(env_->config.stream_idle_timeout.count());
  }

 private:
  const char* const rpc_;
  CallLog log_;
  AdmissionSlot slot_;
  auth::InFlightSlot token_slot_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> cancel_alarm_{false};  // OnDone asked for the alarm to go
  std::atomic<int> refs_{1};  // gRPC's until OnDone, and the alarm's while it is armed
  std::mutex mu_;
  bool busy_ = false;             // GUARDED_BY(mu_)
  bool finished_ = false;         // GUARDED_BY(mu_)
  bool done_ = false;             // GUARDED_BY(mu_): OnDone ran
  bool alarm_pending_ = false;    // GUARDED_BY(mu_): armed, callback not yet run
  Clock::time_point last_activity_;  // GUARDED_BY(mu_)
  std::mutex alarm_mu_;           // taken without mu_ held
  std::unique_ptr<grpc::Alarm> alarm_;  // GUARDED_BY(alarm_mu_)
};

class DownloadStream final : public CheckpointStream<grpc::ServerWriteReactor<v1::CheckpointChunk>> {
 public:
  DownloadStream(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                 const v1::DownloadCheckpointRequest* request)
      : CheckpointStream(env, ctx, "DownloadCheckpoint", request->model_id()), request_(*request) {
    StatusOr<std::shared_ptr<Model>> model = env_->registry.Get(request_.model_id());
    Status admitted = model.status();
    if (admitted.ok()) admitted = Admit((*model)->name());
    if (!admitted.ok()) {
      FinishOnce(admitted);
      return;
    }
    model_ = std::move(*model);
    SetBusy(true);
    env_->pool->Submit([this] { Produce(); });
  }

  void OnWriteDone(bool ok) override {
    BF_TSAN_ACQUIRE(this);
    if (!ok || cancelled()) {
      FinishOnce(idle_.load() ? DeadlineExceededError("the client took no chunk for " +
                                                      std::to_string(timeout_seconds()) +
                                                      " s (--stream-idle-timeout)")
                              : CancelledError("the client cancelled the download"));
      return;
    }
    SetBusy(true);
    env_->pool->Submit([this] { Produce(); });
  }

 private:
  // On the ComputePool: the next message, or the end. The last thing it does is start a write
  // or finish the call.
  void Produce() {
    BF_TSAN_ACQUIRE(this);
    Status status = model_->CheckNotDeleted();
    bool more = false;
    if (status.ok() && cancelled()) status = CancelledError("the client cancelled the download");
    if (status.ok()) {
      status = [&]() -> Status {
        message_.Clear();
        if (download_ == nullptr) {
          BF_ASSIGN_OR_RETURN(download_, ops::CheckpointDownload::Open(*env_, *model_, request_));
          *message_.mutable_header() = download_->header();
          more = true;
          return Status::Ok();
        }
        BF_ASSIGN_OR_RETURN(more, download_->Next(message_.mutable_data()));
        return Status::Ok();
      }();
    }
    SetBusy(false);
    if (!status.ok() || !more) {
      FinishOnce(status);
      return;
    }
    Touch();  // the client's turn starts now
    this->CountSent(message_);
    BF_TSAN_RELEASE(this);
    StartWrite(&message_);
  }

  void OnIdle(const Status& /*status*/) override {
    idle_.store(true);
    ctx_->TryCancel();  // the write the client never takes ends, and OnWriteDone finishes
  }

  const v1::DownloadCheckpointRequest request_;
  std::shared_ptr<Model> model_;
  std::unique_ptr<ops::CheckpointDownload> download_;
  v1::CheckpointChunk message_;
  std::atomic<bool> idle_{false};
};

class UploadStream final : public CheckpointStream<grpc::ServerReadReactor<v1::CheckpointChunk>> {
 public:
  UploadStream(ServiceEnv* env, grpc::CallbackServerContext* ctx, v1::ModelInfo* response)
      : CheckpointStream(env, ctx, "UploadCheckpoint", ""), response_(response) {
    Status admitted = Admit(std::nullopt);
    if (admitted.ok()) {
      const ModelQuota quota = CallerModelQuota(*env_, ctx_);
      StatusOr<ModelRegistry::Reservation> reserved =
          env_->registry.Reserve(quota.owner, quota.max_models);
      admitted = reserved.status();
      if (reserved.ok()) reservation_ = std::move(*reserved);
    }
    if (!admitted.ok()) {
      FinishOnce(admitted);
      return;
    }
    BF_TSAN_RELEASE(this);
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    BF_TSAN_ACQUIRE(this);
    Touch();
    if (!ok) {
      EndOfStream();
      return;
    }
    this->CountReceived(incoming_);
    const std::string where = "message " + std::to_string(received_++);
    if (upload_ == nullptr) {
      if (!incoming_.has_header()) {
        FinishOnce(InvalidArgumentError(where + ": the first message must carry the header"));
        return;
      }
      SetBusy(true);
      env_->pool->Submit([this] { Begin(); });
      return;
    }
    if (incoming_.has_header()) {
      FinishOnce(InvalidArgumentError(where + ": only the first message may carry a header"));
      return;
    }
    if (Status appended = upload_->Append(incoming_.data()); !appended.ok()) {
      FinishOnce(appended.WithPrefix(where));
      return;
    }
    BF_TSAN_RELEASE(this);
    StartRead(&incoming_);
  }

 private:
  void EndOfStream() {
    if (cancelled()) {
      FinishOnce(CancelledError("the client cancelled the upload; no model was created"));
    } else if (env_->admission.draining()) {
      FinishOnce(UnavailableError("the server is shutting down; no model was created"));
    } else if (upload_ == nullptr) {
      FinishOnce(InvalidArgumentError("the stream ended before its header"));
    } else {
      SetBusy(true);
      env_->pool->Submit([this] {
        BF_TSAN_ACQUIRE(this);
        const Status finished = upload_->Finish(*env_, reservation_, response_);
        SetBusy(false);
        FinishOnce(finished, finished.ok() ? std::string_view(response_->id()) : "");
      });
    }
  }

  // On the ComputePool: the model the header describes, checked against the header.
  void Begin() {
    BF_TSAN_ACQUIRE(this);
    Status status = CheckCaller(*env_, ctx_, "UploadCheckpoint", incoming_.header().model().name());
    if (status.ok()) {
      StatusOr<std::unique_ptr<ops::CheckpointUpload>> upload =
          ops::CheckpointUpload::Begin(*env_, incoming_.header(), reservation_.owner());
      status = upload.status().WithPrefix("header");
      if (upload.ok()) upload_ = std::move(*upload);
    }
    if (status.ok()) status = upload_->Append(incoming_.data()).WithPrefix("message 0");
    SetBusy(false);
    if (!status.ok()) {
      FinishOnce(status);
      return;
    }
    BF_TSAN_RELEASE(this);
    StartRead(&incoming_);
  }

  void OnIdle(const Status& status) override { FinishOnce(status); }

  v1::ModelInfo* const response_;
  ModelRegistry::Reservation reservation_;
  v1::CheckpointChunk incoming_;  // filled by the one outstanding read
  int64_t received_ = 0;
  std::unique_ptr<ops::CheckpointUpload> upload_;
};

}  // namespace

grpc::ServerWriteReactor<v1::CheckpointChunk>* NewDownloadStream(
    ServiceEnv* env, grpc::CallbackServerContext* ctx,
    const v1::DownloadCheckpointRequest* request) {
  return new DownloadStream(env, ctx, request);
}

grpc::ServerReadReactor<v1::CheckpointChunk>* NewUploadStream(ServiceEnv* env,
                                                              grpc::CallbackServerContext* ctx,
                                                              v1::ModelInfo* response) {
  return new UploadStream(env, ctx, response);
}

}  // namespace backflow::server
