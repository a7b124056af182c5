// Saturating arithmetic on non-negative counts (elements, FLOPs): a result past INT64_MAX is
// INT64_MAX, so estimates for absurdly large graphs stay ordered instead of overflowing.
#ifndef BACKFLOW_ENGINE_CORE_SATURATING_H_
#define BACKFLOW_ENGINE_CORE_SATURATING_H_

#include <cstdint>
#include <limits>

namespace backflow {

inline constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();

inline int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kSaturated : r;
}

inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kSaturated : r;
}

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_CORE_SATURATING_H_
