#include "engine/api/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "engine/api/gradcheck_values.h"
#include "engine/autodiff/autodiff.h"

namespace backflow {
namespace {

using gradcheck_internal::ValueMap;

std::string Quote(const std::string& name) { return "'" + name + "'"; }

Status CheckSpec(const GradCheckSpec& spec) {
  auto bad = [](const std::string& what) { return InvalidArgumentError(what); };
  if (!(spec.epsilon > 0.0) || !std::isfinite(spec.epsilon)) {
    return bad("epsilon " + std::to_string(spec.epsilon) + " must be positive and finite");
  }
  if (!(spec.tolerance >= 0.0)) return bad("tolerance must be >= 0");
  if (!(spec.abs_tolerance >= 0.0)) return bad("abs_tolerance must be >= 0");
  if (spec.max_elements_per_tensor < 1) return bad("max_elements_per_tensor must be >= 1");
  if (spec.worst_k < 0) return bad("worst_k must be >= 0");
  if (spec.batch < 1) return bad("batch must be >= 1");
  return Status::Ok();
}

// spec.wrt's values, or every parameter.
StatusOr<std::vector<ValueId>> ResolveWrt(const Graph& graph, const GradCheckSpec& spec) {
  if (spec.wrt.empty()) return graph.ValuesOfKind(ValueKind::kParameter);
  std::vector<ValueId> ids;
  for (const std::string& name : spec.wrt) {
    std::optional<ValueId> id = graph.Find(name);
    if (!id) return InvalidArgumentError("wrt " + Quote(name) + " is not in the graph");
    const Value& value = graph.value(*id);
    const bool checkable = value.kind == ValueKind::kParameter ||
                           (value.kind == ValueKind::kPlaceholder && !IsInteger(value.dtype));
    if (!checkable) {
      return InvalidArgumentError("wrt " + Quote(name) + " is " +
                                  (IsInteger(value.dtype)
                                       ? std::string("an integer placeholder")
                                       : "a " + std::string(ValueKindName(value.kind))) +
                                  ": only parameters and float placeholders can be checked");
    }
    ids.push_back(*id);
  }
  return ids;
}

// Which elements of a tensor of `total` to check: all, or a sorted sample drawn from `rng`.
std::vector<int64_t> ChooseElements(int64_t total, int64_t max, std::mt19937_64& rng) {
  std::vector<int64_t> all(static_cast<size_t>(total));
  std::iota(all.begin(), all.end(), 0);
  if (total <= max) return all;
  for (int64_t i = 0; i < max; ++i) {  // a partial Fisher-Yates shuffle
    const auto j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(total - i));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(j)]);
  }
  all.resize(static_cast<size_t>(max));
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<int64_t> Position(const Shape& shape, int64_t index) {
  std::vector<int64_t> position(static_cast<size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    position[static_cast<size_t>(d)] = index % shape.dim(d);
    index /= shape.dim(d);
  }
  return position;
}

// One program holding the forward and the backward, and its feeds.
struct CheckRun {
  std::unique_ptr<Program> program;
  ValueMap values;
  FeedMap feeds;
  ValueId loss = kNoId;
  RunOptions options;

  StatusOr<double> Loss() const {
    const ValueId fetch[] = {loss};
    BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program->Run(feeds, fetch, options));
    return out[0].at(0);
  }
};

StatusOr<GradCheckTensor> CheckTensor(CheckRun& run, const std::string& name,
                                      const Tensor& analytic, const GradCheckSpec& spec,
                                      std::mt19937_64& rng) {
  Tensor& x = run.values.at(name);
  GradCheckTensor report{.name = name, .shape = x.shape(), .total = x.num_elements()};
  std::vector<GradCheckElement> elements;
  for (int64_t i : ChooseElements(x.num_elements(), spec.max_elements_per_tensor, rng)) {
    BF_ASSIGN_OR_RETURN(double numeric, CentredDifference(&x.data<double>()[i], spec.epsilon,
                                                          [&] { return run.Loss(); }));
    GradCheckElement e{.index = i,
                       .position = Position(x.shape(), i),
                       .analytic = analytic.at(i),
                       .numeric = numeric};
    e.abs_error = std::abs(e.analytic - e.numeric);
    e.relative_error = RelativeError(e.analytic, e.numeric);
    report.max_abs_error = std::max(report.max_abs_error, e.abs_error);
    report.max_relative_error = std::max(report.max_relative_error, e.relative_error);
    const bool pass = e.relative_error <= spec.tolerance || e.abs_error <= spec.abs_tolerance;
    report.ok = report.ok && pass;
    elements.push_back(std::move(e));
  }
  report.checked = static_cast<int64_t>(elements.size());
  std::stable_sort(elements.begin(), elements.end(), [](const auto& a, const auto& b) {
    return a.relative_error > b.relative_error ||
           (a.relative_error == b.relative_error && a.abs_error > b.abs_error);
  });
  elements.resize(std::min(elements.size(), static_cast<size_t>(spec.worst_k)));
  report.worst = std::move(elements);
  return report;
}

Status CheckBudget(const ValueMap& values, const Graph& graph, const std::vector<ValueId>& wrt,
                   const GradCheckSpec& spec, int64_t* evaluations) {
  *evaluations = 1;
  for (ValueId id : wrt) {
    const int64_t n = values.at(graph.value(id).name).num_elements();
    *evaluations += 2 * std::min(n, spec.max_elements_per_tensor);
  }
  if (*evaluations > spec.max_evaluations) {
    return ResourceExhaustedError(
        "the check needs " + std::to_string(*evaluations) + " forward runs, over the limit of " +
        std::to_string(spec.max_evaluations) + ": check fewer elements per tensor or fewer wrt");
  }
  return Status::Ok();
}

}  // namespace

double RelativeError(double a, double n) {
  const double scale = std::max(std::abs(a), std::abs(n));
  return scale == 0.0 ? 0.0 : std::abs(a - n) / scale;
}

StatusOr<double> CentredDifference(double* x, double h,
                                   const std::function<StatusOr<double>()>& loss) {
  const double saved = *x;
  *x = saved + h;
  StatusOr<double> up = loss();
  *x = saved - h;
  StatusOr<double> down = up.ok() ? loss() : up;
  *x = saved;
  BF_RETURN_IF_ERROR(up.status());
  BF_RETURN_IF_ERROR(down.status());
  return (*up - *down) / (2 * h);
}

StatusOr<GradCheckReport> CheckGradients(Graph graph, const ValueMap& values,
                                         const GradCheckSpec& spec, const RunOptions& run) {
  BF_RETURN_IF_ERROR(CheckSpec(spec));
  const ValueId loss = graph.loss();
  if (loss == kNoId) {
    return InvalidArgumentError("the graph has no loss: a gradient check differentiates the loss");
  }
  BF_ASSIGN_OR_RETURN(std::vector<ValueId> wrt, ResolveWrt(graph, spec));
  GradCheckReport report;
  CheckRun check{.loss = loss, .options = run};
  check.options.info = RunInfo{.training = true, .seed = spec.seed, .step = 0};
  std::vector<ValueId> needed_for = {loss};
  needed_for.insert(needed_for.end(), wrt.begin(), wrt.end());
  BF_ASSIGN_OR_RETURN(check.values,
                      gradcheck_internal::CompleteValues(graph, ValuesNeededFor(graph, needed_for),
                                                         values, spec, &report.drawn));
  BF_RETURN_IF_ERROR(CheckBudget(check.values, graph, wrt, spec, &report.evaluations));
  BF_ASSIGN_OR_RETURN(std::vector<ValueId> grads, AppendBackward(graph, loss, wrt));
  std::vector<std::string> names;
  for (ValueId id : wrt) names.push_back(graph.value(id).name);
  check.program = std::make_unique<Program>(std::make_shared<const Graph>(std::move(graph)));
  for (auto& [name, tensor] : check.values) check.feeds[name] = &tensor;

  std::vector<ValueId> fetches = {loss};
  fetches.insert(fetches.end(), grads.begin(), grads.end());
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> analytic,
                      check.program->Run(check.feeds, fetches, check.options));
  report.loss = analytic[0].at(0);
  std::mt19937_64 rng(spec.seed);
  for (size_t k = 0; k < names.size(); ++k) {
    BF_ASSIGN_OR_RETURN(GradCheckTensor t,
                        CheckTensor(check, names[k], analytic[k + 1], spec, rng));
    report.ok = report.ok && t.ok;
    report.tensors.push_back(std::move(t));
  }
  return report;
}

}  // namespace backflow
