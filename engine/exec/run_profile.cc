#include "engine/exec/run_profile.h"

#include <algorithm>
#include <utility>

namespace backflow {

int64_t RunProfile::BusyNanos() const {
  std::vector<std::pair<int64_t, int64_t>> spans;
  spans.reserve(nodes.size());
  for (const NodeProfile& node : nodes) {
    spans.emplace_back(node.start_ns, node.start_ns + node.duration_ns);
  }
  std::sort(spans.begin(), spans.end());
  int64_t busy = 0;
  int64_t covered_to = INT64_MIN;
  for (const auto& [begin, end] : spans) {
    const int64_t from = std::max(begin, covered_to);
    if (end > from) busy += end - from;
    covered_to = std::max(covered_to, end);
  }
  return busy;
}

void RunProfile::MarkBackward(int first, int end) {
  for (NodeProfile& node : nodes) {
    if (node.node >= first && node.node < end) node.phase = ProfilePhase::kBackward;
  }
}

}  // namespace backflow
