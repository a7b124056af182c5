// A run's profile (Note [Run profiles] in engine/exec/run_profile.h) on the wire: what
// TrainStep, ComputeGradients, Infer and Evaluate answer with when a request sets `profile`.
#ifndef BACKFLOW_SERVER_RUN_PROFILE_PROTO_H_
#define BACKFLOW_SERVER_RUN_PROFILE_PROTO_H_

#include <cstdint>

#include "backflow/v1/service.pb.h"
#include "engine/exec/program.h"
#include "engine/ir/graph.h"

namespace backflow::server {

// `run`, recording into `*profile` when `wanted`.
RunOptions WithProfile(const RunOptions& run, bool wanted, RunProfile* profile);

void ProfileToProto(const RunProfile& profile, v1::RunProfile* wire);

// At least the encoded size of any profile of a run of `graph` (each of its nodes, and the
// optimizer): a TrainStep counts it in its answer's size before it applies the step.
int64_t ProfileBytesBound(const Graph& graph);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_RUN_PROFILE_PROTO_H_
