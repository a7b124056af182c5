#include "server/admission.h"

#include <string>
#include <utility>

namespace backflow::server {

AdmissionSlot AdmissionSlot::TryTake(std::atomic<int64_t>* taken, int64_t limit) {
  if (taken->fetch_add(1) >= limit) {
    taken->fetch_sub(1);
    return AdmissionSlot();
  }
  return AdmissionSlot(taken);
}

AdmissionSlot::AdmissionSlot(AdmissionSlot&& other) noexcept
    : taken_(std::exchange(other.taken_, nullptr)) {}

AdmissionSlot& AdmissionSlot::operator=(AdmissionSlot&& other) noexcept {
  if (this != &other) {
    Release();
    taken_ = std::exchange(other.taken_, nullptr);
  }
  return *this;
}

void AdmissionSlot::Release() {
  if (taken_ != nullptr) std::exchange(taken_, nullptr)->fetch_sub(1);
}

StatusOr<AdmissionSlot> Admission::AdmitRequest() {
  if (draining()) return UnavailableError("the server is shutting down");
  AdmissionSlot slot = AdmissionSlot::TryTake(&requests_, max_requests_);
  if (!slot.held()) {
    return ResourceExhaustedError("more than " + std::to_string(max_requests_) +
                                  " requests in flight (--max-pending-requests); retry later");
  }
  return slot;
}

StatusOr<AdmissionSlot> Admission::AdmitStream() {
  if (draining()) return UnavailableError("the server is shutting down");
  AdmissionSlot slot = AdmissionSlot::TryTake(&streams_, max_streams_);
  if (!slot.held()) {
    return ResourceExhaustedError("more than " + std::to_string(max_streams_) +
                                  " Train streams open (--max-streams)");
  }
  return slot;
}

}  // namespace backflow::server
