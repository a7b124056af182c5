#include "tests/testing/gradient_checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "engine/api/gradcheck.h"
#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"

namespace backflow::testing {
namespace {

constexpr double kStep = 1e-6;

double Uniform(std::mt19937_64& rng) {
  // From the raw bits: identical on every platform.
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

Tensor RandomTensor(const Shape& shape, double low, double high, std::mt19937_64& rng) {
  Tensor t(DType::kFloat64, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    t.data<double>()[i] = low + (high - low) * Uniform(rng);
  }
  return t;
}

// Upstream weights of magnitude in [0.5, 1] and random sign: with weights near zero some
// gradient elements would be tiny, and the finite difference's absolute rounding error (about
// 1e-10 in L) would swamp the relative error measure.
Tensor UpstreamWeights(const Shape& shape, std::mt19937_64& rng) {
  Tensor t(DType::kFloat64, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const double magnitude = 0.5 + 0.5 * Uniform(rng);
    t.data<double>()[i] = (rng() & 1) ? magnitude : -magnitude;
  }
  return t;
}

std::string InputName(size_t i) { return "x" + std::to_string(i); }

DType InputDType(const GateCase& c, size_t i) {
  return i < c.dtypes.size() ? c.dtypes[i] : DType::kFloat64;
}

// L = sum(op(x...) * R): one graph holding the gate under test.
struct CheckGraph {
  std::shared_ptr<Graph> graph = std::make_shared<Graph>(BuiltinGates());
  std::vector<ValueId> inputs;
  ValueId loss = kNoId;
};

StatusOr<CheckGraph> BuildCheckGraph(const GateCase& c, std::mt19937_64& rng) {
  CheckGraph g;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    BF_ASSIGN_OR_RETURN(ValueId x,
                        g.graph->AddPlaceholder(InputName(i), c.shapes[i], InputDType(c, i)));
    g.inputs.push_back(x);
  }
  BF_ASSIGN_OR_RETURN(ValueId y, g.graph->AddNode("y", c.op, g.inputs, c.attrs));
  BF_ASSIGN_OR_RETURN(ValueId r, g.graph->AddConstant(
                                     "r", UpstreamWeights(g.graph->value(y).shape, rng)));
  BF_ASSIGN_OR_RETURN(ValueId p, g.graph->AddNode("p", "mul", {y, r}));
  BF_ASSIGN_OR_RETURN(g.loss, g.graph->AddNode("L", "sum", {p}));
  return g;
}

StatusOr<double> Loss(const Program& program, const FeedMap& feeds, ValueId loss,
                      const RunInfo& info) {
  const ValueId fetch[] = {loss};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program.Run(feeds, fetch, RunOptions{.info = info}));
  return out[0].at(0);
}

}  // namespace

void ExpectGradientsMatchFiniteDifferences(const GateCase& c) {
  std::mt19937_64 rng(c.seed);
  StatusOr<CheckGraph> built = BuildCheckGraph(c, rng);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  std::vector<int> wrt = c.wrt;
  if (wrt.empty()) {
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      if (!IsInteger(InputDType(c, i))) wrt.push_back(static_cast<int>(i));
    }
  }
  std::vector<ValueId> wrt_ids;
  for (int i : wrt) wrt_ids.push_back(built->inputs[static_cast<size_t>(i)]);
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*built->graph, built->loss, wrt_ids);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  Program program(built->graph);

  std::vector<Tensor> xs;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    xs.push_back(RandomTensor(c.shapes[i], c.low, c.high, rng));
    if (c.adjust) {
      for (int64_t j = 0; j < xs[i].num_elements(); ++j) {
        double& v = xs[i].data<double>()[j];
        v = c.adjust(static_cast<int>(i), v);
      }
    }
    xs[i] = xs[i].CastTo(InputDType(c, i));
  }
  FeedMap feeds;
  for (size_t i = 0; i < xs.size(); ++i) feeds[InputName(i)] = &xs[i];
  StatusOr<std::vector<Tensor>> analytic = program.Run(feeds, *grads, RunOptions{.info = c.info});
  ASSERT_TRUE(analytic.ok()) << analytic.status().ToString();

  for (size_t k = 0; k < wrt.size(); ++k) {
    Tensor& x = xs[static_cast<size_t>(wrt[k])];
    const Tensor& g = (*analytic)[k];
    ASSERT_EQ(g.shape(), x.shape()) << c.op << ": gradient of input " << wrt[k];
    for (int64_t j = 0; j < x.num_elements(); ++j) {
      // The finite difference of engine/api/gradcheck.h, the one the CheckGradients RPC takes.
      StatusOr<double> numeric = CentredDifference(
          &x.data<double>()[j], kStep, [&] { return Loss(program, feeds, built->loss, c.info); });
      ASSERT_TRUE(numeric.ok()) << numeric.status().ToString();
      EXPECT_LE(backflow::RelativeError(g.at(j), *numeric), c.tolerance)
          << c.op << ": d/d(input " << wrt[k] << ")[" << j << "] analytic " << g.at(j)
          << " numeric " << *numeric << " at x = " << x.at(j);
    }
  }
}

StatusOr<Tensor> RunGate(const std::string& op, const std::vector<Tensor>& inputs,
                         const Attributes& attrs, const RunInfo& info) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  std::vector<ValueId> ids;
  FeedMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    BF_ASSIGN_OR_RETURN(ValueId x, graph->AddPlaceholder(InputName(i), inputs[i].shape(),
                                                         inputs[i].dtype()));
    ids.push_back(x);
    feeds[InputName(i)] = &inputs[i];
  }
  BF_ASSIGN_OR_RETURN(ValueId y, graph->AddNode("y", op, ids, attrs));
  Program program(graph);
  const ValueId fetch[] = {y};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program.Run(feeds, fetch, RunOptions{.info = info}));
  return std::move(out[0]);
}

Tensor T64(Shape shape, std::vector<double> values) {
  return Tensor::FromValues(DType::kFloat64, std::move(shape), values);
}

}  // namespace backflow::testing
