// softmax and log_softmax against torch 1.13 (float64):
//   x = torch.tensor([[1, 2, 3], [0, -1, 0.5]], dtype=torch.float64, requires_grad=True)
//   dy = torch.tensor([[1, 0, -1], [0.5, 2, 0]], dtype=torch.float64)
//   y = f(x, axis); y.backward(dy)  # f, axis in (softmax, -1), (softmax, 0), (log_softmax, -1)
#include "engine/gates/builtin.h"
#include "engine/gates/softmax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/ir/gate_registry.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using ::testing::DoubleNear;
using ::testing::Pointwise;

struct SoftmaxCase {
  std::string op;
  Attributes attrs;
  std::vector<double> y;
  std::vector<double> dx;
};

TEST(SoftmaxTest, ForwardAndGradientMatchTorch) {
  const Shape shape{2, 3};
  const std::vector<double> x = {1, 2, 3, 0, -1, 0.5};
  const std::vector<double> dy = {1, 0, -1, 0.5, 2, 0};
  const SoftmaxCase cases[] = {
      {"softmax",
       {},
       {0.09003057317038045, 0.2447284710547976, 0.6652409557748218, 0.3314989604240915,
        0.12195165230972885, 0.5465493872661796},
       {0.14181709360981212, 0.1407703574696301, -0.2825874510794423, 0.02995000790556831,
        0.19394547063597403, -0.22389547854154235}},
      {"softmax",
       {{"axis", int64_t{0}}},
       {0.7310585786300049, 0.9525741268224334, 0.9241418199787566, 0.2689414213699951,
        0.04742587317756679, 0.07585818002124356},
       {0.09830596662074097, -0.09035331946182429, -0.07010371654510807, -0.09830596662074091,
        0.09035331946182429, 0.07010371654510818}},
      {"log_softmax",
       {{"axis", int64_t{1}}},
       {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804, -1.1041306053367284,
        -2.1041306053367284, -0.6041306053367282},
       {1.0, 0.0, -1.0, -0.3287474010602287, 1.6951208692256778, -1.3663734681654491}},
  };
  for (const SoftmaxCase& c : cases) {
    StatusOr<Tensor> y = RunGate(c.op, {T64(shape, x)}, c.attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_THAT(y->ToDoubles(), Pointwise(DoubleNear(1e-15), c.y)) << c.op;
    StatusOr<Tensor> dx = RunGate(c.op + "_grad", {*y, T64(shape, dy)}, c.attrs);
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_THAT(dx->ToDoubles(), Pointwise(DoubleNear(1e-15), c.dx)) << c.op;
    const Tensor x32 = Tensor::FromValues(DType::kFloat32, shape, x);
    StatusOr<Tensor> y32 = RunGate(c.op, {x32}, c.attrs);
    ASSERT_TRUE(y32.ok()) << y32.status().ToString();
    EXPECT_EQ(y32->dtype(), DType::kFloat32);
    // oneDNN's float32 softmax: within a few float32 ulps of values up to 2.4.
    EXPECT_THAT(y32->ToDoubles(), Pointwise(DoubleNear(4e-6), c.y)) << c.op;
  }
}

TEST(SoftmaxTest, LargeInputsDoNotOverflow) {
  StatusOr<Tensor> y = RunGate("softmax", {T64(Shape{2}, {1000, 1000})});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->ToDoubles(), (std::vector<double>{0.5, 0.5}));
}

TEST(SoftmaxTest, AxisOutOfRangeIsAnErrorNamingTheNode) {
  for (const char* op : {"softmax", "log_softmax"}) {
    StatusOr<Tensor> y = RunGate(op, {T64(Shape{2, 3}, {1, 2, 3, 4, 5, 6})}, {{"axis", int64_t{2}}});
    ASSERT_FALSE(y.ok()) << op;
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node '"));
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("axis"));
  }
}

TEST(SoftmaxTest, GradientGatesAreInternal) {
  for (const char* op : {"softmax_grad", "log_softmax_grad"}) {
    const Gate* gate = BuiltinGates().Find(op);
    ASSERT_NE(gate, nullptr) << op;
    EXPECT_TRUE(gate->internal()) << op;
  }
}

}  // namespace
}  // namespace backflow
