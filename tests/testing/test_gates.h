// Gates that exist only in tests, to probe the executor: they block, throw, fail or count.
#ifndef BACKFLOW_TESTS_TESTING_TEST_GATES_H_
#define BACKFLOW_TESTS_TESTING_TEST_GATES_H_

#include <atomic>
#include <memory>

#include "engine/gates/builtin.h"

namespace backflow::testing {

// Shared by the probe gates of one registry.
struct Probe {
  std::atomic<int> runs{0};  // kernels of "count", "rendezvous" and "cancel" that ran
  std::atomic<int> arrived{0};  // "rendezvous" kernels that have started
  std::atomic<int> met{0};  // "rendezvous" kernels that saw both arrive in time
  std::atomic<bool> cancel{false};  // set by "cancel"
};

// The built-in gates plus, each y = x with dL/dx = dy where differentiable:
//   count       counts its runs
//   rendezvous  waits (at most 5 s) until two rendezvous kernels have started: proof that two
//               independent branches ran at the same time
//   cancel      sets probe->cancel
//   throw       throws std::runtime_error("boom")
//   fail        returns InvalidArgument("bad value")
//   opaque      no gradient (differentiable() is false)
std::unique_ptr<GateRegistry> MakeProbeRegistry(std::shared_ptr<Probe> probe);

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_TEST_GATES_H_
