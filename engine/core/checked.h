// Checked arithmetic on int64 values a client chose (dimensions, attributes, known integers of an
// imported model): each returns nullopt where the exact result does not fit in int64, so callers
// can refuse the input with an error that names it instead of computing with a wrapped value
// (undefined behaviour). Estimates that may saturate instead use engine/core/saturating.h.
#ifndef BACKFLOW_ENGINE_CORE_CHECKED_H_
#define BACKFLOW_ENGINE_CORE_CHECKED_H_

#include <cstdint>
#include <optional>
#include <span>

namespace backflow {

inline std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> CheckedSub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The exact product of `values` (1 for none), or nullopt if it does not fit. A zero anywhere
// makes the product 0, whatever the other factors.
inline std::optional<int64_t> CheckedProduct(std::span<const int64_t> values) {
  int64_t product = 1;
  bool overflow = false;
  for (int64_t v : values) {
    if (v == 0) return 0;
    overflow = overflow || __builtin_mul_overflow(product, v, &product);
  }
  if (overflow) return std::nullopt;
  return product;
}

// The product of `values` with zeros counted as 1, or nullopt if it does not fit: the bound on
// every partial product of a shape's dimensions (its strides), whether or not it has elements.
inline std::optional<int64_t> CheckedExtent(std::span<const int64_t> values) {
  int64_t product = 1;
  for (int64_t v : values) {
    if (v != 0 && __builtin_mul_overflow(product, v, &product)) return std::nullopt;
  }
  return product;
}

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_CORE_CHECKED_H_
