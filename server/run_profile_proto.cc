#include "server/run_profile_proto.h"

namespace backflow::server {
namespace {

v1::NodeProfile::Phase EncodePhase(ProfilePhase phase) {
  switch (phase) {
    case ProfilePhase::kForward:
      return v1::NodeProfile::PHASE_FORWARD;
    case ProfilePhase::kBackward:
      return v1::NodeProfile::PHASE_BACKWARD;
    case ProfilePhase::kOptimizer:
      return v1::NodeProfile::PHASE_OPTIMIZER;
  }
  return v1::NodeProfile::PHASE_UNSPECIFIED;
}

// A NodeProfile's fields besides its two strings, each at its largest: phase (2 bytes), four
// int64 (11 each), two int32 (11 each, as negative varints would be), the strings' tags and
// lengths (2 + 3 each), and the repeated field's own tag and length (1 + 3).
constexpr int64_t kNodeFixedBytes = 2 + 4 * 11 + 2 * 11 + 2 * 5 + 4;
// The optimizer's entry's strings, and RunProfile's own fields.
constexpr int64_t kOptimizerStringBytes = 16;
constexpr int64_t kProfileFixedBytes = 5 * 11 + 8;

}  // namespace

RunOptions WithProfile(const RunOptions& run, bool wanted, RunProfile* profile) {
  RunOptions profiled = run;
  if (wanted) profiled.profile = profile;
  return profiled;
}

void ProfileToProto(const RunProfile& profile, v1::RunProfile* wire) {
  wire->set_wall_ns(profile.wall_ns);
  wire->set_plan_ns(profile.plan_ns);
  wire->set_plan_compiled(profile.plan_compiled);
  wire->set_busy_ns(profile.BusyNanos());
  wire->set_padded_rows(profile.padded_rows > 0 ? profile.padded_rows : 0);
  for (const NodeProfile& node : profile.nodes) {
    v1::NodeProfile* out = wire->add_nodes();
    out->set_name(node.name);
    out->set_op(node.op);
    out->set_phase(EncodePhase(node.phase));
    out->set_start_ns(node.start_ns);
    out->set_duration_ns(node.duration_ns);
    out->set_wait_ns(node.wait_ns);
    out->set_output_bytes(node.output_bytes);
    out->set_onednn_primitives(node.onednn_primitives);
    out->set_cores(node.cores);
  }
}

int64_t ProfileBytesBound(const Graph& graph) {
  int64_t bytes = kProfileFixedBytes + kNodeFixedBytes + kOptimizerStringBytes;
  for (const Node& node : graph.nodes()) {
    bytes += kNodeFixedBytes + static_cast<int64_t>(node.name.size() + node.op.size());
  }
  return bytes;
}

}  // namespace backflow::server
