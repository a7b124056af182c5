// Note [Run profiles]: what a profiled run records, node by node, on LeNet-5 (models/), and the
// interval arithmetic of RunProfile.
#include "engine/exec/run_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/ir/import.h"

namespace backflow {
namespace {

TEST(RunProfileTest, BusyTimeIsTheUnionOfTheNodesIntervals) {
  RunProfile profile;
  EXPECT_EQ(profile.BusyNanos(), 0);
  profile.nodes = {{.start_ns = 30, .duration_ns = 5},
                   {.start_ns = 0, .duration_ns = 10},
                   {.start_ns = 5, .duration_ns = 10},  // overlaps the one before: [0, 15)
                   {.start_ns = 31, .duration_ns = 1},  // inside [30, 35)
                   {.start_ns = 40, .duration_ns = 0}};
  EXPECT_EQ(profile.BusyNanos(), 15 + 5);
}

TEST(RunProfileTest, MarkBackwardMarksTheNodesOfItsRange) {
  RunProfile profile;
  for (int id : {0, 3, 4, 7}) profile.nodes.push_back({.node = id});
  profile.nodes.push_back({.name = "optimizer", .phase = ProfilePhase::kOptimizer});
  profile.MarkBackward(3, 7);
  std::vector<ProfilePhase> phases;
  for (const NodeProfile& node : profile.nodes) phases.push_back(node.phase);
  EXPECT_EQ(phases, (std::vector<ProfilePhase>{ProfilePhase::kForward, ProfilePhase::kBackward,
                                               ProfilePhase::kBackward, ProfilePhase::kForward,
                                               ProfilePhase::kOptimizer}));
}

// LeNet-5's forward nodes, and the bytes of its parameters (61,706 float32).
const std::set<std::string> kForwardNodes = {"c1",      "c1_relu", "s2",   "c3",      "c3_relu",
                                             "s4",      "s4_flat", "f5",   "f5_relu", "f6",
                                             "f6_relu", "logits",  "loss", "accuracy"};
constexpr int64_t kParameterBytes = 61706 * 4;

class LeNetProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<v1::Graph> proto =
        LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/lenet5.pbtxt");
    ASSERT_TRUE(proto.ok()) << proto.status().ToString();
    StatusOr<Graph> graph = ImportGraph(*proto);
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    OptimizerConfig sgd{
        .kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
    StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(
        std::move(*graph),
        {.dtype = DType::kFloat32, .seed = 5, .optimizer = sgd, .metrics = {"accuracy"}});
    ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
    trainer_ = std::move(*trainer);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<float> pixel(0, 1);
    for (int64_t i = 0; i < images_.num_elements(); ++i) images_.data<float>()[i] = pixel(rng);
    for (int64_t i = 0; i < kRows; ++i) labels_.data<float>()[i] = static_cast<float>(rng() % 10);
  }

  RunProfile Step() {
    RunProfile profile;
    StepOptions options;
    options.run.profile = &profile;
    StatusOr<StepResult> result = trainer_->Step(Feeds(), options);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return profile;
  }

  FeedMap Feeds() const { return {{"images", &images_}, {"labels", &labels_}}; }

  static constexpr int64_t kRows = 64;
  std::unique_ptr<Trainer> trainer_;
  Tensor images_{DType::kFloat32, Shape{kRows, 1, 28, 28}};
  Tensor labels_{DType::kFloat32, Shape{kRows}};
};

TEST_F(LeNetProfileTest, AStepRecordsEveryNodeForwardAndBackwardThenTheOptimizer) {
  const RunProfile first = Step();
  EXPECT_TRUE(first.plan_compiled);
  const RunProfile profile = Step();
  EXPECT_FALSE(profile.plan_compiled) << "the second step finds its plan in the cache";
  EXPECT_EQ(profile.padded_rows, -1);
  ASSERT_GT(profile.nodes.size(), kForwardNodes.size());

  std::map<std::string, const NodeProfile*> by_name;
  int backward = 0;
  for (const NodeProfile& node : profile.nodes) {
    EXPECT_TRUE(by_name.emplace(node.name, &node).second) << node.name << " twice";
    if (node.phase == ProfilePhase::kForward) {
      EXPECT_TRUE(kForwardNodes.count(node.name)) << node.name << " is not a forward node";
    } else if (node.phase == ProfilePhase::kBackward) {
      EXPECT_FALSE(kForwardNodes.count(node.name)) << node.name;
      ++backward;
    }
  }
  for (const std::string& name : kForwardNodes) {
    ASSERT_TRUE(by_name.count(name)) << name << " is missing";
    EXPECT_EQ(by_name[name]->phase, ProfilePhase::kForward) << name;
  }
  // Gradients of 10 parameters through 12 gates: at least one backward node per parameter.
  EXPECT_GE(backward, 10);

  // The optimizer comes last, after every node, and updated every parameter.
  const NodeProfile& optimizer = profile.nodes.back();
  EXPECT_EQ(optimizer.name, "optimizer");
  EXPECT_EQ(optimizer.op, "sgd");
  EXPECT_EQ(optimizer.phase, ProfilePhase::kOptimizer);
  EXPECT_EQ(optimizer.output_bytes, kParameterBytes);
  for (const NodeProfile& node : profile.nodes) {
    EXPECT_GE(node.start_ns, 0) << node.name;
    EXPECT_GT(node.duration_ns, 0) << node.name;
    EXPECT_GE(node.wait_ns, 0) << node.name;
    EXPECT_LE(node.wait_ns, node.duration_ns) << node.name;
    EXPECT_LE(node.start_ns + node.duration_ns, profile.wall_ns) << node.name;
    EXPECT_GE(node.cores, 1) << node.name;
    if (&node != &optimizer) {
      EXPECT_LE(node.start_ns + node.duration_ns, optimizer.start_ns) << node.name;
    }
  }
  EXPECT_LE(profile.BusyNanos(), profile.wall_ns);

  // The convolutions are oneDNN primitives; accuracy is a kernel of our own.
  EXPECT_GE(by_name["c1"]->onednn_primitives, 1);
  EXPECT_GE(by_name["c3"]->onednn_primitives, 1);
  EXPECT_EQ(by_name["accuracy"]->onednn_primitives, 0);
  // Plain outputs are their shape's bytes: logits [64, 10], the loss and accuracy scalars.
  EXPECT_EQ(by_name["logits"]->output_bytes, kRows * 10 * 4);
  EXPECT_EQ(by_name["accuracy"]->output_bytes, 4);
  // A blocked layout may pad, never shrink: c1 [64, 6, 28, 28].
  EXPECT_GE(by_name["c1"]->output_bytes, kRows * 6 * 28 * 28 * 4);
}

// The per-node times of a LeNet step add up to its time within 10%: what the nodes do not
// cover (finding the plan, starting nodes, the optimizer's snapshot) is small. The best of ten
// steps, so that a step the machine's other work interrupted between two nodes does not count.
TEST_F(LeNetProfileTest, TheNodesCoverTheStepToWithinTenPercent) {
  Step();  // compiles the plan
  double best = 0;
  for (int i = 0; i < 10; ++i) {
    const RunProfile profile = Step();
    best = std::max(
        best, static_cast<double>(profile.BusyNanos()) / static_cast<double>(profile.wall_ns));
  }
  std::cout << "LeNet-5 step, batch " << kRows << ": the nodes cover " << 100 * best
            << "% of the step (the best of 10)\n";
  EXPECT_GE(best, 0.9);
  EXPECT_LE(best, 1.0);
}

TEST_F(LeNetProfileTest, InferenceAndGradientsProfileTheirOwnNodesOnly) {
  RunProfile infer;
  RunOptions run;
  run.profile = &infer;
  Tensor five = images_;
  five.KeepRows(5);
  ASSERT_TRUE(trainer_->Infer({{"images", &five}}, {"logits"}, run).ok());
  std::set<std::string> names;
  for (const NodeProfile& node : infer.nodes) {
    names.insert(node.name);
    EXPECT_EQ(node.phase, ProfilePhase::kForward);
  }
  EXPECT_EQ(names, (std::set<std::string>{"c1", "c1_relu", "s2", "c3", "c3_relu", "s4", "s4_flat",
                                          "f5", "f5_relu", "f6", "f6_relu", "logits"}));
  EXPECT_GT(infer.wall_ns, 0);

  RunProfile gradients;
  run.profile = &gradients;
  ASSERT_TRUE(trainer_->ComputeGradients(Feeds(), run).ok());
  EXPECT_TRUE(std::none_of(gradients.nodes.begin(), gradients.nodes.end(), [](const auto& node) {
    return node.phase == ProfilePhase::kOptimizer;
  }));
  EXPECT_TRUE(std::any_of(gradients.nodes.begin(), gradients.nodes.end(),
                          [](const auto& node) { return node.phase == ProfilePhase::kBackward; }));
  EXPECT_EQ(trainer_->parameters()->step, 0);
}

}  // namespace
}  // namespace backflow
