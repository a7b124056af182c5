// Limits shared by the fuzz targets: small enough that no input can make a target allocate more
// than tens of megabytes or compute for long, so what a fuzzer reports is a crash, undefined
// behaviour or a hang in the code, not an input that the server's own limits let be big.
#ifndef BACKFLOW_FUZZ_FUZZ_LIMITS_H_
#define BACKFLOW_FUZZ_FUZZ_LIMITS_H_

#include <cstdint>

#include "engine/ir/import.h"

namespace backflow::fuzz {

inline constexpr int64_t kMaxNodes = 64;
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 16;

inline GraphLimits Limits() {
  GraphLimits limits;
  limits.max_nodes = kMaxNodes;
  limits.max_tensor_elements = kMaxTensorElements;
  limits.max_total_parameter_elements = 4 * kMaxTensorElements;
  return limits;
}

}  // namespace backflow::fuzz

#endif  // BACKFLOW_FUZZ_FUZZ_LIMITS_H_
