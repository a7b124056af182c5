#include "engine/optim/optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace backflow {
namespace {

using Kind = OptimizerConfig::Kind;
using Params = std::unordered_map<std::string, Tensor>;
using ::testing::DoubleNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

Tensor T64(std::vector<double> values) {
  const Shape shape{static_cast<int64_t>(values.size())};
  return Tensor::FromValues(DType::kFloat64, shape, values);
}

std::unique_ptr<Optimizer> Make(const OptimizerConfig& config) {
  StatusOr<std::unique_ptr<Optimizer>> opt = Optimizer::Create(config);
  EXPECT_TRUE(opt.ok()) << opt.status().ToString();
  return opt.ok() ? std::move(*opt) : nullptr;
}

// Runs one step per entry of `grads` on p = {1, -2} and returns p.
std::vector<double> RunSteps(const OptimizerConfig& config,
                             const std::vector<std::vector<double>>& grads) {
  std::unique_ptr<Optimizer> opt = Make(config);
  if (!opt) return {};
  Params params{{"p", T64({1, -2})}};
  for (const std::vector<double>& g : grads) {
    const Tensor grad = T64(g);
    const Status status = opt->Step(params, {{"p", &grad}});
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
  EXPECT_EQ(opt->steps(), static_cast<int64_t>(grads.size()));
  return params.at("p").ToDoubles();
}

const std::vector<std::vector<double>> kTwoSteps = {{0.5, 1}, {1, -1}};

struct StepCase {
  std::string name;
  OptimizerConfig config;
  std::vector<std::vector<double>> grads;
  std::vector<double> want;  // hand-computed
};
void PrintTo(const StepCase& c, std::ostream* os) { *os << c.name; }

class OptimizerStepTest : public ::testing::TestWithParam<StepCase> {};

TEST_P(OptimizerStepTest, MatchesHandComputedUpdate) {
  const StepCase& c = GetParam();
  EXPECT_THAT(RunSteps(c.config, c.grads), Pointwise(DoubleNear(1e-12), c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, OptimizerStepTest,
    ::testing::Values(
        // p -= 0.1 g
        StepCase{"sgd", {.learning_rate = 0.1}, {{0.5, 1}}, {0.95, -2.1}},
        // g + 0.1 p = (0.6, 0.8)
        StepCase{"sgd_weight_decay",
                 {.learning_rate = 0.1, .weight_decay = 0.1},
                 {{0.5, 1}},
                 {0.94, -2.08}},
        // v1 = g1 = (0.5, 1); v2 = 0.9 v1 + g2 = (1.45, -0.1).
        StepCase{"sgd_momentum",
                 {.learning_rate = 0.1, .momentum = 0.9},
                 kTwoSteps,
                 {1 - 0.05 - 0.145, -2 - 0.1 + 0.01}},
        // Updates g + 0.9 v: (0.95, 1.9), then (1 + 1.305, -1 - 0.09).
        StepCase{"sgd_nesterov",
                 {.learning_rate = 0.1, .momentum = 0.9, .nesterov = true},
                 kTwoSteps,
                 {1 - 0.095 - 0.2305, -2 - 0.19 + 0.109}},
        // Step 1 moves each element by lr * g / (|g| + eps) after bias correction.
        StepCase{"adam_one_step",
                 {.kind = Kind::kAdam, .learning_rate = 0.1},
                 {{0.5, 1}},
                 {1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 - 0.1 * 1 / (1 + 1e-8)}},
        // Step 2, element 0: m = 0.145, v = 0.00124975, m/(1-0.9^2) = 0.76316,
        // sqrt(v/(1-0.999^2)) = 0.79069.
        StepCase{"adam_two_steps",
                 {.kind = Kind::kAdam, .learning_rate = 0.1},
                 kTwoSteps,
                 {0.8034818006385094, -2.0947368411578946}},
        StepCase{"adam_l2_weight_decay",
                 {.kind = Kind::kAdam, .learning_rate = 0.1, .weight_decay = 0.1},
                 kTwoSteps,
                 {0.8025029703202308, -2.074859045356938}},
        // p *= 1 - 0.01 before each Adam update; the moments never see the decay.
        StepCase{"adamw_decoupled_weight_decay",
                 {.kind = Kind::kAdamW, .learning_rate = 0.1, .weight_decay = 0.1},
                 kTwoSteps,
                 {0.7845818006185094, -2.0539368411678947}},
        StepCase{"adamw_without_decay_is_adam",
                 {.kind = Kind::kAdamW, .learning_rate = 0.1},
                 kTwoSteps,
                 {0.8034818006385094, -2.0947368411578946}}),
    [](const ::testing::TestParamInfo<StepCase>& info) { return info.param.name; });

TEST(OptimizerTest, ClipsByTheGlobalNormWithTheExactScale) {
  std::unique_ptr<Optimizer> opt = Make({.learning_rate = 1, .clip_norm = 1, .clip_epsilon = 0});
  Params params{{"a", T64({1})}, {"b", T64({1, 1})}};
  const Tensor ga = T64({3}), gb = T64({4, 0});  // global norm 5: scale 1/5
  ASSERT_TRUE(opt->Step(params, {{"a", &ga}, {"b", &gb}}).ok());
  EXPECT_THAT(params.at("a").ToDoubles(), Pointwise(DoubleNear(1e-15), {1 - 0.6}));
  EXPECT_THAT(params.at("b").ToDoubles(),
              Pointwise(DoubleNear(1e-15), std::vector<double>{1 - 0.8, 1}));

  // Below the limit the gradients pass unscaled.
  std::unique_ptr<Optimizer> loose = Make({.learning_rate = 1, .clip_norm = 5.5});
  Params same{{"a", T64({1})}, {"b", T64({1, 1})}};
  ASSERT_TRUE(loose->Step(same, {{"a", &ga}, {"b", &gb}}).ok());
  EXPECT_EQ(same.at("a").ToDoubles(), std::vector<double>{-2});
  EXPECT_EQ(same.at("b").ToDoubles(), (std::vector<double>{-3, 1}));
}

// The default epsilon is PyTorch's: clip_grad_norm_ scales by max_norm / (norm + 1e-6), also
// just below the limit, where the factor is still below 1.
TEST(OptimizerTest, ClipsAsClipGradNormDoesByDefault) {
  EXPECT_EQ(OptimizerConfig{}.clip_epsilon, 1e-6);
  std::unique_ptr<Optimizer> opt = Make({.learning_rate = 1, .clip_norm = 1});
  Params params{{"a", T64({1})}, {"b", T64({1, 1})}};
  const Tensor ga = T64({3}), gb = T64({4, 0});  // global norm 5
  ASSERT_TRUE(opt->Step(params, {{"a", &ga}, {"b", &gb}}).ok());
  const double scale = 1 / (5 + 1e-6);
  EXPECT_THAT(params.at("a").ToDoubles(), Pointwise(DoubleNear(1e-15), {1 - 3 * scale}));
  EXPECT_THAT(params.at("b").ToDoubles(),
              Pointwise(DoubleNear(1e-15), std::vector<double>{1 - 4 * scale, 1}));
  // A norm of exactly clip_norm is still scaled, by 5 / (5 + 1e-6).
  std::unique_ptr<Optimizer> at_limit = Make({.learning_rate = 1, .clip_norm = 5});
  Params same{{"a", T64({0})}, {"b", T64({0, 0})}};
  ASSERT_TRUE(at_limit->Step(same, {{"a", &ga}, {"b", &gb}}).ok());
  EXPECT_THAT(same.at("a").ToDoubles(), Pointwise(DoubleNear(1e-15), {-3 * 5 / (5 + 1e-6)}));
}

TEST(OptimizerTest, ClippingSurvivesHugeFloat64Gradients) {
  // The sum of squares (1e400) overflows a double; the norm itself (about 1.4e200) does not.
  std::unique_ptr<Optimizer> opt = Make({.learning_rate = 1, .clip_norm = 1});
  Params params{{"p", T64({0, 0})}};
  const Tensor g = T64({1e200, -1e200});
  ASSERT_TRUE(opt->Step(params, {{"p", &g}}).ok());
  EXPECT_THAT(params.at("p").ToDoubles(),
              Pointwise(DoubleNear(1e-15), {-std::sqrt(0.5), std::sqrt(0.5)}));
}

TEST(OptimizerTest, LearningRateOverrideAppliesToOneStep) {
  std::unique_ptr<Optimizer> opt = Make({.learning_rate = 0.1});
  Params params{{"p", T64({1})}};
  const Tensor g = T64({1});
  ASSERT_TRUE(opt->Step(params, {{"p", &g}}, 0.5).ok());
  EXPECT_EQ(params.at("p").at(0), 0.5);
  ASSERT_TRUE(opt->Step(params, {{"p", &g}}).ok());
  EXPECT_NEAR(params.at("p").at(0), 0.4, 1e-15);
  EXPECT_EQ(opt->config().learning_rate, 0.1);
}

TEST(OptimizerTest, Float32ComputesInFloat32) {
  std::unique_ptr<Optimizer> opt = Make({.learning_rate = 0.1, .momentum = 0.9});
  Params params{{"p", Tensor::FromValues(DType::kFloat32, Shape{1}, std::vector<double>{1})}};
  const Tensor g = Tensor::FromValues(DType::kFloat32, Shape{1}, std::vector<double>{0.3});
  ASSERT_TRUE(opt->Step(params, {{"p", &g}}).ok());
  ASSERT_TRUE(opt->Step(params, {{"p", &g}}).ok());
  const float v2 = 0.9f * 0.3f + 0.3f;
  const float want = (1.0f - 0.1f * 0.3f) - 0.1f * v2;
  EXPECT_EQ(params.at("p").dtype(), DType::kFloat32);
  EXPECT_EQ(params.at("p").data<float>()[0], want);
  EXPECT_EQ(opt->State().at("momentum/p").dtype(), DType::kFloat32);
}

// Three steps, checkpoint, two more; against a fresh optimizer restored from the checkpoint.
void ExpectBitExactResume(const OptimizerConfig& config) {
  auto grads_at = [](int step) {
    return Params{{"layer/W", Tensor::FromValues(
                                  DType::kFloat64, Shape{2, 2},
                                  std::vector<double>{0.1 * step, -0.3, 0.7, 1.0 / (step + 1)})},
                  {"b", T64({std::sin(step), std::cos(step)})}};
  };
  auto step = [&](Optimizer& opt, Params& params, int k) {
    const Params g = grads_at(k);
    ASSERT_TRUE(opt.Step(params, {{"layer/W", &g.at("layer/W")}, {"b", &g.at("b")}}).ok());
  };
  std::unique_ptr<Optimizer> first = Make(config);
  Params params{{"layer/W", Tensor::FromValues(DType::kFloat64, Shape{2, 2},
                                               std::vector<double>{0.5, -0.5, 0.25, 2})},
                {"b", T64({0, 1})}};
  for (int k = 0; k < 3; ++k) step(*first, params, k);
  const std::unordered_map<std::string, Tensor> state = first->State();
  Params resumed = params;
  for (int k = 3; k < 5; ++k) step(*first, params, k);

  std::unique_ptr<Optimizer> second = Make(config);
  ASSERT_TRUE(second->RestoreState(state, first->steps() - 2).ok());
  EXPECT_EQ(second->steps(), 3);
  for (int k = 3; k < 5; ++k) step(*second, resumed, k);
  EXPECT_EQ(second->steps(), 5);
  for (const auto& [name, value] : params) {
    EXPECT_TRUE(BitwiseEqual(value, resumed.at(name))) << name;
  }
  const auto a = first->State(), b = second->State();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, value] : a) EXPECT_TRUE(BitwiseEqual(value, b.at(name))) << name;
}

TEST(OptimizerTest, RestoreStateResumesBitExactly) {
  ExpectBitExactResume({.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
  ExpectBitExactResume({.kind = Kind::kAdam, .learning_rate = 0.01, .weight_decay = 0.01});
  ExpectBitExactResume(
      {.kind = Kind::kAdamW, .learning_rate = 0.01, .weight_decay = 0.1, .clip_norm = 0.5});
}

TEST(OptimizerTest, StateNamesItsSlots) {
  std::unique_ptr<Optimizer> adam = Make({.kind = Kind::kAdam});
  Params params{{"W1", T64({1, 2})}};
  const Tensor g = T64({1, 1});
  ASSERT_TRUE(adam->Step(params, {{"W1", &g}}).ok());
  const auto state = adam->State();
  EXPECT_EQ(state.size(), 2u);
  EXPECT_THAT(state.at("adam_m/W1").ToDoubles(), Pointwise(DoubleNear(1e-15), {0.1, 0.1}));
  EXPECT_THAT(state.at("adam_v/W1").ToDoubles(), Pointwise(DoubleNear(1e-15), {0.001, 0.001}));
  std::unique_ptr<Optimizer> sgd = Make({});
  ASSERT_TRUE(sgd->Step(params, {{"W1", &g}}).ok());
  EXPECT_TRUE(sgd->State().empty());  // no momentum, no state
}

struct ConfigCase {
  OptimizerConfig config;
  std::string field;
};

TEST(OptimizerTest, InvalidConfigNamesTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const ConfigCase& c :
       std::vector<ConfigCase>{{{.learning_rate = -1}, "learning_rate"},
                               {{.learning_rate = nan}, "learning_rate"},
                               {{.momentum = 1}, "momentum"},
                               {{.kind = Kind::kAdam, .momentum = 0.9}, "momentum"},
                               {{.nesterov = true}, "nesterov"},
                               {{.weight_decay = -0.1}, "weight_decay"},
                               {{.clip_norm = -1}, "clip_norm"},
                               {{.clip_epsilon = -1e-6}, "clip_epsilon"},
                               {{.kind = Kind::kAdam, .beta1 = 1}, "beta1"},
                               {{.kind = Kind::kAdamW, .beta2 = -0.5}, "beta2"},
                               {{.kind = Kind::kAdam, .epsilon = 0}, "epsilon"},
                               {{.kind = static_cast<Kind>(7)}, "kind"}}) {
    const Status status = ValidateOptimizerConfig(c.config);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(status.message(), HasSubstr(c.field));
    EXPECT_EQ(Optimizer::Create(c.config).status(), status);
  }
  EXPECT_TRUE(ValidateOptimizerConfig({.kind = Kind::kSgd, .beta1 = 2}).ok());  // unused by SGD
}

struct BadStepCase {
  std::string name;
  std::unordered_map<std::string, const Tensor*> grads;
  std::string want;
};

TEST(OptimizerTest, BadGradientsChangeNothing) {
  const Tensor good = T64({1, 1}), wrong_shape = T64({1, 1, 1});
  const Tensor wrong_dtype = good.CastTo(DType::kFloat32);
  const Tensor nan = T64({1, std::nan("")}), inf = T64({INFINITY, 0});
  for (const BadStepCase& c : std::vector<BadStepCase>{
           {"missing",
            {{"a", &good}, {"W9", &good}},
            "parameter 'W9': has a gradient but no value"},
           {"null", {{"a", &good}, {"b", nullptr}}, "parameter 'b': gradient is null"},
           {"shape", {{"a", &good}, {"b", &wrong_shape}}, "parameter 'b': gradient is float64 [3]"},
           {"dtype", {{"a", &good}, {"b", &wrong_dtype}}, "parameter 'b': gradient is float32"},
           {"nan", {{"a", &good}, {"b", &nan}}, "parameter 'b': gradient holds a NaN"},
           {"inf",
            {{"a", &good}, {"b", &inf}},
            "parameter 'b': gradient holds a NaN or infinity"}}) {
    std::unique_ptr<Optimizer> opt = Make({.kind = Kind::kAdam});
    Params params{{"a", T64({1, 2})}, {"b", T64({3, 4})}};
    const Status status = opt->Step(params, c.grads);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(status.message(), HasSubstr(c.want)) << c.name;
    // "a" sorts first and is valid: it must still be untouched, and no state created.
    EXPECT_EQ(params.at("a").ToDoubles(), (std::vector<double>{1, 2})) << c.name;
    EXPECT_EQ(params.at("b").ToDoubles(), (std::vector<double>{3, 4})) << c.name;
    EXPECT_TRUE(opt->State().empty()) << c.name;
    EXPECT_EQ(opt->steps(), 0) << c.name;
  }
}

// Note [Non-finite updates]: a step that would write a NaN or an infinity anywhere changes
// nothing, neither the values nor the optimizer's slots and count.
TEST(OptimizerTest, AnUpdateThatWouldOverflowChangesNothing) {
  const auto f32 = [](std::vector<double> v) {
    return Tensor::FromValues(DType::kFloat32, Shape{static_cast<int64_t>(v.size())}, v);
  };
  // SGD with momentum, one good step first so the slot exists; then a rate of 1e300, which
  // float32 rounds to infinity.
  std::unique_ptr<Optimizer> sgd = Make({.kind = Kind::kSgd, .learning_rate = 0.5, .momentum = 0.5});
  Params params{{"a", f32({1, 2})}, {"b", f32({3, 4})}};
  const Tensor g = f32({1, 1});
  ASSERT_TRUE(sgd->Step(params, {{"a", &g}, {"b", &g}}).ok());
  const std::vector<double> a1 = params.at("a").ToDoubles(), b1 = params.at("b").ToDoubles();
  EXPECT_EQ(a1, (std::vector<double>{0.5, 1.5}));
  const Status status = sgd->Step(params, {{"a", &g}, {"b", &g}}, 1e300);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "update would make parameter 'a' non-finite; not applied");
  EXPECT_EQ(params.at("a").ToDoubles(), a1);
  EXPECT_EQ(params.at("b").ToDoubles(), b1);
  EXPECT_EQ(sgd->steps(), 1);
  EXPECT_EQ(sgd->State().at("momentum/a").ToDoubles(), (std::vector<double>{1, 1}));
  EXPECT_EQ(sgd->State().at("momentum/b").ToDoubles(), (std::vector<double>{1, 1}));

  // Adam: a gradient of 1e22 squares past float32's range in the second moment, while the
  // parameter itself would stay finite (m / sqrt(inf) is 0); the state is what is named.
  std::unique_ptr<Optimizer> adam = Make({.kind = Kind::kAdam});
  Params p2{{"w", f32({1, 2})}};
  const Tensor huge = f32({1, 1e22});
  const Status adam_status = adam->Step(p2, {{"w", &huge}});
  EXPECT_EQ(adam_status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(adam_status.message(),
            "update would make optimizer state 'adam_v/w' of parameter 'w' non-finite; not "
            "applied");
  EXPECT_EQ(p2.at("w").ToDoubles(), (std::vector<double>{1, 2}));
  EXPECT_TRUE(adam->State().empty());
  EXPECT_EQ(adam->steps(), 0);
  // And the optimizer goes on as if the failed step had never been asked for.
  ASSERT_TRUE(adam->Step(p2, {{"w", &g}}).ok());
  EXPECT_EQ(adam->steps(), 1);
}

TEST(OptimizerTest, SettingsThatOverflowFloat32AreNamed) {
  const DType f32 = DType::kFloat32;
  EXPECT_TRUE(ValidateOptimizerForDType({.learning_rate = 1e38, .weight_decay = 1e38}, f32).ok());
  EXPECT_TRUE(ValidateOptimizerForDType({.learning_rate = 1e300}, DType::kFloat64).ok());
  EXPECT_EQ(ValidateOptimizerForDType({.learning_rate = 1e300}, f32).message(),
            "optimizer config: learning_rate must be representable in float32, got 1e+300");
  EXPECT_EQ(ValidateOptimizerForDType({.weight_decay = 1e39}, f32).message(),
            "optimizer config: weight_decay must be representable in float32, got 1e+39");
  const Status decay = ValidateOptimizerForDType(
      {.kind = Kind::kAdamW, .learning_rate = 1e20, .weight_decay = 1e20}, f32);
  EXPECT_EQ(decay.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(decay.message(), HasSubstr("1 - learning_rate * weight_decay (AdamW's decay)"));
  EXPECT_EQ(ValidateOptimizerForDType({.kind = Kind::kAdam, .epsilon = 1e-50}, f32).message(),
            "optimizer config: epsilon must be representable in float32 and above 0 there, got "
            "1e-50");
}

TEST(OptimizerTest, BadLearningRateOverrideIsRejected) {
  std::unique_ptr<Optimizer> opt = Make({});
  Params params{{"p", T64({1})}};
  const Tensor g = T64({1});
  const Status status = opt->Step(params, {{"p", &g}}, -0.1);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("learning_rate"));
  EXPECT_EQ(params.at("p").at(0), 1);
}

TEST(OptimizerTest, RestoredStateOfTheWrongShapeFailsTheStep) {
  std::unique_ptr<Optimizer> opt = Make({.momentum = 0.5});
  ASSERT_TRUE(opt->RestoreState({{"momentum/p", T64({0, 0, 0})}}, 1).ok());
  Params params{{"p", T64({1, 2})}};
  const Tensor g = T64({1, 1});
  const Status status = opt->Step(params, {{"p", &g}});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("optimizer state 'momentum/p' is [3]"));
  EXPECT_EQ(params.at("p").ToDoubles(), (std::vector<double>{1, 2}));
}

TEST(OptimizerTest, RestoreStateRejectsForeignOrIncompleteState) {
  std::unique_ptr<Optimizer> sgd = Make({.momentum = 0.9});
  EXPECT_THAT(sgd->RestoreState({{"adam_m/W", T64({0})}}, 1).message(),
              HasSubstr("'adam_m/W' is not a slot this optimizer keeps"));
  EXPECT_THAT(sgd->RestoreState({{"momentum", T64({0})}}, 1).message(),
              HasSubstr("'momentum' is not a slot"));
  EXPECT_THAT(sgd->RestoreState({}, -1).message(), HasSubstr("step count -1 is negative"));
  std::unique_ptr<Optimizer> adam = Make({.kind = Kind::kAdam});
  EXPECT_THAT(adam->RestoreState({{"adam_m/W", T64({0})}}, 1).message(),
              HasSubstr("'adam_m/W' has no matching 'adam_v/W'"));
  EXPECT_THAT(adam->RestoreState({{"adam_m/W", T64({0})}, {"adam_v/W", T64({0, 0})}}, 1).message(),
              HasSubstr("has no matching"));
  EXPECT_EQ(adam->steps(), 0);
  EXPECT_TRUE(adam->State().empty());
}

// Note [Parallel optimizer step]: writing the next values out of place, in slices over every
// core, gives bitwise what the in-place step gives, for every optimizer kind, on a parameter
// large enough to be cut into several slices; `current` is left as it was.
TEST(OptimizerTest, OutOfPlaceParallelStepEqualsInPlaceBitwise) {
  const int64_t n = 100003;  // several 32K-element slices and a ragged end
  std::vector<double> values(static_cast<size_t>(n)), grad_values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    values[static_cast<size_t>(i)] = std::sin(0.001 * static_cast<double>(i));
    grad_values[static_cast<size_t>(i)] = std::cos(0.003 * static_cast<double>(i));
  }
  const OptimizerConfig configs[] = {
      {.kind = Kind::kSgd, .learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01},
      {.kind = Kind::kSgd, .learning_rate = 0.1, .momentum = 0.9, .nesterov = true},
      {.kind = Kind::kAdam, .learning_rate = 0.01},
      {.kind = Kind::kAdamW, .learning_rate = 0.01, .weight_decay = 0.1, .clip_norm = 1.0}};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (const OptimizerConfig& config : configs) {
      std::unique_ptr<Optimizer> in_place = Make(config);
      std::unique_ptr<Optimizer> out_of_place = Make(config);
      Params a{{"w", Tensor::FromValues(dtype, Shape{n}, values)}};
      Params current{{"w", Tensor::FromValues(dtype, Shape{n}, values)}};
      const Tensor grad = Tensor::FromValues(dtype, Shape{n}, grad_values);
      for (int step = 0; step < 3; ++step) {
        ASSERT_TRUE(in_place->Step(a, {{"w", &grad}}).ok());
        Params next{{"w", Tensor::Uninitialized(dtype, Shape{n})}};
        const Tensor before = current.at("w");
        ASSERT_TRUE(out_of_place->Step(current, next, {{"w", &grad}}).ok());
        EXPECT_TRUE(BitwiseEqual(current.at("w"), before)) << "current was modified";
        EXPECT_TRUE(BitwiseEqual(next.at("w"), a.at("w"))) << "step " << step;
        current = std::move(next);
      }
    }
  }
}

// Without a place for a parameter's next values the step changes nothing and says which.
TEST(OptimizerTest, OutOfPlaceStepNeedsAPlaceForEveryParameter) {
  std::unique_ptr<Optimizer> opt = Make({.kind = Kind::kSgd, .momentum = 0.9});
  const Params current{{"w", T64({1, 2})}};
  Params next{{"w", T64({0, 0, 0})}};
  const Tensor grad = T64({1, 1});
  const Status status = opt->Step(current, next, {{"w", &grad}});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("parameter 'w': has no place"));
  EXPECT_EQ(opt->steps(), 0);
  EXPECT_TRUE(opt->State().empty());
}

}  // namespace
}  // namespace backflow
