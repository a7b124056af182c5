#include "server/train_stream.h"

#include <algorithm>
#include <new>
#include <utility>

#include "engine/core/tsan.h"
#include "server/caller_check.h"
#include "server/grpc_status.h"
#include "server/names.h"
#include "server/operations.h"

namespace backflow::server {

TrainStream::TrainStream(ServiceEnv* env, grpc::CallbackServerContext* ctx)
    : env_(env), ctx_(ctx), log_(env, ctx, "Train", "") {
  // The role before a slot is taken (caller_check.h); the model's name prefix in AcceptLocked.
  Status allowed = CheckCaller(*env_, ctx_, "Train", std::nullopt);
  if (allowed.ok() && env_->tokens != nullptr) {
    StatusOr<auth::InFlightSlot> share = env_->tokens->AdmitInFlight(AuthorizationHeader(ctx_));
    if (share.ok()) token_slot_ = std::move(*share);
    allowed = share.status();
    if (!allowed.ok()) CountRefusal(*env_, allowed);
  }
  StatusOr<AdmissionSlot> admitted =
      allowed.ok() ? env_->admission.AdmitStream() : StatusOr<AdmissionSlot>(allowed);
  if (admitted.ok()) {
    slot_ = std::move(*admitted);
  } else if (allowed.ok()) {
    CountRefusal(*env_, admitted.status());
  }
  const auto idle_timeout = env_->config.stream_idle_timeout;
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_activity_ = std::chrono::steady_clock::now();
    if (!admitted.ok()) {
      FailLocked(0, admitted.status());
      reads_done_ = true;
    }
    actions = NextLocked();
    if (admitted.ok() && idle_timeout.count() > 0) {
      alarm_pending_ = true;
      actions.arm_alarm = idle_timeout;
    }
  }
  Perform(actions);
}

TrainStream::Actions TrainStream::NextLocked() {
  Actions actions;
  if (finished_) return actions;
  const bool cancelled = cancelled_.load();
  if (!writing_ && !ready_.empty() && !cancelled) {
    writing_ = std::move(ready_.front());
    ready_.pop_front();
    actions.write = writing_.get();
  }
  const bool stop = FailedLocked() || cancelled;
  const int64_t outstanding =
      in_flight_ + static_cast<int64_t>(ready_.size()) + (writing_ ? 1 : 0);
  if (!stop && !reading_ && !reads_done_ && outstanding < env_->config.limits.stream_window) {
    reading_ = true;
    actions.read = true;
  }
  if (in_flight_ == 0 && !writing_ && (ready_.empty() || cancelled) && (reads_done_ || stop)) {
    if (alarm_pending_) {  // finish once its callback has run (Note [Idle streams])
      actions.cancel_alarm = !alarm_cancelled_.exchange(true);
      return actions;
    }
    finished_ = true;
    actions.finish = cancelled ? CancelledError("the client cancelled the stream") : error_;
    actions.model_id = model_ != nullptr ? model_->id() : first_model_id_;
  }
  return actions;
}

void TrainStream::Perform(const Actions& actions) {
  // gRPC orders the callbacks these start after them, inside its uninstrumented code.
  BF_TSAN_RELEASE(this);
  if (actions.write != nullptr) {
    if (env_->metrics != nullptr) {
      env_->metrics->Sent("Train", static_cast<int64_t>(actions.write->ByteSizeLong()));
    }
    StartWrite(actions.write);
  }
  if (actions.read) StartRead(&incoming_);
  if (actions.arm_alarm || actions.cancel_alarm) {
    std::lock_guard<std::mutex> lock(alarm_mu_);
    if (actions.arm_alarm) {
      alarm_ = std::make_unique<grpc::Alarm>();  // the old one, if any, has fired
      BF_TSAN_RELEASE(this);  // the new alarm, to its callback
      alarm_->Set(std::chrono::system_clock::now() + *actions.arm_alarm,
                  [this](bool fired) { OnIdleAlarm(fired); });
    }
    if (actions.cancel_alarm || (actions.arm_alarm && alarm_cancelled_.load())) alarm_->Cancel();
  }
  if (actions.cancel_call) ctx_->TryCancel();
  if (actions.finish) {
    log_.Done(*actions.finish, actions.model_id);
    BF_TSAN_RELEASE(this);  // everything above (the alarm's reset included), to OnDone
    Finish(ToGrpcStatus(*actions.finish));
  }
}

void TrainStream::FailLocked(int64_t index, Status status) {
  if (error_index_ < 0 || index < error_index_) {
    error_index_ = index;
    error_ = std::move(status);
  }
}

Status TrainStream::AcceptLocked(int64_t index, const v1::TrainStepRequest& request) {
  const std::string where = "request " + std::to_string(index);
  if (index == 0) first_model_id_ = request.model_id().substr(0, kMaxModelIdBytes + 1);
  if (model_ == nullptr) {
    if (request.model_id().empty()) {
      return InvalidArgumentError(where + ": model_id is required in the first request");
    }
    StatusOr<std::shared_ptr<Model>> model = env_->registry.Get(request.model_id());
    if (!model.ok()) return model.status().WithPrefix(where);
    BF_RETURN_IF_ERROR(CheckCaller(*env_, ctx_, "Train", (*model)->name()));
    model_ = *model;
  } else if (!request.model_id().empty() && request.model_id() != model_->id()) {
    if (Status long_id = CheckLength("model_id", request.model_id(), kMaxModelIdBytes);
        !long_id.ok()) {
      return long_id.WithPrefix(where);
    }
    return InvalidArgumentError(where + ": model_id " + Quoted(request.model_id()) +
                                " differs from the stream's '" + model_->id() + "'");
  }
  return Status::Ok();
}

void TrainStream::OnReadDone(bool ok) {
  BF_TSAN_ACQUIRE(this);
  Actions actions;
  std::shared_ptr<const v1::TrainStepRequest> request;
  int64_t index = 0;
  std::shared_ptr<Model> model;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) {
      reads_done_ = true;
      // gRPC ends reads on its own when the server shuts down: say so, rather than OK.
      if (env_->admission.draining() && !cancelled_.load()) {
        FailLocked(received_, UnavailableError("request " + std::to_string(received_) +
                                               ": the server is shutting down"));
      }
    } else if (!finished_ && !FailedLocked()) {
      if (env_->metrics != nullptr) {
        env_->metrics->Received("Train", static_cast<int64_t>(incoming_.ByteSizeLong()));
      }
      last_activity_ = std::chrono::steady_clock::now();
      index = received_++;
      Status accepted = AcceptLocked(index, incoming_);
      if (accepted.ok()) {
        request = std::make_shared<const v1::TrainStepRequest>(std::move(incoming_));
        model = model_;
        ++in_flight_;
      } else {
        FailLocked(index, std::move(accepted));  // the requests before it still run
      }
    }
    // reading_ stays true until this request is posted: a step finishing meanwhile must not
    // start the next read, whose request could then reach the queue first.
    if (request == nullptr) {
      reading_ = false;
      actions = NextLocked();
    }
  }
  if (request != nullptr) {
    // Decoded here, as it arrives, so the model's queue only computes (Note [Train stream
    // flow]); a decoding error is reported by the step, in order.
    auto batch =
        std::make_shared<const StatusOr<TensorMap>>(ops::DecodeTrainBatch(*env_, *model, *request));
    model->queue().Post([this, index, request, batch] { RunStep(index, request, batch); });
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    actions = NextLocked();
  }
  Perform(actions);
}

void TrainStream::RunStep(int64_t index, std::shared_ptr<const v1::TrainStepRequest> request,
                          std::shared_ptr<const StatusOr<TensorMap>> batch) {
  auto response = std::make_unique<v1::TrainStepResponse>();
  std::shared_ptr<Model> model;
  bool skip = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    skip = (FailedLocked() && index > error_index_) || cancelled_.load();
    model = model_;
  }
  Status status;
  if (!skip) {
    try {
      status = ops::TrainStepOnBatch(*env_, *model, *request, *batch, RunOptionsFor(env_, ctx_, &cancelled_),
                                     response.get());
    } catch (const std::bad_alloc&) {
      status = ResourceExhaustedError("out of memory");
    } catch (const std::exception& e) {
      status = InternalError(std::string("unexpected exception: ") + e.what());
    }
  }
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    if (!skip && status.ok()) {
      ready_.push_back(std::move(response));
    } else if (!skip) {
      FailLocked(index, status.WithPrefix("request " + std::to_string(index)));
    }
    actions = NextLocked();
  }
  Perform(actions);
}

void TrainStream::OnIdleAlarm(bool fired) {
  BF_TSAN_ACQUIRE(this);
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    alarm_pending_ = false;
    Actions idle;
    if (fired && !alarm_cancelled_.load()) IdleCheckLocked(&idle);
    actions = NextLocked();
    actions.arm_alarm = idle.arm_alarm;
    actions.cancel_call = idle.cancel_call;
  }
  Perform(actions);
}

void TrainStream::IdleCheckLocked(Actions* actions) {
  if (finished_ || FailedLocked() || cancelled_.load()) return;  // ending anyway
  const auto timeout = env_->config.stream_idle_timeout;
  const auto now = std::chrono::steady_clock::now();
  if (in_flight_ > 0 || now - last_activity_ < timeout) {  // busy, or active since: check later
    alarm_pending_ = true;
    const std::chrono::steady_clock::duration rest = last_activity_ + timeout - now;
    actions->arm_alarm = in_flight_ > 0 ? std::chrono::steady_clock::duration(timeout)
                                        : std::max(rest, std::chrono::steady_clock::duration(
                                                             std::chrono::milliseconds(1)));
    return;
  }
  FailLocked(received_, DeadlineExceededError(
                            "request " + std::to_string(received_) + ": the stream was idle for " +
                            std::to_string(timeout.count()) +
                            " s (--stream-idle-timeout): no request arrived and no answer was "
                            "taken; open a new stream to go on"));
  actions->cancel_call = writing_ != nullptr;  // a write the client never takes never ends
}

void TrainStream::OnWriteDone(bool ok) {
  BF_TSAN_ACQUIRE(this);
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_activity_ = std::chrono::steady_clock::now();
    writing_.reset();
    if (!ok) cancelled_.store(true);  // the client is gone
    actions = NextLocked();
  }
  Perform(actions);
}

void TrainStream::OnCancel() {
  BF_TSAN_ACQUIRE(this);
  cancelled_.store(true);
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    actions = NextLocked();
  }
  Perform(actions);
}

void TrainStream::OnDone() {
  BF_TSAN_ACQUIRE(this);
  delete this;  // and with it slot_, giving the stream's place back
}

}  // namespace backflow::server
