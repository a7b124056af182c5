// Data-parallel steps in one process (Note [Data-parallel steps]): several Trainers, one per
// shard of each batch, each stepping on its own thread with a reducer that joins them, against
// one Trainer stepping on the whole batches.
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "engine/api/gradient_reducer.h"
#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/gates/builtin.h"
#include "tests/testing/relative_difference.h"

namespace backflow {
namespace {

Graph Mlp() {
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt");
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> g = ImportGraph(*proto);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return std::move(*g);
}

// The shards' results, joined the plain way: every shard publishes its weighted loss, metrics,
// gradients and state, waits for the others, and sums them in shard order, so every shard ends
// with bitwise the same values. A shard that failed publishes its error; then all fail.
class ThreadGroup {
 public:
  ThreadGroup(int shards, LossReduction reduction)
      : reduction_(reduction), slots_(static_cast<size_t>(shards)), barrier_(shards) {}

  class Reducer : public GradientReducer {
   public:
    Reducer(ThreadGroup* group, int shard, int64_t rows, int64_t batch_rows, size_t parameters)
        : group_(group),
          shard_(shard),
          rows_(rows),
          batch_rows_(batch_rows),
          seen_(parameters, 0) {}
    void GradientReady(size_t index, const Tensor& gradient) override {
      std::lock_guard<std::mutex> lock(mu_);
      ++seen_.at(index);
      EXPECT_GT(gradient.shape().num_elements(), 0);
    }
    Status Reduce(const Status& run, StepResult* result, ParameterMap* next_state) override {
      return group_->Join(shard_, ShardLossWeight(group_->reduction_, rows_, batch_rows_), run,
                          result, next_state);
    }
    // How often each gradient was reported during the run.
    std::vector<int> seen() const { return seen_; }

   private:
    ThreadGroup* group_;
    int shard_;
    int64_t rows_, batch_rows_;
    std::mutex mu_;
    std::vector<int> seen_;
  };

 private:
  struct Slot {
    Status status;
    double loss = 0;
    std::unordered_map<std::string, double> metrics;
    std::map<std::string, std::vector<double>> gradients;
    ParameterMap state;
  };

  Status Join(int shard, double weight, const Status& run, StepResult* result, ParameterMap* next) {
    Slot& mine = slots_[static_cast<size_t>(shard)];
    mine = Slot{.status = run};
    if (run.ok()) {
      mine.loss = weight * result->loss;
      for (const auto& [name, value] : result->metrics) mine.metrics[name] = weight * value;
      for (const auto& [name, g] : result->gradients) {
        std::vector<double> v = g.ToDoubles();
        for (double& x : v) x *= weight;
        mine.gradients[name] = std::move(v);
      }
      if (next != nullptr) mine.state = *next;
    }
    barrier_.arrive_and_wait();
    Status joined;
    for (const Slot& s : slots_) {
      if (!s.status.ok() && joined.ok()) joined = s.status;
    }
    if (joined.ok()) {
      result->loss = 0;
      for (auto& [name, value] : result->metrics) value = 0;
      std::map<std::string, std::vector<double>> sums;
      for (const Slot& s : slots_) {
        result->loss += s.loss;
        for (const auto& [name, value] : s.metrics) result->metrics[name] += value;
        for (const auto& [name, v] : s.gradients) {
          std::vector<double>& sum = sums[name];
          sum.resize(v.size(), 0.0);
          for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
        }
      }
      for (auto& [name, g] : result->gradients) {
        g = Tensor::FromValues(g.dtype(), g.shape(), sums.at(name));
      }
      // The first shard's running state (DDP's broadcast_buffers); none for ComputeGradients.
      if (next != nullptr) *next = slots_[0].state;
    }
    barrier_.arrive_and_wait();  // nobody overwrites a slot another shard still reads
    return joined;
  }

  LossReduction reduction_;
  std::vector<Slot> slots_;
  std::barrier<> barrier_;
};

struct Data {
  Tensor images, labels;
};

// `rows` random images with labels 0..9 (as floats), in `dtype`.
Data RandomBatch(DType dtype, int64_t rows, std::mt19937& rng) {
  std::normal_distribution<double> pixel(0.0, 1.0);
  std::vector<double> images(static_cast<size_t>(rows * 784));
  for (double& p : images) p = pixel(rng);
  std::vector<double> labels(static_cast<size_t>(rows));
  for (double& l : labels) l = static_cast<double>(rng() % 10);
  return {Tensor::FromValues(dtype, Shape{rows, 1, 28, 28}, images),
          Tensor::FromValues(dtype, Shape{rows}, labels)};
}

// Rows [begin, begin + count) of a batch.
Data ShardOf(const Data& batch, int64_t begin, int64_t count) {
  std::vector<double> images = batch.images.ToDoubles();
  std::vector<double> labels = batch.labels.ToDoubles();
  return {Tensor::FromValues(batch.images.dtype(), Shape{count, 1, 28, 28},
                             std::vector<double>(images.begin() + begin * 784,
                                                 images.begin() + (begin + count) * 784)),
          Tensor::FromValues(
              batch.labels.dtype(), Shape{count},
              std::vector<double>(labels.begin() + begin, labels.begin() + begin + count))};
}

std::unique_ptr<Trainer> MakeTrainer(const OptimizerConfig& optimizer, DType dtype) {
  TrainerOptions options{
      .dtype = dtype, .seed = 7, .optimizer = optimizer, .metrics = {"accuracy"}};
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(Mlp(), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  return std::move(*trainer);
}

double RelativeDifference(const Tensor& a, const Tensor& b) {
  return backflow::testing::RelativeL2Difference(a.ToDoubles(), b.ToDoubles());
}

// Runs `steps` steps of batches of the shard sizes on one trainer per shard and on one trainer
// on the whole batches, comparing losses step by step and parameters at the end.
void ExpectShardsMatchTheWholeBatch(const OptimizerConfig& optimizer, DType dtype,
                                    const std::vector<int64_t>& shard_rows, int steps,
                                    double tolerance) {
  SCOPED_TRACE(std::string(DTypeName(dtype)) + " with " + std::to_string(shard_rows.size()) +
               " shards");
  const int shards = static_cast<int>(shard_rows.size());
  int64_t rows = 0;
  for (int64_t r : shard_rows) rows += r;
  std::unique_ptr<Trainer> whole = MakeTrainer(optimizer, dtype);
  std::vector<std::unique_ptr<Trainer>> parts;
  for (int s = 0; s < shards; ++s) parts.push_back(MakeTrainer(optimizer, dtype));
  std::mt19937 rng(11);
  for (int step = 0; step < steps; ++step) {
    const Data batch = RandomBatch(dtype, rows, rng);
    StatusOr<StepResult> expected =
        whole->Step({{"images", &batch.images}, {"labels", &batch.labels}});
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();

    ThreadGroup group(shards, LossReductionOf(whole->graph()));
    std::vector<StatusOr<StepResult>> got(static_cast<size_t>(shards), InternalError("not run"));
    std::vector<std::vector<int>> seen(static_cast<size_t>(shards));
    std::vector<std::thread> threads;
    int64_t begin = 0;
    for (int s = 0; s < shards; ++s) {
      threads.emplace_back([&, s, begin] {
        const Data part = ShardOf(batch, begin, shard_rows[static_cast<size_t>(s)]);
        ThreadGroup::Reducer reducer(&group, s, shard_rows[static_cast<size_t>(s)], rows,
                                     parts[static_cast<size_t>(s)]->parameter_names().size());
        got[static_cast<size_t>(s)] = parts[static_cast<size_t>(s)]->Step(
            {{"images", &part.images}, {"labels", &part.labels}},
            {.reducer = &reducer, .empty_shard = shard_rows[static_cast<size_t>(s)] == 0});
        seen[static_cast<size_t>(s)] = reducer.seen();
      });
      begin += shard_rows[static_cast<size_t>(s)];
    }
    for (std::thread& t : threads) t.join();
    for (int s = 0; s < shards; ++s) {
      ASSERT_TRUE(got[static_cast<size_t>(s)].ok())
          << got[static_cast<size_t>(s)].status().ToString();
      EXPECT_NEAR(got[static_cast<size_t>(s)]->loss, expected->loss, tolerance * expected->loss);
      EXPECT_NEAR(got[static_cast<size_t>(s)]->metrics.at("accuracy"),
                  expected->metrics.at("accuracy"), tolerance);  // float32 rounds 1/12
      EXPECT_EQ(got[static_cast<size_t>(s)]->step, step + 1);
      // Every gradient reached the reducer while the run went on, once (an empty shard runs
      // nothing).
      EXPECT_EQ(seen[static_cast<size_t>(s)],
                std::vector<int>(4, shard_rows[static_cast<size_t>(s)] > 0 ? 1 : 0));
    }
  }
  std::shared_ptr<const ParameterSnapshot> want = whole->parameters();
  for (int s = 0; s < shards; ++s) {
    std::shared_ptr<const ParameterSnapshot> p = parts[static_cast<size_t>(s)]->parameters();
    for (const auto& [name, value] : want->values) {
      EXPECT_LE(RelativeDifference(p->values.at(name), value), tolerance)
          << "shard " << s << ", parameter " << name;
      // The shards' copies are bitwise equal.
      EXPECT_EQ(p->values.at(name).ToDoubles(),
                parts[0]->parameters()->values.at(name).ToDoubles());
    }
  }
}

TEST(DataParallelTest, ShardsOfSgdWithMomentumMatchTheWholeBatch) {
  const OptimizerConfig sgd{
      .kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.05, .momentum = 0.9};
  ExpectShardsMatchTheWholeBatch(sgd, DType::kFloat32, {6, 6}, 10, 1e-5);
  ExpectShardsMatchTheWholeBatch(sgd, DType::kFloat32, {5, 4, 3}, 10, 1e-5);
  ExpectShardsMatchTheWholeBatch(sgd, DType::kFloat64, {5, 4, 3}, 10, 1e-12);
}

TEST(DataParallelTest, ShardsOfAdamMatchTheWholeBatch) {
  const OptimizerConfig adam{.kind = OptimizerConfig::Kind::kAdam, .learning_rate = 0.001};
  ExpectShardsMatchTheWholeBatch(adam, DType::kFloat32, {7, 5}, 10, 1e-5);
  ExpectShardsMatchTheWholeBatch(adam, DType::kFloat64, {1, 8, 3}, 10, 1e-12);
}

// An empty shard (a batch with fewer rows than workers) weighs nothing.
TEST(DataParallelTest, AnEmptyShardWeighsNothing) {
  const OptimizerConfig sgd{.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.05};
  ExpectShardsMatchTheWholeBatch(sgd, DType::kFloat64, {4, 0}, 3, 1e-12);
}

// A label out of range in one shard fails every shard's step, and none applies it.
TEST(DataParallelTest, OneFailingShardFailsTheStepEverywhere) {
  const OptimizerConfig sgd{.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.05};
  std::vector<std::unique_ptr<Trainer>> parts;
  for (int s = 0; s < 2; ++s) parts.push_back(MakeTrainer(sgd, DType::kFloat32));
  std::mt19937 rng(3);
  Data good = RandomBatch(DType::kFloat32, 4, rng);
  Data bad = RandomBatch(DType::kFloat32, 4, rng);
  bad.labels = Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{1, 2, 12, 3});
  ThreadGroup group(2, LossReductionOf(parts[0]->graph()));
  std::vector<Status> status(2);
  std::vector<std::thread> threads;
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([&, s] {
      const Data& mine = s == 0 ? good : bad;
      ThreadGroup::Reducer reducer(&group, s, 4, 8, 4);
      status[static_cast<size_t>(s)] =
          parts[static_cast<size_t>(s)]
              ->Step({{"images", &mine.images}, {"labels", &mine.labels}}, {.reducer = &reducer})
              .status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(status[static_cast<size_t>(s)].code(), StatusCode::kInvalidArgument);
    EXPECT_NE(status[static_cast<size_t>(s)].message().find("label 12"), std::string::npos)
        << status[static_cast<size_t>(s)].ToString();
    EXPECT_EQ(parts[static_cast<size_t>(s)]->parameters()->step, 0);
  }
}

// ComputeShardGradients on shards of 5, 4, 3 and 0 rows answers, on every shard, the loss, metrics
// and gradients of ComputeGradients on the whole batch, and changes no parameter.
TEST(DataParallelTest, ShardedGradientsAreTheWholeBatchsAndApplyNothing) {
  const OptimizerConfig sgd{.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.05};
  const std::vector<int64_t> shard_rows = {5, 4, 3, 0};
  const int shards = static_cast<int>(shard_rows.size());
  std::unique_ptr<Trainer> whole = MakeTrainer(sgd, DType::kFloat64);
  std::vector<std::unique_ptr<Trainer>> parts;
  for (int s = 0; s < shards; ++s) parts.push_back(MakeTrainer(sgd, DType::kFloat64));
  std::mt19937 rng(5);
  const Data batch = RandomBatch(DType::kFloat64, 12, rng);
  StatusOr<StepResult> expected =
      whole->ComputeGradients({{"images", &batch.images}, {"labels", &batch.labels}});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();

  ThreadGroup group(shards, LossReductionOf(whole->graph()));
  std::vector<StatusOr<StepResult>> got(static_cast<size_t>(shards), InternalError("not run"));
  std::vector<std::thread> threads;
  int64_t begin = 0;
  for (int s = 0; s < shards; ++s) {
    const int64_t rows = shard_rows[static_cast<size_t>(s)];
    threads.emplace_back([&, s, begin, rows] {
      const Data part = ShardOf(batch, begin, rows);
      ThreadGroup::Reducer reducer(&group, s, rows, 12, 4);
      got[static_cast<size_t>(s)] = parts[static_cast<size_t>(s)]->ComputeShardGradients(
          {{"images", &part.images}, {"labels", &part.labels}},
          {.reducer = &reducer, .empty_shard = rows == 0});
    });
    begin += rows;
  }
  for (std::thread& t : threads) t.join();
  for (int s = 0; s < shards; ++s) {
    const StatusOr<StepResult>& mine = got[static_cast<size_t>(s)];
    ASSERT_TRUE(mine.ok()) << mine.status().ToString();
    EXPECT_EQ(mine->step, 0);
    EXPECT_NEAR(mine->loss, expected->loss, 1e-12 * expected->loss);
    EXPECT_NEAR(mine->metrics.at("accuracy"), expected->metrics.at("accuracy"), 1e-12);
    ASSERT_EQ(mine->gradients.size(), expected->gradients.size());
    for (const auto& [name, gradient] : expected->gradients) {
      EXPECT_LE(RelativeDifference(mine->gradients.at(name), gradient), 1e-12) << name;
    }
    EXPECT_EQ(parts[static_cast<size_t>(s)]->parameters()->step, 0);
    for (const auto& [name, value] : whole->parameters()->values) {
      EXPECT_EQ(parts[static_cast<size_t>(s)]->parameters()->values.at(name).ToDoubles(),
                value.ToDoubles());
    }
  }
}

TEST(DataParallelTest, LossReductionFollowsTheLossGate) {
  EXPECT_EQ(LossReductionOf(Mlp()), LossReduction::kMeanOverRows);
  for (const auto& [reduction, want] :
       {std::pair{std::string("sum"), LossReduction::kSumOverRows},
        std::pair{std::string("mean"), LossReduction::kMeanOverRows}}) {
    Graph g(BuiltinGates());
    const ValueId y = *g.AddPlaceholder("y", Shape{kBatchDim});
    const ValueId t = *g.AddPlaceholder("t", Shape{kBatchDim});
    g.set_loss(*g.AddNode("loss", "squared_error", {y, t}, Attributes{{"reduction", reduction}}));
    EXPECT_EQ(LossReductionOf(g), want) << reduction;
    EXPECT_TRUE(CheckShardableLoss(g).ok());
  }
  Graph g(BuiltinGates());
  const ValueId y = *g.AddPlaceholder("y", Shape{kBatchDim});
  g.set_loss(*g.AddNode("total", "sum", {y}));
  EXPECT_EQ(LossReductionOf(g), LossReduction::kOther);
  const Status refused = CheckShardableLoss(g);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("loss 'total' (sum) cannot be split"), std::string::npos)
      << refused.ToString();

  EXPECT_EQ(ShardLossWeight(LossReduction::kMeanOverRows, 3, 12), 0.25);
  EXPECT_EQ(ShardLossWeight(LossReduction::kMeanOverRows, 0, 0), 0.0);
  EXPECT_EQ(ShardLossWeight(LossReduction::kSumOverRows, 3, 12), 1.0);
}

}  // namespace
}  // namespace backflow
