// The optimizer's elementwise update loops (engine/optim/optimizer.h gives the formulas), for
// optimizer.cc alone: one slice of one parameter at a time, with the non-finite count of Note
// [Non-finite updates].
#ifndef BACKFLOW_ENGINE_OPTIM_UPDATE_KERNELS_H_
#define BACKFLOW_ENGINE_OPTIM_UPDATE_KERNELS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "engine/core/tensor.h"
#include "engine/optim/optimizer.h"

namespace backflow::update_kernels {

// The factors one step applies, rounded once to the parameter's dtype.
template <typename T>
struct StepFactors {
  StepFactors(const OptimizerConfig& c, double lr, double clip_scale, int64_t step)
      : clip(clip_scale != 1.0),
        clip_scale(static_cast<T>(clip_scale)),
        lr(static_cast<T>(lr)),
        weight_decay(static_cast<T>(c.weight_decay)),
        momentum(static_cast<T>(c.momentum)),
        beta1(static_cast<T>(c.beta1)),
        one_minus_beta1(static_cast<T>(1 - c.beta1)),
        beta2(static_cast<T>(c.beta2)),
        one_minus_beta2(static_cast<T>(1 - c.beta2)),
        epsilon(static_cast<T>(c.epsilon)),
        step_size(static_cast<T>(lr / (1 - std::pow(c.beta1, static_cast<double>(step))))),
        bias2_sqrt(static_cast<T>(std::sqrt(1 - std::pow(c.beta2, static_cast<double>(step))))),
        decoupled_decay(static_cast<T>(1 - lr * c.weight_decay)) {}
  bool clip;
  T clip_scale, lr, weight_decay, momentum, beta1, one_minus_beta1, beta2, one_minus_beta2, epsilon,
      step_size, bias2_sqrt, decoupled_decay;
};

// 1 if x is a NaN or an infinity (all exponent bits set), else 0: integer operations, so a loop
// that sums it still vectorises.
template <typename T>
int NonFinite(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<int32_t>(std::bit_cast<uint32_t>(x) & 0x7fffffffu) > 0x7f7fffff;
  } else {
    return static_cast<int64_t>(std::bit_cast<uint64_t>(x) & 0x7fffffffffffffffull) >
           0x7fefffffffffffffll;
  }
}

// Elements [0, n) of one parameter: reads p_in, writes p_out, and likewise the slots from *_in
// to *_out; no two of the arrays overlap (__restrict lets the loop vectorise without run-time
// overlap checks).
// v: the momentum buffer, null when momentum is 0. Returns the number of elements where an
// output went non-finite (Note [Non-finite updates]).
template <typename T>
int64_t SgdUpdate(const StepFactors<T>& f, bool nesterov, int64_t n, const T* __restrict grad,
                  const T* __restrict p_in, T* __restrict p_out, const T* __restrict v_in,
                  T* __restrict v_out) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    T g = f.clip ? grad[i] * f.clip_scale : grad[i];
    const T p = p_in[i];
    if (f.weight_decay != T(0)) g += f.weight_decay * p;
    if (v_in != nullptr) {
      const T v = f.momentum * v_in[i] + g;
      v_out[i] = v;
      bad += NonFinite(v);
      g = nesterov ? g + f.momentum * v : v;
    }
    const T next = p - f.lr * g;
    p_out[i] = next;
    bad += NonFinite(next);
  }
  return bad;
}

template <typename T>
int64_t AdamUpdate(const StepFactors<T>& f, bool decoupled, int64_t n, const T* __restrict grad,
                   const T* __restrict p_in, T* __restrict p_out, const T* __restrict m_in,
                   T* __restrict m_out, const T* __restrict v_in, T* __restrict v_out) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    T g = f.clip ? grad[i] * f.clip_scale : grad[i];
    T p = p_in[i];
    if (decoupled) {
      p *= f.decoupled_decay;
    } else if (f.weight_decay != T(0)) {
      g += f.weight_decay * p;
    }
    const T m = f.beta1 * m_in[i] + f.one_minus_beta1 * g;
    const T v = f.beta2 * v_in[i] + f.one_minus_beta2 * g * g;
    m_out[i] = m;
    v_out[i] = v;
    const T next = p - f.step_size * m / (std::sqrt(v) / f.bias2_sqrt + f.epsilon);
    p_out[i] = next;
    bad += NonFinite(m) + NonFinite(v) + NonFinite(next);
  }
  return bad;
}

// Note [Non-finite updates]
// An update that overflows (a learning rate of 1e300 in a float32 model, a gradient squared past
// float32's range in Adam's second moment) must not reach the model: a NaN, once published, is
// in every later step, in checkpoints, and in what Infer answers. So a step is all or nothing.
// The next parameter values go to the next snapshot's fresh tensors (Trainer::Step) and the
// slots' next values to fresh tensors too (from the buffer cache, so no zero-fill and after the
// first steps no page faults); the update's loop counts the NaNs and infinities it writes (integer
// compares on the values' bits, which vectorise with the arithmetic), and the new slots replace
// the old only if no slice counted one. A failed step leaves the optimizer's slots and count, and
// the caller's current values, as they were. What the check and the fresh slots cost is in the
// commit that added them, measured with bench/optimizer_bench.cc.

// The index of the first of `outputs` holding a non-finite element in [0, n), or -1.
template <typename T>
int FirstNonFiniteOutput(std::initializer_list<const T*> outputs, int64_t n) {
  int k = 0;
  for (const T* out : outputs) {
    if (out != nullptr && FirstNonFinite(out, n) >= 0) return k;
    ++k;
  }
  return -1;
}

}  // namespace backflow::update_kernels

#endif  // BACKFLOW_ENGINE_OPTIM_UPDATE_KERNELS_H_
