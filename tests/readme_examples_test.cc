// The README's C++ examples, verbatim apart from the assertions, so the README stays true.
#include <gtest/gtest.h>

#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/autodiff/autodiff.h"
#include "engine/data/dataset.h"
#include "engine/exec/program.h"

namespace {

using namespace backflow;  // NOLINT: as the README writes it

const std::string kRoot = std::string(BACKFLOW_SOURCE_DIR) + "/";

TEST(ReadmeExamples, UsingTheEngine) {
  StatusOr<v1::Graph> proto = LoadGraphText(kRoot + "models/seeds/add_mul.pbtxt");
  auto graph = std::make_shared<Graph>(*ImportGraph(*proto));
  const ValueId wrt[] = {*graph->Find("x"), *graph->Find("y"), *graph->Find("z")};
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, graph->loss(), wrt);
  Program program(graph);  // thread-safe; caches one compiled plan per shape set

  Tensor x = Tensor::Scalar(DType::kFloat64, -2), y = Tensor::Scalar(DType::kFloat64, 5),
         z = Tensor::Scalar(DType::kFloat64, -4);
  std::vector<ValueId> fetches = {graph->loss()};
  fetches.insert(fetches.end(), grads->begin(), grads->end());
  StatusOr<std::vector<Tensor>> out = program.Run({{"x", &x}, {"y", &y}, {"z", &z}}, fetches);
  // out: f = -12, df/dx = -4, df/dy = -4, df/dz = 3
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  std::vector<double> values;
  for (const Tensor& t : *out) values.push_back(t.at(0));
  EXPECT_EQ(values, (std::vector<double>{-12, -4, -4, 3}));
}

TEST(ReadmeExamples, TrainingFromCpp) {
  StatusOr<v1::Graph> proto = LoadGraphText(kRoot + "models/lenet5.pbtxt");
  TrainerOptions options;
  options.optimizer = {.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
  options.metrics = {"accuracy"};
  std::unique_ptr<Trainer> trainer = std::move(*Trainer::Create(*ImportGraph(*proto), options));

  // The README trains on all 60000 images; a prefix keeps this test short.
  Dataset train = *LoadFashionMnist(kFashionMnistDir, /*train=*/true, /*limit=*/256);
  BatchIterator batches = *BatchIterator::Create(train, {.batch_size = 64});
  Tensor images, labels;
  int steps = 0;
  while (batches.Next(&images, &labels)) {  // one epoch
    StatusOr<StepResult> step = trainer->Step({{"images", &images}, {"labels", &labels}});
    // step->loss, step->metrics["accuracy"]; trainer->parameters() is the current snapshot
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    EXPECT_GT(step->loss, 0.0);
    EXPECT_EQ(step->step, ++steps);
  }
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(trainer->parameters()->step, 4);
}

}  // namespace
