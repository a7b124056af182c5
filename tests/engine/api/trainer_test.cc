#include "engine/api/trainer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "engine/api/import.h"
#include "engine/gates/builtin.h"

namespace backflow {
namespace {

// y = x * w + b fitted to t = 3x - 1 with squared error; "w_times_two" is a scalar metric.
Graph LinearGraph() {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim});
  const ValueId t = *g.AddPlaceholder("t", Shape{kBatchDim});
  const ValueId w = *g.AddParameter("w", Shape{});
  const ValueId b = *g.AddParameter("b", Shape{});
  const ValueId xw = *g.AddNode("xw", "mul", {x, w});
  const ValueId y = *g.AddNode("y", "add", {xw, b});
  const ValueId loss = *g.AddNode("loss", "squared_error", {y, t},
                                  Attributes{{"reduction", std::string("mean")}});
  (void)*g.AddNode("w_times_two", "mul_scalar", {w}, Attributes{{"a", 2.0}});
  g.AddOutput(y);
  g.set_loss(loss);
  return g;
}

struct Batch {
  Tensor x = Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{-1, 0, 1, 2});
  Tensor t = Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{-4, -1, 2, 5});
  FeedMap feeds() const { return {{"x", &x}, {"t", &t}}; }
};

std::unique_ptr<Trainer> MakeTrainer(double lr = 0.1) {
  TrainerOptions options;
  options.optimizer.learning_rate = lr;
  options.metrics = {"w_times_two"};
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(LinearGraph(), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  return std::move(*trainer);
}

// torch.optim skips a parameter whose .grad is None: a parameter the loss does not depend on
// keeps its value under weight decay (SGD's L2 and AdamW's decoupled decay alike), while the
// parameters the loss reaches decay as usual.
TEST(TrainerTest, WeightDecaySkipsParametersTheLossDoesNotReach) {
  for (OptimizerConfig::Kind kind : {OptimizerConfig::Kind::kSgd, OptimizerConfig::Kind::kAdamW}) {
    // y = x * w fitted to t = 2x, starting at w = 2: the loss gradient is 0, so only weight decay
    // moves w. "unused" feeds a node the loss does not read.
    Graph g(BuiltinGates());
    const InitializerSpec two{.kind = InitializerSpec::Kind::kConstant, .a = 2.0};
    const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim});
    const ValueId t = *g.AddPlaceholder("t", Shape{kBatchDim});
    const ValueId w = *g.AddParameter("w", Shape{}, two);
    const ValueId unused = *g.AddParameter("unused", Shape{3}, two);
    const ValueId y = *g.AddNode("y", "mul", {x, w});
    g.set_loss(*g.AddNode("loss", "squared_error", {y, t}));
    g.AddOutput(*g.AddNode("side", "mul_scalar", {unused}, Attributes{{"a", 3.0}}));
    TrainerOptions options;
    options.optimizer = {.kind = kind, .learning_rate = 0.1, .weight_decay = 0.5};
    options.dtype = DType::kFloat64;
    StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(g), options);
    ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
    const Tensor xs = Tensor::FromValues(DType::kFloat64, Shape{4}, std::vector<double>{-1, 0, 1, 2});
    const Tensor ts = Tensor::FromValues(DType::kFloat64, Shape{4}, std::vector<double>{-2, 0, 2, 4});
    StatusOr<StepResult> step = (*trainer)->Step({{"x", &xs}, {"t", &ts}}, {.return_gradients = true});
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    // ComputeGradients' contract is unchanged: zeros for what the loss does not reach.
    EXPECT_EQ(step->gradients.at("unused").ToDoubles(), (std::vector<double>{0, 0, 0}));
    std::shared_ptr<const ParameterSnapshot> p = (*trainer)->parameters();
    // SGD: 2 - 0.1 * (0 + 0.5 * 2); AdamW: 2 * (1 - 0.1 * 0.5), then an Adam step of 0.
    EXPECT_DOUBLE_EQ(p->values.at("w").at(0), 1.9);
    EXPECT_EQ(p->values.at("unused").ToDoubles(), (std::vector<double>{2, 2, 2}));
  }
}

TEST(TrainerTest, StepsFitTheLineAndCountSteps) {
  auto trainer = MakeTrainer();
  Batch batch;
  // Zero-initialised w and b: the first loss is 1/2 * mean(t^2) = 1/2 * 46/4.
  StatusOr<StepResult> first = trainer->Step(batch.feeds());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FLOAT_EQ(first->loss, 5.75f);
  EXPECT_EQ(first->step, 1);
  EXPECT_TRUE(first->gradients.empty());  // not asked for
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  std::shared_ptr<const ParameterSnapshot> p = trainer->parameters();
  EXPECT_EQ(p->step, 301);
  EXPECT_NEAR(p->values.at("w").at(0), 3.0, 1e-4);
  EXPECT_NEAR(p->values.at("b").at(0), -1.0, 1e-4);
  StatusOr<StepResult> last = trainer->Step(batch.feeds());
  EXPECT_NEAR(last->metrics.at("w_times_two"), 6.0, 1e-3);
  EXPECT_LT(last->loss, 1e-8);
}

TEST(TrainerTest, GradientsWithoutAnUpdate) {
  auto trainer = MakeTrainer();
  Batch batch;
  StatusOr<StepResult> g = trainer->ComputeGradients(batch.feeds());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  // dL/dw = mean((y - t) x) = mean(-t x) at w = b = 0; dL/db = mean(-t).
  EXPECT_FLOAT_EQ(g->gradients.at("w").at(0), -(4 + 0 + 2 + 10) / 4.0f);
  EXPECT_FLOAT_EQ(g->gradients.at("b").at(0), -(-4 - 1 + 2 + 5) / 4.0f);
  EXPECT_EQ(trainer->parameters()->step, 0);
  EXPECT_EQ(trainer->parameters()->values.at("w").at(0), 0.0);
}

TEST(TrainerTest, AStepNeverChangesAPublishedSnapshot) {
  auto trainer = MakeTrainer();
  Batch batch;
  std::shared_ptr<const ParameterSnapshot> before = trainer->parameters();
  ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  EXPECT_EQ(before->step, 0);
  EXPECT_EQ(before->values.at("w").at(0), 0.0);
  EXPECT_NE(trainer->parameters()->values.at("w").at(0), 0.0);
}

// Writers publish snapshots whose w and b are equal; readers must never see them differ.
TEST(TrainerTest, ReadersNeverSeeATornSnapshot) {
  auto trainer = MakeTrainer();
  Batch batch;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        std::shared_ptr<const ParameterSnapshot> p = trainer->parameters();
        if (p->values.at("w").at(0) != p->values.at("b").at(0)) ++torn;
        StatusOr<std::vector<Tensor>> y = trainer->Infer(batch.feeds(), {"y"});
        if (!y.ok()) ++torn;
        ++reads;
      }
    });
  }
  // Bounded: at least 200 updates, until the readers have read 200 times or 10 s have passed.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int k = 0;
  while (k < 200 || (reads.load() < 200 && std::chrono::steady_clock::now() < give_up)) {
    Tensor v = Tensor::Scalar(DType::kFloat32, ++k);
    ASSERT_TRUE(trainer->SetParameters({{"w", v}, {"b", v}}).ok());
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GE(reads.load(), 200);
  EXPECT_EQ(trainer->parameters()->values.at("w").at(0), k);
}

TEST(TrainerTest, ErrorsNameWhatIsWrong) {
  auto trainer = MakeTrainer();
  Batch batch;
  FeedMap with_param = batch.feeds();
  Tensor w = Tensor::Scalar(DType::kFloat32, 1);
  with_param["w"] = &w;
  EXPECT_EQ(trainer->Step(with_param).status().message(),
            "feed 'w' is a parameter; the model supplies it");
  EXPECT_EQ(trainer->SetParameters({{"nope", w}}).code(), StatusCode::kNotFound);
  Tensor vec = Tensor(DType::kFloat32, Shape{2});
  EXPECT_EQ(trainer->SetParameters({{"w", vec}}).message(),
            "parameter 'w': got float32[2], expected float32[]");
  FeedMap missing = {{"x", &batch.x}};
  EXPECT_EQ(trainer->Step(missing).status().message(), "placeholder 't' is needed but was not fed");
  EXPECT_EQ(trainer->parameters()->step, 0);  // failed steps change nothing

  Graph no_loss = LinearGraph();
  no_loss.set_loss(kNoId);
  auto inference_only = Trainer::Create(std::move(no_loss), TrainerOptions{});
  ASSERT_TRUE(inference_only.ok());
  EXPECT_EQ((*inference_only)->Step(batch.feeds()).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*inference_only)->Infer(batch.feeds(), {"y"}).ok());
}

TEST(TrainerTest, SetParametersIfStepRefusesAStaleWrite) {
  auto trainer = MakeTrainer();
  Batch batch;
  ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  const Tensor three = Tensor::Scalar(DType::kFloat32, 3);
  EXPECT_EQ(trainer->SetParameters({{"w", three}}, /*if_step=*/0).message(),
            "parameters are at step 1, not 0");
  EXPECT_NE(trainer->parameters()->values.at("w").at(0), 3.0);
  ASSERT_TRUE(trainer->SetParameters({{"w", three}}, /*if_step=*/1).ok());
  EXPECT_EQ(trainer->parameters()->values.at("w").at(0), 3.0);
  EXPECT_EQ(trainer->parameters()->step, 1);  // a write is not a step
}

// Bitwise copies of a snapshot's values, to compare after a refused step.
std::map<std::string, std::vector<double>> Values(const ParameterSnapshot& snapshot) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, t] : snapshot.values) out[name] = t.ToDoubles();
  return out;
}

TEST(TrainerTest, AStepThatWouldMakeAParameterNonFiniteIsNotApplied) {
  auto trainer = MakeTrainer();
  Batch batch;
  ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  const std::shared_ptr<const ParameterSnapshot> before = trainer->parameters();
  const auto values = Values(*before);
  // float32 rounds 1e300 to infinity: every updated value would be infinite or NaN.
  StatusOr<StepResult> result = trainer->Step(batch.feeds(), {.learning_rate = 1e300});
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "step 2: update would make parameter 'b' non-finite; not applied");
  EXPECT_EQ(trainer->parameters(), before);  // the same snapshot, still published
  EXPECT_EQ(Values(*trainer->parameters()), values);
  EXPECT_EQ(trainer->optimizer().steps(), 1);
  // The next good step is step 2.
  StatusOr<StepResult> next = trainer->Step(batch.feeds());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->step, 2);
}

TEST(TrainerTest, StepIfStepAppliesAtMostOnce) {
  auto trainer = MakeTrainer();
  Batch batch;
  StatusOr<StepResult> first = trainer->Step(batch.feeds(), {.if_step = 0});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->step, 1);
  const std::shared_ptr<const ParameterSnapshot> after = trainer->parameters();
  // A retry of the same step: refused, nothing run or applied.
  StatusOr<StepResult> retry = trainer->Step(batch.feeds(), {.if_step = 0});
  ASSERT_EQ(retry.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(retry.status().message(), "parameters are at step 1, not 0");
  EXPECT_EQ(trainer->parameters(), after);
  EXPECT_EQ(trainer->optimizer().steps(), 1);
  StatusOr<StepResult> second = trainer->Step(batch.feeds(), {.if_step = 1});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->step, 2);
}

TEST(TrainerTest, InferOnAGivenSnapshotIgnoresLaterSteps) {
  auto trainer = MakeTrainer();
  Batch batch;
  ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  std::shared_ptr<const ParameterSnapshot> before = trainer->parameters();
  StatusOr<std::vector<Tensor>> then = trainer->Infer(batch.feeds(), {"y"});
  ASSERT_TRUE(then.ok());
  ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  StatusOr<std::vector<Tensor>> replay = trainer->Infer(*before, batch.feeds(), {"y"});
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ((*replay)[0].at(i), (*then)[0].at(i));
  Tensor w = Tensor::Scalar(DType::kFloat32, 1);
  FeedMap with_param = batch.feeds();
  with_param["w"] = &w;
  EXPECT_EQ(trainer->Infer(*before, with_param, {"y"}).status().message(),
            "input 'w' is a parameter; the model supplies it");
}

// A checkpoint taken after 3 steps and restored after 5 more makes the next steps repeat
// bitwise: parameters, momentum and the step count all came back.
TEST(TrainerTest, CheckpointRestoreRepeatsTheSameSteps) {
  TrainerOptions options;
  options.optimizer.learning_rate = 0.05;
  options.optimizer.momentum = 0.9;
  auto trainer = std::move(*Trainer::Create(LinearGraph(), options));
  Batch batch;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(trainer->Step(batch.feeds()).ok());
  Trainer::Checkpoint saved = trainer->TakeCheckpoint();
  EXPECT_EQ(saved.parameters->step, 3);
  EXPECT_EQ(saved.optimizer_steps, 3);
  EXPECT_EQ(saved.optimizer_state.count("momentum/w"), 1u);
  std::vector<double> first;
  for (int i = 0; i < 5; ++i) first.push_back(trainer->Step(batch.feeds())->loss);
  ASSERT_TRUE(trainer->RestoreCheckpoint(saved).ok());
  EXPECT_EQ(trainer->parameters()->step, 3);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(trainer->Step(batch.feeds())->loss, first[i]) << i;

  Trainer::Checkpoint bad = saved;
  auto partial = std::make_shared<ParameterSnapshot>(*saved.parameters);
  partial->values.erase("b");
  bad.parameters = partial;
  EXPECT_EQ(trainer->RestoreCheckpoint(bad).message(), "checkpoint lacks parameter 'b'");
  EXPECT_EQ(trainer->parameters()->step, 8);  // unchanged by the failed restore
}

// models/staged_circuit.pbtxt (what bench/run times against the transport floor): the seeds'
// staged circuit with x and y as parameters at (3, -4). One step with an empty batch reports
// f(3, -4) as its loss and the GOLDEN gradients, and moves x and y by SGD with momentum.
TEST(TrainerTest, StagedCircuitModelStepsOnTheSeedsFunction) {
  StatusOr<v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/staged_circuit.pbtxt");
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  TrainerOptions options;
  options.dtype = DType::kFloat64;
  options.optimizer = {.kind = OptimizerConfig::Kind::kSgd, .learning_rate = 0.01, .momentum = 0.9};
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*std::move(graph), options);
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  StatusOr<StepResult> first = (*trainer)->Step({}, StepOptions{.return_gradients = true});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_NEAR(first->loss, 1.5456448841, 1e-9);
  EXPECT_NEAR(first->gradients.at("x").at(0), 2.0595697956, 1e-9);
  EXPECT_NEAR(first->gradients.at("y").at(0), 1.5922327515, 1e-9);
  const ParameterMap& after = (*trainer)->parameters()->values;
  EXPECT_NEAR(after.at("x").at(0), 3 - 0.01 * 2.0595697956, 1e-9);
  EXPECT_NEAR(after.at("y").at(0), -4 - 0.01 * 1.5922327515, 1e-9);
  // The second step starts from the moved point, with momentum: the loss changes.
  StatusOr<StepResult> second = (*trainer)->Step({});
  ASSERT_TRUE(second.ok());
  EXPECT_LT(second->loss, first->loss);
}

// Note [Training and inference mode]: a step and ComputeGradients drop, Infer does not; the mask
// is a function of (seed, step, node), so the gradient at one snapshot repeats exactly and the
// next step draws another mask.
TEST(TrainerModeTest, StepsRunInTrainingModeAndInferInInference) {
  Graph g(BuiltinGates());
  const InitializerSpec one{.kind = InitializerSpec::Kind::kConstant, .a = 1.0};
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 32});
  const ValueId w = *g.AddParameter("w", Shape{32}, one);
  const ValueId xw = *g.AddNode("xw", "mul", {x, w});
  const ValueId drop = *g.AddNode("drop", "dropout", {xw}, Attributes{{"p", 0.5}});
  g.set_loss(*g.AddNode("loss", "sum", {drop}));
  TrainerOptions options;
  options.seed = 11;
  options.optimizer.learning_rate = 0.01;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(g), options);
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  std::vector<double> ones(64, 1.0);
  const Tensor xs = Tensor::FromValues(DType::kFloat32, Shape{2, 32}, ones);
  const FeedMap feeds{{"x", &xs}};

  StatusOr<std::vector<Tensor>> inferred = (*trainer)->Infer(feeds, {"drop"});
  ASSERT_TRUE(inferred.ok()) << inferred.status().ToString();
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ((*inferred)[0].at(i), 1.0);

  StatusOr<StepResult> a = (*trainer)->ComputeGradients(feeds);
  StatusOr<StepResult> b = (*trainer)->ComputeGradients(feeds);
  ASSERT_TRUE(a.ok() && b.ok());
  const Tensor& ga = a->gradients.at("w");
  int zeros = 0;
  for (int64_t i = 0; i < 32; ++i) {
    EXPECT_EQ(ga.at(i), b->gradients.at("w").at(i));
    EXPECT_TRUE(ga.at(i) == 0.0 || ga.at(i) == 2.0 || ga.at(i) == 4.0) << ga.at(i);
    zeros += ga.at(i) == 0.0 ? 1 : 0;
  }
  EXPECT_GT(zeros, 0);
  StatusOr<StepResult> step = (*trainer)->Step(feeds, StepOptions{.return_gradients = true});
  ASSERT_TRUE(step.ok());
  StatusOr<StepResult> next = (*trainer)->ComputeGradients(feeds);
  ASSERT_TRUE(next.ok());
  bool differs = false;
  for (int64_t i = 0; i < 32; ++i) {
    EXPECT_EQ(step->gradients.at("w").at(i), ga.at(i)) << "the step at snapshot 0 drew mask 0";
    differs = differs || next->gradients.at("w").at(i) != ga.at(i);
  }
  EXPECT_TRUE(differs) << "step 1 draws a new mask";
}

}  // namespace
}  // namespace backflow
