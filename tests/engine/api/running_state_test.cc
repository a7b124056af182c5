// Note [Running state] in engine/api/trainer.h, through a test gate: "shift"(x, s) = x + s, whose
// training step moves its state s to s + mean(x) (a running sum of batch means). Batch norm's
// own update values are checked in tests/engine/gates/batch_norm_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/api/trainer.h"
#include "engine/gates/builtin.h"
#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

class ShiftGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return BuiltinGates().Find("add")->Compile(ctx);
  }
  Status Backward(BackwardContext& ctx) const override {
    if (ctx.needs_grad(0)) ctx.SetGrad(0, ctx.output_grad());
    return Status::Ok();
  }
  Status AppendStateUpdates(StateUpdateContext& ctx) const override {
    if (!ctx.is_state(1)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(ValueId mean, ctx.Emit("mean", {ctx.input(0)}));
    BF_ASSIGN_OR_RETURN(ValueId next, ctx.Emit("add", {ctx.input(1), mean}));
    return ctx.SetUpdate(1, next);
  }
};

const GateRegistry& Registry() {
  static const GateRegistry* registry = [] {
    auto* r = new GateRegistry();
    RegisterBuiltinGates(*r);
    (void)r->Register("shift", std::make_unique<ShiftGate>());
    return r;
  }();
  return *registry;
}

// y = shift(x * w, s), loss = sum(y); s starts at 10.
Graph ShiftGraph(bool twice = false) {
  Graph g(Registry());
  const InitializerSpec one{.kind = InitializerSpec::Kind::kConstant, .a = 1.0};
  const InitializerSpec ten{.kind = InitializerSpec::Kind::kConstant, .a = 10.0};
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim});
  const ValueId w = *g.AddParameter("w", Shape{}, one);
  const ValueId s = *g.AddState("s", Shape{}, ten);
  const ValueId xw = *g.AddNode("xw", "mul", {x, w});
  ValueId y = *g.AddNode("y", "shift", {xw, s});
  if (twice) y = *g.AddNode("y2", "shift", {y, s});
  g.AddOutput(y);
  g.set_loss(*g.AddNode("loss", "sum", {y}));
  return g;
}

std::unique_ptr<Trainer> MakeTrainer(Graph graph) {
  TrainerOptions options;
  options.dtype = DType::kFloat64;
  options.optimizer.learning_rate = 0.5;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(graph), options);
  EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
  return trainer.ok() ? std::move(*trainer) : nullptr;
}

Tensor Batch(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::FromValues(DType::kFloat64, Shape{n}, v);
}

TEST(RunningStateTest, StepAdvancesStateBesideParametersAndOnlyAStepDoes) {
  std::unique_ptr<Trainer> trainer = MakeTrainer(ShiftGraph());
  ASSERT_NE(trainer, nullptr);
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 10.0);
  EXPECT_EQ(trainer->parameters()->values.count("s"), 0u) << "state is not a parameter";
  const Tensor x = Batch({1, 2, 3});
  const FeedMap feeds{{"x", &x}};

  ASSERT_TRUE(trainer->ComputeGradients(feeds).ok());
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 10.0) << "ComputeGradients publishes nothing";

  StatusOr<StepResult> step = trainer->Step(feeds);
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  EXPECT_EQ(step->loss, 1 + 2 + 3 + 3 * 10.0);
  std::shared_ptr<const ParameterSnapshot> after = trainer->parameters();
  EXPECT_EQ(after->step, 1);
  EXPECT_EQ(after->state.at("s").at(0), 10.0 + 2.0) << "s + mean(x * w) with w = 1";
  EXPECT_EQ(after->values.at("w").at(0), 1.0 - 0.5 * 6.0) << "dL/dw = sum(x)";

  // Inference reads the new state and the new parameters together.
  StatusOr<std::vector<Tensor>> y = trainer->Infer(feeds, {"y"});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ((*y)[0].at(0), 1 * -2.0 + 12.0);

  ASSERT_TRUE(trainer->Step(feeds).ok());
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 12.0 + (-2.0 * 2));
}

TEST(RunningStateTest, SetParametersAndCheckpointsCarryState) {
  std::unique_ptr<Trainer> trainer = MakeTrainer(ShiftGraph());
  ASSERT_NE(trainer, nullptr);
  const Tensor x = Batch({4});
  const FeedMap feeds{{"x", &x}};
  Trainer::Checkpoint saved = trainer->TakeCheckpoint();
  ASSERT_TRUE(trainer->SetParameters({{"s", Tensor::FromValues(DType::kFloat64, Shape{}, std::vector<double>{5})}}).ok());
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 5.0);
  Status wrong = trainer->SetParameters({{"s", Batch({5, 6})}});
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.message(), ::testing::HasSubstr("state 's'"));
  ASSERT_TRUE(trainer->Step(feeds).ok());
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 9.0);

  ASSERT_TRUE(trainer->RestoreCheckpoint(saved).ok());
  EXPECT_EQ(trainer->parameters()->state.at("s").at(0), 10.0);
  // A checkpoint without the state is refused, changing nothing.
  auto stateless = std::make_shared<ParameterSnapshot>(*saved.parameters);
  stateless->state.clear();
  Trainer::Checkpoint bad = saved;
  bad.parameters = stateless;
  Status refused = trainer->RestoreCheckpoint(bad);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(), "checkpoint lacks state 's'");
}

TEST(RunningStateTest, FeedingStateIsRefused) {
  std::unique_ptr<Trainer> trainer = MakeTrainer(ShiftGraph());
  ASSERT_NE(trainer, nullptr);
  const Tensor x = Batch({1});
  const Tensor s = Tensor::FromValues(DType::kFloat64, Shape{}, std::vector<double>{0});
  StatusOr<StepResult> step = trainer->Step({{"x", &x}, {"s", &s}});
  ASSERT_FALSE(step.ok());
  EXPECT_THAT(step.status().message(), ::testing::HasSubstr("'s' is running state"));
}

TEST(RunningStateTest, TwoNodesMayNotUpdateOneState) {
  TrainerOptions options;
  StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(ShiftGraph(/*twice=*/true), options);
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(trainer.status().message(),
              ::testing::HasSubstr("node 'y2': state 's' is already updated by another node"));
}

}  // namespace
}  // namespace backflow
