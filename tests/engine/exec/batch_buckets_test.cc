// Note [Batch-size buckets], Note [Idle buffers] and Note [Buffer cache]: which batch sizes a
// program compiles, that a padded run answers what the exact run does, and that the memory
// idle plans and freed buffers keep stays within its bounds.
#include "engine/exec/batch_buckets.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/import.h"
#include "engine/exec/flow_pool.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

TEST(BatchBucketsTest, SmallSizesStayExactAndLargerOnesRoundUpByAnEighthOfTheirOctave) {
  EXPECT_EQ(BatchBuckets::Bucket(1), 1);
  EXPECT_EQ(BatchBuckets::Bucket(15), 15);
  EXPECT_EQ(BatchBuckets::Bucket(16), 16);
  EXPECT_EQ(BatchBuckets::Bucket(17), 18);
  EXPECT_EQ(BatchBuckets::Bucket(100), 104);  // 64 <= 100 < 128: steps of 8
  EXPECT_EQ(BatchBuckets::Bucket(990), 1024);
  EXPECT_EQ(BatchBuckets::Bucket(1024), 1024);
  EXPECT_EQ(BatchBuckets::Bucket(1025), 1152);
  EXPECT_EQ(BatchBuckets::Bucket(9970), 10240);
  for (int64_t rows = 1; rows < 100000; rows += 37) {
    const int64_t bucket = BatchBuckets::Bucket(rows);
    EXPECT_GE(bucket, rows);
    EXPECT_LE(bucket, rows + rows / 8) << rows;
  }
}

TEST(BatchBucketsTest, TheFirstFourSizesOfAFetchSetAreExactAndLaterOnesAreBucketed) {
  BatchBuckets buckets;
  EXPECT_EQ(buckets.Choose("a", 1000), 1000);
  EXPECT_EQ(buckets.Choose("a", 1001), 1001);
  EXPECT_EQ(buckets.Choose("a", 1002), 1002);
  EXPECT_EQ(buckets.Choose("a", 1003), 1003);
  EXPECT_EQ(buckets.Choose("a", 1004), 1024);
  EXPECT_EQ(buckets.Choose("a", 1001), 1001);  // still exact
  EXPECT_EQ(buckets.Choose("b", 1004), 1004);  // another fetch set has its own four
  // Past kMaxKeys fetch sets the map starts over: "a" is exact again for a new size.
  for (size_t i = 0; i < BatchBuckets::kMaxKeys; ++i) buckets.Choose("k" + std::to_string(i), 7);
  EXPECT_EQ(buckets.Choose("a", 1005), 1005);
}

TEST(BatchBucketsTest, PadRowsRepeatsTheLastRow) {
  const std::vector<double> values = {1, 2, 3, 4, 5, 6};
  const Tensor t = Tensor::FromValues(DType::kFloat64, Shape{2, 3}, values);
  const Tensor padded = PadRows(t, 4);
  EXPECT_EQ(padded.shape(), (Shape{4, 3}));
  EXPECT_EQ(padded.ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6}));
}

// LeNet-5 with its parameters, and batches of images.
struct LeNet {
  std::shared_ptr<Graph> graph;
  std::unordered_map<std::string, Tensor> parameters;
  DType dtype;

  explicit LeNet(DType dtype) : dtype(dtype) {
    StatusOr<v1::Graph> proto =
        LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/lenet5.pbtxt");
    graph = std::make_shared<Graph>(std::move(*ImportGraph(*proto)));
    parameters = *InitializeParameters(*graph, dtype, /*seed=*/3);
  }

  Tensor Images(int64_t rows, unsigned seed) const {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> unit(0, 1);
    std::vector<double> values(static_cast<size_t>(rows * 28 * 28));
    for (double& v : values) v = unit(rng);
    return Tensor::FromValues(dtype, Shape{rows, 1, 28, 28}, values);
  }

  StatusOr<Tensor> Logits(const Program& program, const Tensor& images) const {
    FeedMap feeds{{"images", &images}};
    for (const auto& [name, tensor] : parameters) feeds[name] = &tensor;
    const std::string fetch[] = {"logits"};
    BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program.Run(feeds, fetch));
    return std::move(out[0]);
  }
};

void ExpectClose(const Tensor& a, const Tensor& b, double tolerance) {
  ASSERT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.ToDoubles();
  const std::vector<double> y = b.ToDoubles();
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(x[i], y[i], tolerance * std::max(1.0, std::abs(y[i]))) << "element " << i;
  }
}

TEST(BatchBucketsTest, ManyInferenceBatchSizesShareAFewPlansAndAnswerAsExactPlansDo) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const LeNet net(dtype);
    Program padded(net.graph);
    // 20 sizes: 4 exact plans, then the buckets of 40..59 (steps of 4: 44, 48, ..., 60).
    for (int64_t rows = 40; rows < 60; ++rows) {
      const Tensor images = net.Images(rows, static_cast<unsigned>(rows));
      StatusOr<Tensor> got = net.Logits(padded, images);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_EQ(got->shape(), (Shape{rows, 10}));
      // A fresh program compiles its first sizes exactly.
      Program alone(net.graph);
      StatusOr<Tensor> want = net.Logits(alone, images);
      ASSERT_TRUE(want.ok()) << want.status().ToString();
      ExpectClose(*got, *want, dtype == DType::kFloat64 ? 1e-12 : 1e-5);
    }
    // 40, 41, 42, 43 exact; 44..59 in the buckets 44, 48, 52, 56, 60.
    EXPECT_EQ(padded.cache_stats().plans, 9u);
  }
}

TEST(BatchBucketsTest, OutputsThatMixRowsAreNeverPadded) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *graph->AddPlaceholder("x", Shape{kBatchDim, 3});
  Attributes axis0;
  axis0.Set("axis", int64_t{0});
  const ValueId y = *graph->AddNode("y", "softmax", {x}, axis0);
  Program program(graph);
  for (int64_t rows = 20; rows < 30; ++rows) {
    std::vector<double> values(static_cast<size_t>(rows * 3));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 7);
    const Tensor t = Tensor::FromValues(DType::kFloat64, Shape{rows, 3}, values);
    const ValueId fetch[] = {y};
    StatusOr<std::vector<Tensor>> out = program.Run({{"x", &t}}, fetch);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    // Each column sums to 1 over the real rows only.
    double column = 0;
    for (int64_t r = 0; r < rows; ++r) column += (*out)[0].at(r * 3);
    EXPECT_NEAR(column, 1.0, 1e-12);
  }
  EXPECT_EQ(program.cache_stats().plans, 10u);  // one per size
}

TEST(BatchBucketsTest, TrainingRunsAreNeverPadded) {
  const LeNet net(DType::kFloat32);
  Program program(net.graph);
  for (int64_t rows = 40; rows < 50; ++rows) {
    const Tensor images = net.Images(rows, 1);
    FeedMap feeds{{"images", &images}};
    for (const auto& [name, tensor] : net.parameters) feeds[name] = &tensor;
    RunOptions options;
    options.info.training = true;
    const std::string fetch[] = {"logits"};
    ASSERT_TRUE(program.Run(feeds, fetch, options).ok());
  }
  EXPECT_EQ(program.cache_stats().plans, 10u);
}

TEST(BatchBucketsTest, AnErrorNamesTheBatchTheCallerSent) {
  const LeNet net(DType::kFloat32);
  Program program(net.graph);
  for (int64_t rows = 40; rows < 44; ++rows) {
    ASSERT_TRUE(net.Logits(program, net.Images(rows, 1)).ok());
  }
  // The fifth size would be padded to 48; its wrong image size is reported at 45 rows.
  const Tensor wrong = Tensor(DType::kFloat32, Shape{45, 1, 27, 28});
  StatusOr<Tensor> got = net.Logits(program, wrong);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("45"), std::string::npos) << got.status().message();
  EXPECT_EQ(got.status().message().find("48"), std::string::npos) << got.status().message();
}

TEST(IdleBuffersTest, IdlePlansKeepNoMoreThanTheCapacity) {
  const LeNet net(DType::kFloat32);
  const int64_t before = IdleBufferBytes();
  {
    Program program(net.graph, ProgramOptions{.plan_cache_capacity = 64});
    ASSERT_TRUE(net.Logits(program, net.Images(200, 1)).ok());
    const int64_t one_plan = IdleBufferBytes() - before;
    EXPECT_GT(one_plan, 200 * 6 * 28 * 28 * 4);  // at least the first convolution's output
    SetIdleBufferCapacity(before + 2 * one_plan + one_plan / 2);
    for (int64_t rows = 201; rows < 205; ++rows) {  // four more exact plans of about one_plan
      ASSERT_TRUE(net.Logits(program, net.Images(rows, 1)).ok());
      EXPECT_LE(IdleBufferBytes(), before + 2 * one_plan + one_plan / 2);
    }
    EXPECT_GE(IdleBufferBytes(), before + one_plan);  // the most recent plans keep theirs
    // A plan whose buffers alone pass the capacity keeps none.
    SetIdleBufferCapacity(before + one_plan / 2);
    ASSERT_TRUE(net.Logits(program, net.Images(200, 1)).ok());
    EXPECT_LE(IdleBufferBytes(), before + one_plan / 2);
  }
  EXPECT_EQ(IdleBufferBytes(), before);  // the program's plans are gone, and their count too
  SetIdleBufferCapacity(int64_t{1} << 30);
}

TEST(BufferCacheTest, KeepsTheNewestBlocksWithinItsCapacityAndReleasesThemAll) {
  ReleaseCachedBuffers();
  SetBufferCacheCapacity(size_t{4} << 20);
  for (int i = 0; i < 6; ++i) {
    Tensor freed(DType::kFloat32, Shape{(1 << 18) + 64 * i});  // about 1 MiB, freed at once
  }
  EXPECT_LE(CachedBufferBytes(), size_t{4} << 20);
  EXPECT_GE(CachedBufferBytes(), size_t{3} << 20);
  // The newest size is still there: taking it does not grow the cache's count.
  const size_t cached = CachedBufferBytes();
  {
    Tensor reused(DType::kFloat32, Shape{(1 << 18) + 64 * 5});
    EXPECT_LT(CachedBufferBytes(), cached);
  }
  ReleaseCachedBuffers();
  EXPECT_EQ(CachedBufferBytes(), 0u);
  SetBufferCacheCapacity(size_t{256} << 20);
}

}  // namespace
}  // namespace backflow
