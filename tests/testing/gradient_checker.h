// The one gradient checker every gate test uses.
//
// It builds a graph holding one gate applied to placeholders, takes L = sum(gate(x) * R) for a
// fixed random R (so every output element carries a distinct upstream gradient), appends the
// backward with autodiff, runs it in float64 through the executor, and compares each input's
// gradient with centred finite differences (L(x+h) - L(x-h)) / 2h, h = 1e-6, by the relative
// error |a - n| / max(|a|, |n|) (both zero passes), as ../shared/seeds/GOLDEN.md prescribes.
#ifndef BACKFLOW_TESTS_TESTING_GRADIENT_CHECKER_H_
#define BACKFLOW_TESTS_TESTING_GRADIENT_CHECKER_H_

#include <functional>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/attributes.h"
#include "engine/ir/run_info.h"

namespace backflow::testing {

struct GateCase {
  std::string op;
  std::vector<Shape> shapes;  // one per input, fully defined
  Attributes attrs;
  // Inputs are drawn uniformly from [low, high] (seeded, deterministic)...
  double low = -2.0;
  double high = 2.0;
  // ...then passed through `adjust(input_index, value)` if set: keep inputs away from kinks
  // (relu at 0, ties in max) or outside a domain (log of a negative).
  std::function<double(int, double)> adjust;
  // Per input: int32 or int64 makes it an integer placeholder (ids, labels), drawn and adjusted
  // as the others, then truncated to that dtype; such inputs are never checked. Default (empty,
  // or shorter than shapes): float64.
  std::vector<DType> dtypes;
  // Inputs to check (default: all).
  std::vector<int> wrt;
  double tolerance = 1e-7;
  unsigned seed = 1234;
  // Every run of the check (the analytic gradient and each finite difference) is in this mode,
  // training by default, as gradients are taken: dropout's mask, one function of (seed, step,
  // node), is then the same in all of them.
  RunInfo info{.training = true, .seed = 99, .step = 3};
};

// Runs the check and reports each mismatching element through GoogleTest (EXPECT failures).
void ExpectGradientsMatchFiniteDifferences(const GateCase& c);

// Forward only: the output of `op` applied to `inputs` (all of one dtype) with `attrs`.
StatusOr<Tensor> RunGate(const std::string& op, const std::vector<Tensor>& inputs,
                         const Attributes& attrs = {}, const RunInfo& info = {});

// A float64 tensor from values, for tests.
Tensor T64(Shape shape, std::vector<double> values);

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_GRADIENT_CHECKER_H_
