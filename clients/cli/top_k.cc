// backflow infer --top-k: softmax and ranking of classifier outputs (top_k.h).
#include "clients/cli/top_k.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

namespace backflow::cli {
namespace {

// softmax(row) in float64: exp(x - max) / sum, so a logit of 1e4 does not overflow.
std::vector<double> Softmax(const double* row, int64_t classes) {
  const double largest = *std::max_element(row, row + classes);
  std::vector<double> probabilities(static_cast<size_t>(classes));
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c) {
    probabilities[static_cast<size_t>(c)] = std::exp(row[c] - largest);
    sum += probabilities[static_cast<size_t>(c)];
  }
  for (double& p : probabilities) p /= sum;
  return probabilities;
}

std::vector<RankedClass> RankRow(const double* row, int64_t classes, int64_t k) {
  const std::vector<double> probabilities = Softmax(row, classes);
  std::vector<int64_t> order(static_cast<size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  const auto keep = order.begin() + std::min(k, classes);
  std::partial_sort(order.begin(), keep, order.end(), [&](int64_t a, int64_t b) {
    const double pa = probabilities[static_cast<size_t>(a)];
    const double pb = probabilities[static_cast<size_t>(b)];
    return pa != pb ? pa > pb : a < b;
  });
  std::vector<RankedClass> ranked;
  for (auto it = order.begin(); it != keep; ++it) {
    ranked.push_back({*it, probabilities[static_cast<size_t>(*it)]});
  }
  return ranked;
}

const std::string* LabelOf(const std::vector<std::string>& labels, int64_t index) {
  if (index < 0 || static_cast<size_t>(index) >= labels.size()) return nullptr;
  const std::string& label = labels[static_cast<size_t>(index)];
  return label.empty() ? nullptr : &label;
}

}  // namespace

StatusOr<std::vector<std::vector<RankedClass>>> TopK(const Tensor& scores, int64_t k) {
  const Shape& shape = scores.shape();
  if (shape.rank() != 1 && shape.rank() != 2) {
    return InvalidArgumentError(
        "--top-k needs scores of shape [N, classes] or [classes], not rank " +
        std::to_string(shape.rank()));
  }
  const int64_t classes = shape.dim(shape.rank() - 1);
  const int64_t rows = shape.rank() == 2 ? shape.dim(0) : 1;
  if (classes < 1) return InvalidArgumentError("--top-k needs at least one class");
  const std::vector<double> values = scores.ToDoubles();
  for (double value : values) {
    if (std::isnan(value)) return InvalidArgumentError("--top-k: the scores hold NaN");
  }
  std::vector<std::vector<RankedClass>> ranked;
  for (int64_t r = 0; r < rows; ++r) {
    ranked.push_back(RankRow(values.data() + r * classes, classes, k));
  }
  return ranked;
}

StatusOr<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("--labels " + path + ": cannot open it");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  if (in.bad()) return InvalidArgumentError("--labels " + path + ": read error");
  return labels;
}

std::string FormatTopK(const std::string& output, const std::vector<std::vector<RankedClass>>& rows,
                       const std::vector<std::string>& labels) {
  std::string text;
  char line[96];
  for (size_t r = 0; r < rows.size(); ++r) {
    text += output + " row " + std::to_string(r) + ":\n";
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const RankedClass& ranked = rows[r][i];
      std::snprintf(line, sizeof line, "  %zu. %.6f  class %lld", i + 1, ranked.probability,
                    static_cast<long long>(ranked.index));
      text += line;
      if (const std::string* label = LabelOf(labels, ranked.index)) text += " (" + *label + ")";
      text += "\n";
    }
  }
  return text;
}

nlohmann::json TopKJson(const std::vector<std::vector<RankedClass>>& rows,
                        const std::vector<std::string>& labels) {
  nlohmann::json json = nlohmann::json::array();
  for (const std::vector<RankedClass>& row : rows) {
    nlohmann::json ranked = nlohmann::json::array();
    for (const RankedClass& entry : row) {
      nlohmann::json item = {{"class", entry.index}, {"probability", entry.probability}};
      if (const std::string* label = LabelOf(labels, entry.index)) item["label"] = *label;
      ranked.push_back(std::move(item));
    }
    json.push_back(std::move(ranked));
  }
  return json;
}

}  // namespace backflow::cli
