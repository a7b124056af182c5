// Optimizer: turns gradients into parameter updates (SGD with momentum, Adam, AdamW).
//
// The update rules follow PyTorch's torch.optim (dampening 0, no amsgrad), with g the gradient
// after clipping, lr the step's learning rate, wd the weight decay, t the step number from 1:
//
//   SGD    g += wd * p;  v = momentum * v + g  (v starts at 0)
//          update = nesterov ? g + momentum * v : (momentum > 0 ? v : g);  p -= lr * update
//   Adam   g += wd * p;  m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//          p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
//   AdamW  p *= 1 - lr * wd, i.e. p -= lr * wd * p (decoupled: the decay never enters m or v),
//          then Adam with wd = 0
//
// Clipping (clip_norm > 0) scales every gradient of a step by clip_norm / (||g|| + clip_epsilon)
// when that factor is below 1, ||g|| being the global L2 norm over all of them: the formula of
// PyTorch's torch.nn.utils.clip_grad_norm_, whose epsilon 1e-6 is the default, so that a clipped
// step matches PyTorch's (the difference without it is a few 1e-7 of the update); clip_epsilon 0
// scales by exactly clip_norm / ||g||.
//
// Arithmetic runs in each parameter's dtype, parameters in name order, elements in row-major
// order, so a step is bitwise reproducible. Scalar factors (lr / (1 - beta1^t), ...) are
// computed in double and then rounded to the dtype once. Adam's t is the optimizer's step
// count, shared by all parameters; a parameter first updated at a later step starts from zero
// moments but with that count (a Trainer supplies every parameter in every step, where this is
// exactly PyTorch's per-parameter count).
//
// A step either applies whole or not at all: one that would make any updated value or optimizer
// state non-finite (an overflowing learning rate, say) changes nothing (Note [Non-finite
// updates] in optimizer.cc).
//
// Thread safety: none. One Step (or State/RestoreState) at a time.
#ifndef BACKFLOW_ENGINE_OPTIM_OPTIMIZER_H_
#define BACKFLOW_ENGINE_OPTIM_OPTIMIZER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow {

struct OptimizerConfig {
  enum class Kind { kSgd, kAdam, kAdamW };
  Kind kind = Kind::kSgd;
  double learning_rate = 0.01;
  double momentum = 0.0;      // SGD
  bool nesterov = false;      // SGD, needs momentum > 0
  double weight_decay = 0.0;  // SGD and Adam: L2 added to the gradient; AdamW: decoupled
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // Adam, AdamW
  double clip_norm = 0.0;  // > 0: scale all gradients so their global L2 norm is at most this
  double clip_epsilon = 1e-6;  // added to the norm when clipping, as clip_grad_norm_ does
};

// OK, or InvalidArgument naming the first bad field: learning_rate, weight_decay, clip_norm and
// clip_epsilon must be finite and >= 0; momentum in [0, 1) (and 0 for Adam and AdamW, which use beta1);
// nesterov only with SGD and momentum > 0; beta1 and beta2 in [0, 1); epsilon finite and > 0.
Status ValidateOptimizerConfig(const OptimizerConfig& config);
// OK, or InvalidArgument naming the setting, when a valid config's factors would not survive
// rounding to `dtype` (float32: learning_rate or weight_decay 1e300 become infinity, epsilon
// 1e-50 becomes 0, AdamW's 1 - learning_rate * weight_decay overflows): every step would then
// be refused as non-finite, so a model is refused at creation instead.
Status ValidateOptimizerForDType(const OptimizerConfig& config, DType dtype);

class Optimizer {
 public:
  // InvalidArgument if the config is invalid (see ValidateOptimizerConfig).
  static StatusOr<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config);

  // One update of every parameter in `grads` (all in `params`, same shape and dtype).
  // learning_rate overrides the configured rate for this step (a schedule). Not thread-safe:
  // one step at a time. On error nothing is modified: InvalidArgument naming the parameter for a
  // gradient without a parameter, a null gradient, a shape or dtype mismatch (also against
  // restored state), or a non-finite gradient element; InvalidArgument for a bad learning_rate;
  // InvalidArgument "update would make parameter 'NAME' non-finite; not applied" (or its
  // optimizer state 'KIND/NAME') when an updated value would be a NaN or an infinity.
  Status Step(std::unordered_map<std::string, Tensor>& params,
              const std::unordered_map<std::string, const Tensor*>& grads,
              std::optional<double> learning_rate = std::nullopt);
  // The same, reading the values in `current` and writing the updated ones to `next`, which
  // must hold a tensor of the same shape and dtype for every parameter in `grads` (its
  // contents are overwritten; it must not be `current`: on error, `next` may be partly written,
  // while `current` and the optimizer's state are as they were). Runs on every core (Note
  // [Parallel optimizer step] in optimizer.cc); results are bitwise the same as the in-place step.
  Status Step(const std::unordered_map<std::string, Tensor>& current,
              std::unordered_map<std::string, Tensor>& next,
              const std::unordered_map<std::string, const Tensor*>& grads,
              std::optional<double> learning_rate = std::nullopt);

  int64_t steps() const { return steps_; }
  const OptimizerConfig& config() const { return config_; }

  // Everything a checkpoint must save to resume bit-exactly: named slot tensors
  // ("momentum/W1", "adam_m/W1", "adam_v/W1") plus the step count.
  std::unordered_map<std::string, Tensor> State() const;
  // Replaces the state with a copy of `state` (as State() returned it) and the step count.
  // InvalidArgument, changing nothing, for a negative count, a slot this kind of optimizer does
  // not keep, or an Adam moment without its partner of the same shape and dtype.
  Status RestoreState(const std::unordered_map<std::string, Tensor>& state, int64_t steps);

 private:
  explicit Optimizer(const OptimizerConfig& config) : config_(config) {}

  // One parameter's update: its tensors and slots (null where the optimizer keeps none), each
  // slot read from `*_in` and written to `*_out` (Note [Non-finite updates]).
  struct Update {
    std::string name;
    const Tensor* param;
    Tensor* next;
    const Tensor* grad;
    const Tensor* slot1_in;  // momentum, or Adam's first moment
    Tensor* slot1_out;
    const Tensor* slot2_in;  // Adam's second moment
    Tensor* slot2_out;
  };
  // Where an update went non-finite: which update, and in which of its outputs.
  struct NonFinite {
    size_t update;
    int output;  // 0: the parameter, 1: slot1, 2: slot2
  };

  // Checks one gradient against its parameter, its place in `next` and existing slots, before
  // anything changes.
  Status CheckGradient(const std::string& name, const Tensor* grad,
                       const std::unordered_map<std::string, Tensor>& params,
                       const std::unordered_map<std::string, Tensor>& next) const;
  // What this step's gradients are multiplied by: clip_norm / ||g|| (the global L2 norm over
  // the gradients of `names`, accumulated in that order) when clipping is on and ||g|| exceeds
  // clip_norm, 1 otherwise.
  double ClipScale(const std::vector<std::string>& names,
                   const std::unordered_map<std::string, const Tensor*>& grads) const;
  // One Update per checked parameter of `names`, in that order, with the slots' next values
  // in `next_slots` (fresh tensors; a slot used for the first time is read from zeros kept in
  // `first_zeros`). Runs before the parallel part: the maps are not thread-safe.
  std::vector<Update> PrepareUpdates(const std::vector<std::string>& names,
                                     const std::unordered_map<std::string, Tensor>& current,
                                     std::unordered_map<std::string, Tensor>& next,
                                     const std::unordered_map<std::string, const Tensor*>& grads,
                                     std::map<std::string, Tensor>& next_slots,
                                     std::map<std::string, Tensor>& first_zeros) const;
  // Applies every update, cut into slices run on every core (Note [Parallel optimizer step]);
  // the first output (in update order) that went non-finite, if any.
  std::optional<NonFinite> ApplyAll(const std::vector<Update>& updates, double lr,
                                    double clip_scale) const;
  // Updates elements [begin, end) of one checked parameter; which output (as in NonFinite)
  // holds a non-finite element there, or -1.
  int Apply(const Update& u, int64_t begin, int64_t end, double lr, double clip_scale) const;

  OptimizerConfig config_;
  int64_t steps_ = 0;
  std::map<std::string, Tensor> slots_;  // ordered: State() and updates visit it deterministically
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_OPTIM_OPTIMIZER_H_
