// The values a gradient check runs on (engine/api/gradcheck.h): the caller's, in float64, and
// the rest of what the loss needs drawn with the spec's seed. Internal to gradcheck.cc.
#ifndef BACKFLOW_ENGINE_API_GRADCHECK_VALUES_H_
#define BACKFLOW_ENGINE_API_GRADCHECK_VALUES_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/gradcheck.h"

namespace backflow::gradcheck_internal {

using ValueMap = std::unordered_map<std::string, Tensor>;

// Every placeholder, parameter and state `needed` marks, given (float ones converted to
// float64) or drawn as gradcheck.h says; *drawn gets the drawn names, sorted. InvalidArgument
// for a given name that cannot be fed or a placeholder that cannot be drawn.
StatusOr<ValueMap> CompleteValues(const Graph& graph, const std::vector<bool>& needed,
                                  const ValueMap& given, const GradCheckSpec& spec,
                                  std::vector<std::string>* drawn);

}  // namespace backflow::gradcheck_internal

#endif  // BACKFLOW_ENGINE_API_GRADCHECK_VALUES_H_
