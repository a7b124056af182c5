// Admission: how much work the server lets in at once. A compute request takes one of
// limits.max_pending_requests slots until it is answered, a Train stream one of
// limits.max_streams until it ends; while the server drains, nothing new is let in.
//
// A slot is an AdmissionSlot: move-only, it gives its place back exactly once, when it is
// destroyed or Release()d, whichever comes first. A path that drops it cannot leak the place,
// and a moved-from or released slot gives back nothing, so none can give it back twice.
//
// Thread safety: Admission is thread-safe. An AdmissionSlot is not (one owner at a time), but
// slots taken from the same Admission may be used and released on any threads.
#ifndef BACKFLOW_SERVER_ADMISSION_H_
#define BACKFLOW_SERVER_ADMISSION_H_

#include <atomic>
#include <cstdint>

#include "engine/core/status.h"

namespace backflow::server {

class AdmissionSlot {
 public:
  AdmissionSlot() = default;  // holds nothing
  // A place among `limit` counted by `*taken`, or an empty slot if all of them are taken.
  // `taken` must outlive the slot.
  static AdmissionSlot TryTake(std::atomic<int64_t>* taken, int64_t limit);

  AdmissionSlot(AdmissionSlot&& other) noexcept;
  AdmissionSlot& operator=(AdmissionSlot&& other) noexcept;  // releases what this one held
  AdmissionSlot(const AdmissionSlot&) = delete;
  AdmissionSlot& operator=(const AdmissionSlot&) = delete;
  ~AdmissionSlot() { Release(); }

  bool held() const { return taken_ != nullptr; }
  // Gives the place back now, if this slot holds one; the slot is empty afterwards.
  void Release();

 private:
  explicit AdmissionSlot(std::atomic<int64_t>* taken) : taken_(taken) {}

  std::atomic<int64_t>* taken_ = nullptr;  // null: holds nothing
};

class Admission {
 public:
  Admission(int64_t max_requests, int64_t max_streams)
      : max_requests_(max_requests), max_streams_(max_streams) {}

  // A slot for one compute request. UNAVAILABLE "the server is shutting down" while draining;
  // RESOURCE_EXHAUSTED "more than N requests in flight (--max-pending-requests); retry later"
  // when all max_requests are taken.
  StatusOr<AdmissionSlot> AdmitRequest();
  // A slot for one Train stream. UNAVAILABLE as above; RESOURCE_EXHAUSTED "more than N Train
  // streams open (--max-streams)" when all max_streams are taken.
  StatusOr<AdmissionSlot> AdmitStream();

  // From now on every admission fails with UNAVAILABLE; slots already taken stay valid.
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  int64_t requests_in_flight() const { return requests_.load(); }
  int64_t streams_open() const { return streams_.load(); }

 private:
  const int64_t max_requests_;
  const int64_t max_streams_;
  std::atomic<int64_t> requests_{0};  // slots taken by compute requests
  std::atomic<int64_t> streams_{0};   // slots taken by Train streams
  std::atomic<bool> draining_{false};
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_ADMISSION_H_
