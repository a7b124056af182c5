#include "engine/optim/optimizer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string_view>
#include <vector>

#include "engine/optim/update_kernels.h"

namespace backflow {
namespace {

using update_kernels::AdamUpdate;
using update_kernels::FirstNonFiniteOutput;
using update_kernels::SgdUpdate;
using update_kernels::StepFactors;
using Kind = OptimizerConfig::Kind;

constexpr const char* kMomentum = "momentum";
constexpr const char* kAdamM = "adam_m";
constexpr const char* kAdamV = "adam_v";

std::string Format(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// InvalidArgument "optimizer config: FIELD must be WHAT, got VALUE" unless `ok`.
Status CheckField(bool ok, std::string_view field, std::string_view what, double value) {
  if (ok) return Status::Ok();
  return InvalidArgumentError("optimizer config: " + std::string(field) + " must be " +
                              std::string(what) + ", got " + Format(value));
}

bool NonNegative(double v) { return std::isfinite(v) && v >= 0; }
bool UnitInterval(double v) { return v >= 0 && v < 1; }  // [0, 1); false for NaN

bool IsAdam(Kind kind) { return kind == Kind::kAdam || kind == Kind::kAdamW; }

// The slot kinds an optimizer keeps per parameter.
std::vector<std::string> SlotKinds(const OptimizerConfig& config) {
  if (IsAdam(config.kind)) return {kAdamM, kAdamV};
  if (config.momentum > 0) return {kMomentum};
  return {};
}

// Running (scale, sum of squares) of LAPACK's dlassq: sqrt(sum x^2) = scale * sqrt(ssq), kept
// so that float64 gradients near 1e200 do not overflow the sum to infinity.
struct NormAccumulator {
  double scale = 0;
  double ssq = 1;
  void Add(double x) {
    const double a = std::abs(x);
    if (a == 0) return;
    if (scale < a) {
      ssq = 1 + ssq * (scale / a) * (scale / a);
      scale = a;
    } else {
      ssq += (a / scale) * (a / scale);
    }
  }
  double Norm() const { return scale * std::sqrt(ssq); }
};

template <typename T>
void AddSquares(const Tensor& t, NormAccumulator& acc) {
  const T* p = t.data<T>();
  for (int64_t i = 0; i < t.num_elements(); ++i) acc.Add(static_cast<double>(p[i]));
}

// Note [Parallel optimizer step]
// The update is elementwise, so it is cut into slices of kSliceElements that oneTBB runs on
// every core; each element's arithmetic is the same whatever the cut, so results are bitwise
// independent of the thread count. Reading the current values and writing the next snapshot in
// the same pass (Trainer::Step) also saves the copy and the zero-fill the snapshot used to cost:
// with the vectorised gradient check, the MLP's optimizer went from about a quarter of the
// server's CPU time per step to a few percent (docs/PERFORMANCE.md).
constexpr int64_t kSliceElements = 32 * 1024;

// The parameters a step updates, in name order, not hash order: the clipping norm's rounding,
// and so every bit of the result, must not depend on the standard library's hashing.
std::vector<std::string> SortedNames(const std::unordered_map<std::string, const Tensor*>& grads) {
  std::vector<std::string> names;
  names.reserve(grads.size());
  for (const auto& [name, grad] : grads) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Status ValidateOptimizerConfig(const OptimizerConfig& c) {
  if (c.kind != Kind::kSgd && !IsAdam(c.kind)) {
    return InvalidArgumentError("optimizer config: kind " +
                                std::to_string(static_cast<int>(c.kind)) +
                                " is not sgd, adam or adamw");
  }
  BF_RETURN_IF_ERROR(CheckField(NonNegative(c.learning_rate), "learning_rate", "finite and >= 0",
                                c.learning_rate));
  BF_RETURN_IF_ERROR(CheckField(UnitInterval(c.momentum), "momentum", "in [0, 1)", c.momentum));
  BF_RETURN_IF_ERROR(CheckField(!IsAdam(c.kind) || c.momentum == 0, "momentum",
                                "0 for adam and adamw (they use beta1)", c.momentum));
  if (c.nesterov && (IsAdam(c.kind) || c.momentum <= 0)) {
    return InvalidArgumentError("optimizer config: nesterov needs sgd with momentum > 0");
  }
  BF_RETURN_IF_ERROR(
      CheckField(NonNegative(c.weight_decay), "weight_decay", "finite and >= 0", c.weight_decay));
  BF_RETURN_IF_ERROR(
      CheckField(NonNegative(c.clip_norm), "clip_norm", "finite and >= 0", c.clip_norm));
  BF_RETURN_IF_ERROR(CheckField(NonNegative(c.clip_epsilon), "clip_epsilon", "finite and >= 0",
                                c.clip_epsilon));
  if (!IsAdam(c.kind)) return Status::Ok();  // SGD ignores the Adam fields
  BF_RETURN_IF_ERROR(CheckField(UnitInterval(c.beta1), "beta1", "in [0, 1)", c.beta1));
  BF_RETURN_IF_ERROR(CheckField(UnitInterval(c.beta2), "beta2", "in [0, 1)", c.beta2));
  return CheckField(std::isfinite(c.epsilon) && c.epsilon > 0, "epsilon", "finite and > 0",
                    c.epsilon);
}

Status ValidateOptimizerForDType(const OptimizerConfig& c, DType dtype) {
  if (dtype != DType::kFloat32) return Status::Ok();  // factors are computed in double
  const double max = std::numeric_limits<float>::max();
  auto fits = [&](double v, std::string_view field) {
    return CheckField(std::abs(v) <= max, field, "representable in float32", v);
  };
  BF_RETURN_IF_ERROR(fits(c.learning_rate, "learning_rate"));
  BF_RETURN_IF_ERROR(fits(c.weight_decay, "weight_decay"));
  if (c.kind == Kind::kAdamW) {
    BF_RETURN_IF_ERROR(fits(1 - c.learning_rate * c.weight_decay,
                            "1 - learning_rate * weight_decay (AdamW's decay)"));
  }
  if (IsAdam(c.kind)) {
    BF_RETURN_IF_ERROR(CheckField(static_cast<float>(c.epsilon) > 0 && c.epsilon <= max,
                                  "epsilon", "representable in float32 and above 0 there",
                                  c.epsilon));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config) {
  BF_RETURN_IF_ERROR(ValidateOptimizerConfig(config));
  return std::unique_ptr<Optimizer>(new Optimizer(config));
}

Status Optimizer::CheckGradient(const std::string& name, const Tensor* grad,
                                const std::unordered_map<std::string, Tensor>& params,
                                const std::unordered_map<std::string, Tensor>& next) const {
  const std::string where = "parameter '" + name + "': ";
  auto it = params.find(name);
  if (it == params.end()) return InvalidArgumentError(where + "has a gradient but no value");
  if (grad == nullptr) return InvalidArgumentError(where + "gradient is null");
  const Tensor& param = it->second;
  if (grad->dtype() != param.dtype() || grad->shape() != param.shape()) {
    return InvalidArgumentError(where + "gradient is " + std::string(DTypeName(grad->dtype())) +
                                " " + grad->shape().ToString() + ", but the parameter is " +
                                std::string(DTypeName(param.dtype())) + " " +
                                param.shape().ToString());
  }
  auto out = next.find(name);
  if (out == next.end() || out->second.dtype() != param.dtype() ||
      out->second.shape() != param.shape()) {
    return InvalidArgumentError(where + "has no place of its shape for the updated values");
  }
  if (FirstNonFinite(*grad) >= 0) {
    return InvalidArgumentError(where + "gradient holds a NaN or infinity");
  }
  for (const std::string& kind : SlotKinds(config_)) {
    auto slot = slots_.find(kind + "/" + name);
    if (slot != slots_.end() &&
        (slot->second.dtype() != param.dtype() || slot->second.shape() != param.shape())) {
      return InvalidArgumentError(where + "optimizer state '" + slot->first + "' is " +
                                  slot->second.shape().ToString() + ", but the parameter is " +
                                  param.shape().ToString());
    }
  }
  return Status::Ok();
}

Status Optimizer::Step(std::unordered_map<std::string, Tensor>& params,
                       const std::unordered_map<std::string, const Tensor*>& grads,
                       std::optional<double> learning_rate) {
  // Into fresh tensors, moved in only if the step succeeds (Note [Non-finite updates]).
  std::unordered_map<std::string, Tensor> next;
  for (const auto& [name, grad] : grads) {
    auto it = params.find(name);
    if (it != params.end()) {
      next.emplace(name, Tensor::Uninitialized(it->second.dtype(), it->second.shape()));
    }
  }
  BF_RETURN_IF_ERROR(Step(params, next, grads, learning_rate));
  for (auto& [name, tensor] : next) params.at(name) = std::move(tensor);
  return Status::Ok();
}

Status Optimizer::Step(const std::unordered_map<std::string, Tensor>& current,
                       std::unordered_map<std::string, Tensor>& next,
                       const std::unordered_map<std::string, const Tensor*>& grads,
                       std::optional<double> learning_rate) {
  const double lr = learning_rate.value_or(config_.learning_rate);
  BF_RETURN_IF_ERROR(CheckField(NonNegative(lr), "learning_rate", "finite and >= 0", lr));
  const std::vector<std::string> names = SortedNames(grads);
  for (const std::string& name : names) {
    BF_RETURN_IF_ERROR(CheckGradient(name, grads.at(name), current, next));
  }
  const double clip_scale = ClipScale(names, grads);
  std::map<std::string, Tensor> next_slots, first_zeros;
  const std::vector<Update> updates =
      PrepareUpdates(names, current, next, grads, next_slots, first_zeros);
  if (std::optional<NonFinite> bad = ApplyAll(updates, lr, clip_scale)) {
    const std::string& name = updates[bad->update].name;
    const std::string what =
        bad->output == 0 ? "parameter '" + name + "'"
                         : "optimizer state '" + SlotKinds(config_)[bad->output - 1] + "/" + name +
                               "' of parameter '" + name + "'";
    return InvalidArgumentError("update would make " + what + " non-finite; not applied");
  }
  for (auto& [key, tensor] : next_slots) slots_[key] = std::move(tensor);
  ++steps_;
  return Status::Ok();
}

double Optimizer::ClipScale(const std::vector<std::string>& names,
                            const std::unordered_map<std::string, const Tensor*>& grads) const {
  if (config_.clip_norm <= 0) return 1.0;
  NormAccumulator acc;
  for (const std::string& name : names) {
    const Tensor& g = *grads.at(name);
    g.dtype() == DType::kFloat64 ? AddSquares<double>(g, acc) : AddSquares<float>(g, acc);
  }
  const double scale = config_.clip_norm / (acc.Norm() + config_.clip_epsilon);
  return scale < 1.0 ? scale : 1.0;
}

std::vector<Optimizer::Update> Optimizer::PrepareUpdates(
    const std::vector<std::string>& names, const std::unordered_map<std::string, Tensor>& current,
    std::unordered_map<std::string, Tensor>& next,
    const std::unordered_map<std::string, const Tensor*>& grads,
    std::map<std::string, Tensor>& next_slots, std::map<std::string, Tensor>& first_zeros) const {
  const std::vector<std::string> kinds = SlotKinds(config_);
  std::vector<Update> updates;
  updates.reserve(names.size());
  for (const std::string& name : names) {
    const Tensor& param = current.at(name);
    Update u{name, &param, &next.at(name), grads.at(name), nullptr, nullptr, nullptr, nullptr};
    for (size_t k = 0; k < kinds.size(); ++k) {
      const std::string key = kinds[k] + "/" + name;
      auto old = slots_.find(key);
      Tensor& out = next_slots[key];
      out = Tensor::Uninitialized(param.dtype(), param.shape());
      const Tensor* in =
          old != slots_.end()
              ? &old->second
              : &first_zeros.try_emplace(key, param.dtype(), param.shape()).first->second;
      (k == 0 ? u.slot1_in : u.slot2_in) = in;
      (k == 0 ? u.slot1_out : u.slot2_out) = &out;
    }
    updates.push_back(u);
  }
  return updates;
}

std::optional<Optimizer::NonFinite> Optimizer::ApplyAll(const std::vector<Update>& updates,
                                                        double lr, double clip_scale) const {
  struct Slice {
    size_t update;
    int64_t begin, end;
  };
  std::vector<Slice> slices;
  int64_t total = 0;
  for (size_t k = 0; k < updates.size(); ++k) {
    const int64_t n = updates[k].param->num_elements();
    total += n;
    for (int64_t begin = 0; begin < n; begin += kSliceElements) {
      slices.push_back({k, begin, std::min(n, begin + kSliceElements)});
    }
  }
  std::vector<int> bad(slices.size(), -1);  // each slice writes only its own
  auto run = [&](size_t k) {
    const Slice& s = slices[k];
    bad[k] = Apply(updates[s.update], s.begin, s.end, lr, clip_scale);
  };
#if defined(BACKFLOW_TSAN)
  // ThreadSanitizer cannot see libtbb's (uninstrumented) hand-over of parallel_for's body and
  // reports the templates' own bookkeeping as races; the slices are disjoint by construction,
  // and the results do not depend on the thread count, so TSAN builds run them in order.
  constexpr bool kParallel = false;
#else
  constexpr bool kParallel = true;
#endif
  if (!kParallel || total <= kSliceElements) {
    for (size_t k = 0; k < slices.size(); ++k) run(k);  // under one slice of work: no hand-over
  } else {
    tbb::parallel_for(size_t{0}, slices.size(), run);
  }
  for (size_t k = 0; k < slices.size(); ++k) {
    if (bad[k] >= 0) return NonFinite{slices[k].update, bad[k]};
  }
  return std::nullopt;
}

int Optimizer::Apply(const Update& u, int64_t begin, int64_t end, double lr,
                     double clip_scale) const {
  const int64_t n = end - begin;
  auto update = [&](auto zero) {
    using T = decltype(zero);
    const StepFactors<T> f(config_, lr, clip_scale, steps_ + 1);
    const T* grad = u.grad->data<T>() + begin;
    const T* p_in = u.param->data<T>() + begin;
    T* p_out = u.next->data<T>() + begin;
    // Slots the optimizer does not keep are null: Adam has both, momentum the first alone.
    auto in = [&](const Tensor* t) { return t != nullptr ? t->data<T>() + begin : nullptr; };
    auto out = [&](Tensor* t) { return t != nullptr ? t->data<T>() + begin : nullptr; };
    T* s1 = out(u.slot1_out);
    T* s2 = out(u.slot2_out);
    const int64_t bad =
        IsAdam(config_.kind)
            ? AdamUpdate<T>(f, config_.kind == Kind::kAdamW, n, grad, p_in, p_out,
                            in(u.slot1_in), s1, in(u.slot2_in), s2)
            : SgdUpdate<T>(f, config_.nesterov, n, grad, p_in, p_out, in(u.slot1_in), s1);
    // Which output, looked for only when one went bad (a failing step is rare).
    return bad == 0 ? -1 : FirstNonFiniteOutput<T>({p_out, s1, s2}, n);
  };
  return u.param->dtype() == DType::kFloat64 ? update(0.0) : update(0.0f);
}

std::unordered_map<std::string, Tensor> Optimizer::State() const {
  return std::unordered_map<std::string, Tensor>(slots_.begin(), slots_.end());
}

Status Optimizer::RestoreState(const std::unordered_map<std::string, Tensor>& state,
                               int64_t steps) {
  if (steps < 0) {
    return InvalidArgumentError("optimizer state: step count " + std::to_string(steps) +
                                " is negative");
  }
  const std::vector<std::string> kinds = SlotKinds(config_);
  for (const auto& [key, tensor] : state) {
    const size_t slash = key.find('/');
    const std::string kind = key.substr(0, slash);
    if (slash == std::string::npos || slash + 1 == key.size() ||
        std::find(kinds.begin(), kinds.end(), kind) == kinds.end() || !tensor.valid()) {
      return InvalidArgumentError("optimizer state: '" + key +
                                  "' is not a slot this optimizer keeps");
    }
    if (!IsAdam(config_.kind)) continue;
    // Adam's two moments are created together, so a checkpoint holds both or neither.
    const std::string partner = (kind == kAdamM ? kAdamV : kAdamM) + key.substr(slash);
    auto it = state.find(partner);
    if (it == state.end() || it->second.dtype() != tensor.dtype() ||
        it->second.shape() != tensor.shape()) {
      return InvalidArgumentError("optimizer state: '" + key + "' has no matching '" + partner +
                                  "'");
    }
  }
  slots_ = std::map<std::string, Tensor>(state.begin(), state.end());
  steps_ = steps;
  return Status::Ok();
}

}  // namespace backflow
