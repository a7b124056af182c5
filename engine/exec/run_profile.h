// RunProfile: where one run's time goes, node by node.
//
// Note [Run profiles]
// A caller that sets RunOptions::profile gets, for every node the run's plan executed, when it
// started and how long it took (from the run's start, on one steady clock), how much of that it
// waited for cores (CoreBudget), the bytes of the buffer it wrote, the cores it ran on and how
// many oneDNN primitives it executed (0: one of our own kernels). Each step writes only its own
// slot of the run's state, so profiling takes no lock and costs three clock reads per node; a run
// without a profile reads no clock. The Trainer adds its optimizer as one more entry and marks
// the nodes autodiff appended as backward. Nodes of independent branches overlap in time, so
// their durations may add up to more than the run; BusyNanos() is the time in which at least one
// node ran, and what it leaves of wall_ns is the run's own overhead (finding the plan, starting
// nodes, collecting the fetches).
#ifndef BACKFLOW_ENGINE_EXEC_RUN_PROFILE_H_
#define BACKFLOW_ENGINE_EXEC_RUN_PROFILE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace backflow {

enum class ProfilePhase { kForward, kBackward, kOptimizer };

struct NodeProfile {
  std::string name;  // the node's name; the optimizer's entry: "optimizer"
  std::string op;    // its gate; the optimizer's entry: the optimizer's kind ("adam")
  ProfilePhase phase = ProfilePhase::kForward;
  int node = -1;         // its id in the run's graph; -1 for the optimizer
  int64_t start_ns = 0;  // since RunProfile::start
  int64_t duration_ns = 0;
  int64_t wait_ns = 0;        // of duration_ns: waiting for cores
  int64_t output_bytes = 0;   // the buffer it wrote (the optimizer: the parameters it updated)
  int onednn_primitives = 0;  // oneDNN primitives it executed
  int cores = 1;
};

struct RunProfile {
  using Clock = std::chrono::steady_clock;

  // When the run began: set by the first of Program::Run and its caller to see it unset.
  Clock::time_point start{};
  int64_t wall_ns = 0;  // from start to the run's end (a training step's: after its optimizer)
  int64_t plan_ns = 0;  // finding the compiled plan in the cache, or compiling it
  bool plan_compiled = false;
  int64_t padded_rows = -1;        // an inference run computed on a padded batch of this many rows
  std::vector<NodeProfile> nodes;  // in the plan's (topological) order; the optimizer last

  // Sets `start` to now unless it is set already.
  void Begin() {
    if (start == Clock::time_point{}) start = Clock::now();
  }
  int64_t Since(Clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - start).count();
  }
  // wall_ns = now - start.
  void End() { wall_ns = Since(Clock::now()); }
  // The time in which at least one node ran: the union of the nodes' intervals.
  int64_t BusyNanos() const;
  // Marks the nodes with ids in [first, end) as backward.
  void MarkBackward(int first, int end);
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_RUN_PROFILE_H_
