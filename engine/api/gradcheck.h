// CheckGradients: compares the analytic gradients of a graph's loss (autodiff's backward, as a
// training step takes them) with centred finite differences, in float64, and reports the worst
// elements of each tensor: the computation behind the CheckGradients RPC
// (proto/backflow/v1/service.proto) and `backflow gradcheck`. A user debugging a graph sees
// which tensor's gradient disagrees, and where.
//
// Contract (every error is InvalidArgument naming the offending value, unless said otherwise):
//   graph      Must have a loss ("the graph has no loss: a gradient check differentiates the
//              loss"). Whatever dtype the caller meant, everything runs in float64.
//   values     As Evaluate's (engine/api/evaluate.h): placeholders, parameters and state, by
//              name; float values are converted to float64, integer ones kept. What the loss
//              needs and is not given is drawn with spec.seed: parameters and state from their
//              initializers; float placeholders uniformly from [-1, 1); integer placeholders
//              (labels, ids) uniformly from [0, n), where n is what their readers allow (the
//              classes of a loss, the rows of an embedding table). A placeholder whose range
//              cannot be told this way must be given ("placeholder 't' is integer and its range
//              is unknown: give it a value"). A drawn placeholder's batch dimension is that of
//              the given values, else spec.batch.
//   wrt        Empty: every parameter. Else parameters and float placeholders by name ("wrt
//              'z' is not in the graph", "wrt 'h' is a node: only parameters and float
//              placeholders can be checked").
//   run        Every run is in training mode with RunInfo{seed = spec.seed, step = 0}, so
//              dropout's masks are the same in the analytic and every perturbed run. CANCELLED
//              and DEADLINE_EXCEEDED as run says, checked between nodes of every run.
//   limits     1 + 2 * (elements checked) forward runs; more than spec.max_evaluations is
//              RESOURCE_EXHAUSTED, before anything runs; so is a drawn placeholder of more than
//              spec.max_tensor_elements elements (a large spec.batch).
//
// Per tensor, min(size, max_elements_per_tensor) elements are checked: all of a small tensor,
// else a sample drawn with spec.seed. Element i passes when |a - n| / max(|a|, |n|) (0 when both
// are 0) is at most spec.tolerance, or |a - n| is at most spec.abs_tolerance (the difference's
// own rounding error, about 1e-16 |L| / epsilon, swamps the relative error of tiny gradients).
// A tensor passes when all its checked elements do; the report when all tensors do.
//
// Thread safety: touches only its arguments; any number of calls may run at once.
#ifndef BACKFLOW_ENGINE_API_GRADCHECK_H_
#define BACKFLOW_ENGINE_API_GRADCHECK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "engine/ir/graph.h"

namespace backflow {

struct GradCheckSpec {
  std::vector<std::string> wrt;  // empty: every parameter
  uint64_t seed = 0;
  double epsilon = 1e-6;                 // the step h of (L(x + h) - L(x - h)) / 2h; > 0
  double tolerance = 1e-6;               // relative; >= 0
  double abs_tolerance = 1e-8;           // absolute; >= 0
  int64_t max_elements_per_tensor = 32;  // >= 1
  int64_t worst_k = 5;                   // elements reported per tensor; >= 0
  int64_t batch = 2;                // batch size of drawn placeholders when no value sets it; >= 1
  int64_t max_evaluations = 20000;  // forward runs in all
  int64_t max_tensor_elements = int64_t{1} << 26;  // in any one drawn placeholder
};

struct GradCheckElement {
  int64_t index = 0;              // flat, row-major
  std::vector<int64_t> position;  // the same as a multi-index
  double analytic = 0.0;
  double numeric = 0.0;
  double abs_error = 0.0;
  double relative_error = 0.0;
};

struct GradCheckTensor {
  std::string name;
  Shape shape;  // as run (the batch dimension resolved)
  int64_t checked = 0;
  int64_t total = 0;
  double max_relative_error = 0.0;
  double max_abs_error = 0.0;
  bool ok = true;
  std::vector<GradCheckElement> worst;  // by relative error, worst first
};

struct GradCheckReport {
  double loss = 0.0;                     // at the unperturbed values
  int64_t evaluations = 0;               // forward runs, the analytic one included
  std::vector<std::string> drawn;        // values drawn rather than given, sorted
  std::vector<GradCheckTensor> tensors;  // in wrt order
  bool ok = true;
};

StatusOr<GradCheckReport> CheckGradients(Graph graph,
                                         const std::unordered_map<std::string, Tensor>& values,
                                         const GradCheckSpec& spec, const RunOptions& run = {});

// The numeric core, shared with the gate tests' checker (tests/testing/gradient_checker.h).
// |a - n| / max(|a|, |n|), and 0 when both are 0.
double RelativeError(double a, double n);
// (L(x + h) - L(x - h)) / 2h: sets *x to each side, calls `loss`, and restores *x.
StatusOr<double> CentredDifference(double* x, double h,
                                   const std::function<StatusOr<double>()>& loss);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_GRADCHECK_H_
