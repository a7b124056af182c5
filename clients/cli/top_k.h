// `backflow infer --top-k K`: the K most likely classes of each row of a classifier's output, with
// softmax probabilities, as a person reads them ("1. 0.9127 class 9 (Ankle boot)").
#ifndef BACKFLOW_CLIENTS_CLI_TOP_K_H_
#define BACKFLOW_CLIENTS_CLI_TOP_K_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow::cli {

struct RankedClass {
  int64_t index = 0;
  double probability = 0;
};

// For each row of `scores` ([N, C] or a single [C] row), the `k` classes with the largest
// softmax(row) in descending order (ties: the lower index first); k is capped at C. The softmax is
// taken in float64 with the row's maximum subtracted, so large logits do not overflow.
// InvalidArgument when `scores` is not rank 1 or 2, has no classes, or holds NaN.
StatusOr<std::vector<std::vector<RankedClass>>> TopK(const Tensor& scores, int64_t k);

// Class names for --labels FILE: one per line, line i naming class i; blank lines are kept as
// unnamed classes and a trailing newline ends the list. NotFound/InvalidArgument with the path.
StatusOr<std::vector<std::string>> ReadLabels(const std::string& path);

// The text form: for each row "row R:" and then "  1. 0.912700  class 9 (Ankle boot)" lines.
std::string FormatTopK(const std::string& output, const std::vector<std::vector<RankedClass>>& rows,
                       const std::vector<std::string>& labels);

// [[{"class": 9, "probability": 0.9127, "label": "Ankle boot"}, ...], ...] ("label" only when
// `labels` names the class).
nlohmann::json TopKJson(const std::vector<std::vector<RankedClass>>& rows,
                        const std::vector<std::string>& labels);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_TOP_K_H_
