#include "engine/exec/program.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <thread>

#include "engine/autodiff/autodiff.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"
#include "engine/runtime/core_budget.h"
#include "tests/testing/test_gates.h"

namespace backflow {
namespace {

using testing::MakeProbeRegistry;
using testing::Probe;

// A small network of elementwise gates, forward and backward:
//   h = tanh(x * a + b), L = mean(square(h - t)), gradients for a, b and x.
struct Net {
  std::shared_ptr<Graph> graph = std::make_shared<Graph>(BuiltinGates());
  std::vector<ValueId> fetches;  // L, dL/da, dL/db, dL/dx
};

Net BuildNet() {
  Net net;
  Graph& g = *net.graph;
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 16});
  const ValueId t = *g.AddPlaceholder("t", Shape{kBatchDim, 16});
  InitializerSpec normal{.kind = InitializerSpec::Kind::kNormal, .a = 0.0, .b = 1.0};
  const ValueId a = *g.AddParameter("a", Shape{16}, normal);
  const ValueId b = *g.AddParameter("b", Shape{16}, normal);
  const ValueId xa = *g.AddNode("xa", "mul", {x, a});
  const ValueId z = *g.AddNode("z", "add", {xa, b});
  const ValueId h = *g.AddNode("h", "tanh", {z});
  const ValueId d = *g.AddNode("d", "sub", {h, t});
  const ValueId sq = *g.AddNode("sq", "square", {d});
  const ValueId loss = *g.AddNode("L", "mean", {sq});
  g.set_loss(loss);
  const ValueId wrt[] = {a, b, x};
  std::vector<ValueId> grads = *AppendBackward(g, loss, wrt);
  net.fetches = {loss};
  net.fetches.insert(net.fetches.end(), grads.begin(), grads.end());
  return net;
}

Tensor Random(Shape shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double& e : v) e = u(rng);
  return Tensor::FromValues(DType::kFloat32, std::move(shape), v);
}

struct NetFeeds {
  Tensor x, t;
  std::unordered_map<std::string, Tensor> params;
  FeedMap feeds;
};

std::unique_ptr<NetFeeds> MakeFeeds(const Graph& graph, int64_t batch, unsigned seed) {
  auto f = std::make_unique<NetFeeds>();
  f->x = Random(Shape{batch, 16}, seed);
  f->t = Random(Shape{batch, 16}, seed + 1);
  f->params = *InitializeParameters(graph, DType::kFloat32, seed);
  f->feeds = {{"x", &f->x}, {"t", &f->t}};
  for (const auto& [name, tensor] : f->params) f->feeds[name] = &tensor;
  return f;
}

void ExpectBitwiseEqual(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(BitwiseEqual(a[i], b[i])) << "fetch " << i;
}

TEST(ProgramTest, SameSeedAndInputsGiveBitwiseIdenticalResults) {
  std::vector<std::vector<Tensor>> results;
  for (int trial = 0; trial < 3; ++trial) {
    Net net = BuildNet();  // a fresh graph, parameters and program each time
    auto feeds = MakeFeeds(*net.graph, 32, 99);
    Program program(net.graph);
    StatusOr<std::vector<Tensor>> out = program.Run(feeds->feeds, net.fetches);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    results.push_back(std::move(*out));
  }
  EXPECT_GT(results[0][0].at(0), 0.0);
  ExpectBitwiseEqual(results[0], results[1]);
  ExpectBitwiseEqual(results[0], results[2]);
}

TEST(ProgramTest, EightThreadsRunningOnePlanAgreeWithASerialRun) {
  Net net = BuildNet();
  Program program(net.graph);
  constexpr int kThreads = 8;
  constexpr int kIterations = 25;
  std::vector<std::unique_ptr<NetFeeds>> feeds;
  std::vector<std::vector<Tensor>> serial;
  for (int i = 0; i < kThreads; ++i) {
    feeds.push_back(MakeFeeds(*net.graph, 8, 1000 + static_cast<unsigned>(i)));
    serial.push_back(*program.Run(feeds.back()->feeds, net.fetches));
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kIterations; ++k) {
        StatusOr<std::vector<Tensor>> out = program.Run(feeds[i]->feeds, net.fetches);
        if (!out.ok()) {
          ++mismatches[i];
          continue;
        }
        for (size_t j = 0; j < out->size(); ++j) {
          if (!BitwiseEqual((*out)[j], serial[i][j])) ++mismatches[i];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(mismatches[i], 0) << "thread " << i;
  EXPECT_EQ(program.cache_stats().plans, 1u);  // one plan shared by every run
}

TEST(ProgramTest, PlansAreCachedPerFeedShapes) {
  Net net = BuildNet();
  Program program(net.graph);
  auto small = MakeFeeds(*net.graph, 4, 1);
  auto large = MakeFeeds(*net.graph, 16, 1);
  ASSERT_TRUE(program.Run(small->feeds, net.fetches).ok());
  ASSERT_TRUE(program.Run(small->feeds, net.fetches).ok());
  ASSERT_TRUE(program.Run(large->feeds, net.fetches).ok());
  Program::CacheStats stats = program.cache_stats();
  EXPECT_EQ(stats.plans, 2u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 2u);
}

TEST(ProgramTest, FetchingTheForwardOnlyRunsNoBackwardNode) {
  auto probe = std::make_shared<Probe>();
  auto registry = MakeProbeRegistry(probe);
  auto graph = std::make_shared<Graph>(*registry);
  const ValueId x = *graph->AddPlaceholder("x", Shape{});
  const ValueId c = *graph->AddNode("c", "count", {x});
  const ValueId y = *graph->AddNode("y", "square", {c});
  const ValueId wrt[] = {x};
  const ValueId dx = (*AppendBackward(*graph, y, wrt))[0];
  Program program(graph);
  Tensor three = Tensor::Scalar(DType::kFloat64, 3);
  const FeedMap feeds = {{"x", &three}};
  const ValueId forward[] = {y};
  EXPECT_EQ((*program.Run(feeds, forward))[0].at(0), 9.0);
  const ValueId backward[] = {dx};
  EXPECT_EQ((*program.Run(feeds, backward))[0].at(0), 6.0);
  EXPECT_EQ(probe->runs.load(), 2);  // once per run: the backward gates are separate nodes
  EXPECT_GT(graph->num_nodes(), 2);
}

// x [n] -> left, right (`op`) -> y = left + right, run once; returns y's first value and
// fills `info` with what the plan looked like.
double RunBranches(const std::string& op, int64_t n, const std::shared_ptr<Probe>& probe,
                   Program::PlanInfo* info) {
  auto registry = MakeProbeRegistry(probe);
  auto graph = std::make_shared<Graph>(*registry);
  const ValueId x = *graph->AddPlaceholder("x", Shape{n});
  const ValueId left = *graph->AddNode("left", op, {x});
  const ValueId right = *graph->AddNode("right", op, {x});
  const ValueId y = *graph->AddNode("y", "add", {left, right});
  Program program(graph);
  Tensor in = Tensor::FromValues(DType::kFloat32, Shape{n},
                                 std::vector<double>(static_cast<size_t>(n), 1.5));
  const ValueId fetch[] = {y};
  *info = *program.Explain({{"x", &in}}, fetch);
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &in}}, fetch);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? (*out)[0].at(0) : 0;
}

TEST(ProgramTest, IndependentBranchesRunConcurrently) {
  if (CoreBudget::Global().total() < 2) GTEST_SKIP() << "needs two cores";
  auto probe = std::make_shared<Probe>();
  Program::PlanInfo info;
  EXPECT_EQ(RunBranches("rendezvous", 2048, probe, &info), 3.0);  // 4 x 2048 elements: not a tiny plan
  EXPECT_FALSE(info.runs_inline);
  EXPECT_EQ(probe->met.load(), 2) << "the two branches never ran at the same time";
}

// Note [Tiny plans run inline]: a plan of a few elements runs its steps in order on the calling
// thread (no flow graph), with the same results; from 4,097 elements on it uses the flow graph.
TEST(ProgramTest, TinyPlansRunInlineLargerOnesOnTheFlowGraph) {
  auto probe = std::make_shared<Probe>();
  Program::PlanInfo info;
  EXPECT_EQ(RunBranches("count", 4, probe, &info), 3.0);  // x, left, right, y: 16 elements
  EXPECT_TRUE(info.runs_inline);
  EXPECT_EQ(RunBranches("count", 1024, probe, &info), 3.0);  // 4 x 1024: the largest inline
  EXPECT_TRUE(info.runs_inline);
  EXPECT_EQ(RunBranches("count", 1025, probe, &info), 3.0);
  EXPECT_FALSE(info.runs_inline);
  EXPECT_EQ(probe->runs.load(), 6);
}

class ProbeProgramTest : public ::testing::Test {
 protected:
  // x -> first (op) -> second (count) -> y
  StatusOr<std::vector<Tensor>> RunChain(const std::string& op, const RunOptions& options = {}) {
    graph_ = std::make_shared<Graph>(*registry_);
    const ValueId x = *graph_->AddPlaceholder("x", Shape{2});
    const ValueId first = *graph_->AddNode("first", op, {x});
    const ValueId second = *graph_->AddNode("second", "count", {first});
    Program program(graph_);
    const ValueId fetch[] = {second};
    return program.Run({{"x", &input_}}, fetch, options);
  }

  std::shared_ptr<Probe> probe_ = std::make_shared<Probe>();
  std::unique_ptr<GateRegistry> registry_ = MakeProbeRegistry(probe_);
  std::shared_ptr<Graph> graph_;
  Tensor input_ = Tensor::FromValues(DType::kFloat32, Shape{2}, std::vector<double>{1, 2});
};

TEST_F(ProbeProgramTest, AnExceptionInAKernelComesBackAsInternalNamingTheNode) {
  StatusOr<std::vector<Tensor>> out = RunChain("throw");
  EXPECT_EQ(out.status().code(), StatusCode::kInternal);
  EXPECT_EQ(out.status().message(), "node 'first': boom");
  EXPECT_EQ(probe_->runs.load(), 0);  // the rest of the run was skipped
}

TEST_F(ProbeProgramTest, AKernelErrorKeepsItsCodeAndNamesTheNode) {
  StatusOr<std::vector<Tensor>> out = RunChain("fail");
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "node 'first': bad value");
}

TEST_F(ProbeProgramTest, CancellationStopsTheRunBetweenNodes) {
  RunOptions options;
  options.cancelled = &probe_->cancel;  // the first node sets it
  StatusOr<std::vector<Tensor>> out = RunChain("cancel", options);
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_NE(out.status().message().find("'second'"), std::string::npos);
  EXPECT_EQ(probe_->runs.load(), 1);  // "second" never ran
}

TEST_F(ProbeProgramTest, APassedDeadlineStopsTheRun) {
  RunOptions options;
  options.deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  StatusOr<std::vector<Tensor>> out = RunChain("count", options);
  EXPECT_EQ(out.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(probe_->runs.load(), 0);
}

TEST_F(ProbeProgramTest, ARunAfterAFailedRunSucceeds) {
  ASSERT_FALSE(RunChain("fail").ok());
  StatusOr<std::vector<Tensor>> out = RunChain("count");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].ToDoubles(), (std::vector<double>{1, 2}));
}

TEST(ProgramFeedsTest, BadFeedsAreInvalidArgumentsNamingTheTensor) {
  Net net = BuildNet();
  Program program(net.graph);
  auto good = MakeFeeds(*net.graph, 4, 3);
  Tensor wrong_width = Random(Shape{4, 15}, 5);
  Tensor other_batch = Random(Shape{5, 16}, 5);
  Tensor f64 = Tensor(DType::kFloat64, Shape{4, 16});
  Tensor ints = Tensor(DType::kInt64, Shape{4, 16});
  struct Case {
    std::string name;
    FeedMap feeds;
    std::string message;
  };
  std::vector<Case> cases = {
      {"wrong shape", good->feeds, "placeholder 'x': fed shape [4, 15], expected [N, 16]"},
      {"batch mismatch", good->feeds, "placeholder 't': batch size 5 differs"},
      {"missing", good->feeds, "placeholder 'x' is needed but was not fed"},
      {"unknown", good->feeds, "feed 'nope': no such tensor"},
      {"computed", good->feeds, "feed 'h': only placeholders, parameters and state can be fed"},
      {"dtype", good->feeds, "differs from the other feeds' "},
      {"integer", good->feeds, "feed 'x': dtype int64, but the placeholder is float"},
  };
  cases[0].feeds["x"] = &wrong_width;
  cases[1].feeds["t"] = &other_batch;
  cases[2].feeds.erase("x");
  cases[3].feeds["nope"] = &wrong_width;
  cases[4].feeds["h"] = &wrong_width;
  cases[5].feeds["x"] = &f64;
  cases[6].feeds["x"] = &ints;
  for (const Case& c : cases) {
    StatusOr<std::vector<Tensor>> out = program.Run(c.feeds, net.fetches);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(out.status().message().find(c.message), std::string::npos)
        << c.name << ": " << out.status().message();
  }
  EXPECT_TRUE(program.Run(good->feeds, net.fetches).ok());
}

// An integer placeholder keeps its dtype whatever the plan's float dtype; float gates refuse it,
// feeds must match it exactly, and it has no gradient.
TEST(ProgramFeedsTest, IntegerPlaceholdersKeepTheirDtype) {
  Net net = BuildNet();
  Graph& g = *net.graph;
  const ValueId ids = *g.AddPlaceholder("ids", Shape{kBatchDim, 2}, DType::kInt64);
  EXPECT_EQ(g.value(ids).dtype, DType::kInt64);
  const StatusOr<ValueId> relu = g.AddNode("r", "relu", {ids});
  ASSERT_FALSE(relu.ok());
  EXPECT_EQ(relu.status().message(),
            "node 'r': input 0 ('ids') is int64, but op 'relu' takes a float tensor there");
  const StatusOr<std::vector<ValueId>> grad = AppendBackward(g, net.fetches[0], {&ids, 1});
  ASSERT_FALSE(grad.ok());
  EXPECT_NE(grad.status().message().find("'ids' is int64: integer values have no gradient"),
            std::string::npos);

  Program program(net.graph);
  auto good = MakeFeeds(*net.graph, 4, 3);
  Tensor id_values(DType::kInt64, Shape{4, 2});
  id_values.data<int64_t>()[3] = 42;
  FeedMap feeds = good->feeds;
  feeds["ids"] = &id_values;
  const std::vector<ValueId> fetch_ids = {ids, net.fetches[0]};
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, fetch_ids);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].dtype(), DType::kInt64);
  EXPECT_EQ((*out)[0].id(3), 42);
  EXPECT_EQ((*out)[1].dtype(), DType::kFloat32);

  Tensor floats(DType::kFloat32, Shape{4, 2});
  Tensor narrow(DType::kInt32, Shape{4, 2});
  for (const Tensor* wrong : {&floats, &narrow}) {
    feeds["ids"] = wrong;
    out = program.Run(feeds, fetch_ids);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find("feed 'ids': dtype " +
                                          std::string(DTypeName(wrong->dtype())) +
                                          ", but the placeholder is int64"),
              std::string::npos)
        << out.status().message();
  }
}

}  // namespace
}  // namespace backflow
