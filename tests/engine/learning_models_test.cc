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

// Under ThreadSanitizer every step is many times slower: half the steps, and the threshold
// measured for that many (0.67 for seeds (1, 7) in release).
#ifdef BACKFLOW_TSAN
constexpr int kResNetSteps = 150;
constexpr double kResNetAccuracy = 0.55;
#else
constexpr int kResNetSteps = 300;
// Measured (release, 2 cores): 0.744, 0.756 and 0.779 for (model seed, batch seed) (1, 7),
// (2, 8) and (3, 9); LeNet-5 (learning_test.cc) reaches about 0.7 in 200 steps. Chance: 0.1.
constexpr double kResNetAccuracy = 0.70;
#endif

TEST(LearningModelsTest, ResNetFashionMnistBeatsThresholdHeldOut) {
  constexpr int kSteps = kResNetSteps;
  constexpr int64_t kBatch = 64;
  StatusOr<Dataset> train = LoadFashionMnist(kFashionMnistDir, /*train=*/true, kSteps * kBatch);
  StatusOr<Dataset> test = LoadFashionMnist(kFashionMnistDir, /*train=*/false, /*limit=*/1000);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  std::unique_ptr<Trainer> trainer = LoadModel(
      "resnet_fmnist", {.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.05, .momentum = 0.9},
      /*seed=*/1);
  ASSERT_NE(trainer, nullptr);
  StatusOr<BatchIterator> batches =
      BatchIterator::Create(*train, {.batch_size = kBatch, .seed = 7});
  ASSERT_TRUE(batches.ok());
  const auto start = std::chrono::steady_clock::now();
  Tensor images, float_labels;
  double first_loss = 0, loss = 0;
  for (int step = 0; step < kSteps; ++step) {
    ASSERT_TRUE(batches->Next(&images, &float_labels)) << "one epoch holds exactly kSteps batches";
    const Tensor labels = Int64Labels(float_labels);
    StatusOr<StepResult> result = trainer->Step({{"images", &images}, {"labels", &labels}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_TRUE(std::isfinite(result->loss)) << "step " << step + 1;
    if (step == 0) first_loss = result->loss;
    loss = result->loss;
  }
  const double train_seconds = Elapsed(start);
  const Tensor test_labels = Int64Labels(test->labels);
  StatusOr<std::vector<Tensor>> held_out =
      trainer->Infer({{"images", &test->images}, {"labels", &test_labels}}, {"accuracy"});
  ASSERT_TRUE(held_out.ok()) << held_out.status().ToString();
  const double accuracy = (*held_out)[0].at(0);
  std::cout << "resnet_fmnist: loss " << first_loss << " -> " << loss
            << ", test accuracy (1000 images) " << accuracy << ", "
            << train_seconds / kSteps * 1e3 << " ms/step\n";
  EXPECT_GT(accuracy, kResNetAccuracy);
  EXPECT_LT(loss, 0.5 * first_loss);
}

}  // namespace
}  // namespace backflow
