#include "server/data_parallel/mpi_reducer.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace backflow::server {
namespace {

template <typename T>
void ScaledCopy(const Tensor& from, double weight, char* to) {
  const T* in = reinterpret_cast<const T*>(from.raw());
  T* out = reinterpret_cast<T*>(to);
  const int64_t n = from.num_elements();
  if (weight == 1.0) {
    std::memcpy(out, in, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(static_cast<double>(in[i]) * weight);
}

}  // namespace

MpiReducer::MpiReducer(Collective* collective, const Trainer& trainer,
                       const ParameterSnapshot& params, int64_t rows, int64_t batch_rows,
                       int64_t bucket_bytes)
    : collective_(collective),
      names_(trainer.parameter_names()),
      dtype_(trainer.options().dtype),
      weight_(ShardLossWeight(LossReductionOf(trainer.graph()), rows, batch_rows)),
      slots_(names_.size()) {
  const int64_t size_of = static_cast<int64_t>(SizeOf(dtype_));
  // Reverse parameter order: backward reaches the last layers first.
  for (size_t k = names_.size(); k-- > 0;) {
    const int64_t elements = params.values.at(names_[k]).num_elements();
    if (buckets_.empty() || (buckets_.back().elements > 0 &&
                             (buckets_.back().elements + elements) * size_of > bucket_bytes)) {
      buckets_.emplace_back();
    }
    Bucket& bucket = buckets_.back();
    slots_[k] =
        Slot{.bucket = buckets_.size() - 1, .offset = bucket.elements, .elements = elements};
    bucket.elements += elements;
    ++bucket.missing;
  }
  for (Bucket& bucket : buckets_) {
    bucket.data.assign(static_cast<size_t>(bucket.elements * size_of), 0);
  }
}

MpiReducer::~MpiReducer() { (void)FinishAll(); }

void MpiReducer::Fill(size_t index, const Tensor* gradient) {
  Slot& slot = slots_[index];
  char* to = buckets_[slot.bucket].data.data() + slot.offset * static_cast<int64_t>(SizeOf(dtype_));
  if (gradient != nullptr && gradient->num_elements() == slot.elements) {
    if (dtype_ == DType::kFloat64) {
      ScaledCopy<double>(*gradient, weight_, to);
    } else {
      ScaledCopy<float>(*gradient, weight_, to);
    }
  } else {
    std::memset(to, 0, static_cast<size_t>(slot.elements) * SizeOf(dtype_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (slot.filled) return;
  slot.filled = true;
  --buckets_[slot.bucket].missing;
  StartComplete();
}

void MpiReducer::StartComplete() {
  for (; next_start_ < buckets_.size() && buckets_[next_start_].missing == 0; ++next_start_) {
    Bucket& bucket = buckets_[next_start_];
    if (!start_error_.ok()) continue;  // Reduce reports it; no rank can finish the step now
    StatusOr<Collective::Pending> started =
        collective_->StartAllreduceSum(bucket.data.data(), bucket.elements, dtype_);
    if (started.ok()) {
      bucket.pending = *started;
    } else {
      start_error_ = started.status();
    }
  }
  for (size_t b = 0; b < next_start_; ++b) {
    if (buckets_[b].pending) collective_->Poll(*buckets_[b].pending);
  }
}

Status MpiReducer::FinishAll() {
  Status first;
  for (Bucket& bucket : buckets_) {
    if (!bucket.pending) continue;
    Status finished = collective_->Finish(*bucket.pending);
    bucket.pending.reset();
    if (first.ok()) first = finished;
  }
  return first;
}

void MpiReducer::GradientReady(size_t index, const Tensor& gradient) {
  if (index < slots_.size()) Fill(index, &gradient);
}

Status MpiReducer::Reduce(const Status& run, StepResult* result, ParameterMap* next_state) {
  // A gradient no plan step computed (a parameter the loss does not reach) comes from the
  // result; a failed run sends zeros in its place.
  for (size_t k = 0; k < slots_.size(); ++k) {
    bool filled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      filled = slots_[k].filled;
    }
    if (!filled) Fill(k, run.ok() ? &result->gradients.at(names_[k]) : nullptr);
  }
  Status summed = FinishAll();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (summed.ok()) summed = start_error_;
  }
  BF_RETURN_IF_ERROR(summed);
  // Loss and metrics in float64, in name order (every rank's model has the same metrics).
  std::map<std::string, double> metrics;
  if (run.ok()) metrics.insert(result->metrics.begin(), result->metrics.end());
  std::vector<double> totals = {run.ok() ? 0.0 : 1.0, run.ok() ? weight_ * result->loss : 0.0};
  for (const auto& [name, value] : metrics) totals.push_back(weight_ * value);
  int64_t count = static_cast<int64_t>(totals.size());
  BF_RETURN_IF_ERROR(collective_->AllreduceMax(&count));
  totals.resize(static_cast<size_t>(count), 0.0);
  BF_RETURN_IF_ERROR(collective_->AllreduceSum(totals.data(), count, DType::kFloat64));
  if (totals[0] > 0) return FirstFailure(*collective_, run);

  result->loss = totals[1];
  size_t i = 2;
  for (const auto& [name, value] : metrics) result->metrics[name] = totals[i++];
  const size_t size_of = SizeOf(dtype_);
  for (size_t k = 0; k < slots_.size(); ++k) {
    const Slot& slot = slots_[k];
    std::memcpy(result->gradients.at(names_[k]).raw(),
                buckets_[slot.bucket].data.data() + static_cast<size_t>(slot.offset) * size_of,
                static_cast<size_t>(slot.elements) * size_of);
  }
  return ShareState(next_state);
}

Status MpiReducer::ShareState(ParameterMap* next_state) {
  if (collective_->size() == 1 || next_state == nullptr || next_state->empty()) {
    return Status::Ok();
  }
  std::map<std::string, Tensor*> ordered;
  for (auto& [name, tensor] : *next_state) ordered[name] = &tensor;
  for (auto& [name, tensor] : ordered) {
    std::string bytes;
    if (collective_->rank() == 0)
      bytes.assign(reinterpret_cast<const char*>(tensor->raw()), tensor->byte_size());
    BF_RETURN_IF_ERROR(collective_->Broadcast(&bytes));
    if (bytes.size() != tensor->byte_size()) {
      return InternalError("running state '" + name + "' differs in size between ranks");
    }
    std::memcpy(tensor->raw(), bytes.data(), bytes.size());
  }
  return Status::Ok();
}

}  // namespace backflow::server
