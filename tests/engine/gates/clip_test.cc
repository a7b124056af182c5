// clip against torch.clamp (torch 1.13, float64):
//   x = torch.tensor([-2, -1, 0, 0.5, 1, 3], dtype=torch.float64, requires_grad=True)
//   torch.clamp(x, min=-1, max=1).sum().backward()  # and min=-1 alone, max=0.5 alone
#include "engine/gates/builtin.h"
#include "engine/gates/clip.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "engine/ir/gate_registry.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::RunGate;
using ::backflow::testing::T64;

const std::vector<double> kX = {-2, -1, 0, 0.5, 1, 3};

struct ClipCase {
  Attributes attrs;
  std::vector<double> y;
  std::vector<double> dx;  // the gradient of sum(y)
};

TEST(ClipTest, ForwardAndGradientMatchTorchClamp) {
  const ClipCase cases[] = {
      {{{"min", -1.0}, {"max", 1.0}}, {-1, -1, 0, 0.5, 1, 1}, {0, 1, 1, 1, 1, 0}},
      {{{"min", -1.0}}, {-1, -1, 0, 0.5, 1, 3}, {0, 1, 1, 1, 1, 1}},
      {{{"max", 0.5}}, {-2, -1, 0, 0.5, 0.5, 0.5}, {1, 1, 1, 1, 0, 0}},
  };
  const Shape shape{6};
  for (const ClipCase& c : cases) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      const Tensor x = Tensor::FromValues(dtype, shape, kX);
      StatusOr<Tensor> y = RunGate("clip", {x}, c.attrs);
      ASSERT_TRUE(y.ok()) << y.status().ToString();
      EXPECT_EQ(y->dtype(), dtype);
      EXPECT_EQ(y->ToDoubles(), c.y);
      const Tensor dy = Tensor::FromValues(dtype, shape, std::vector<double>(6, 1.0));
      StatusOr<Tensor> dx = RunGate("clip_grad", {x, dy}, c.attrs);
      ASSERT_TRUE(dx.ok()) << dx.status().ToString();
      EXPECT_EQ(dx->ToDoubles(), c.dx);
    }
  }
}

TEST(ClipTest, BadBoundsAreErrorsNamingTheNode) {
  const Tensor x = T64(Shape{6}, kX);
  const double inf = std::numeric_limits<double>::infinity();
  for (const Attributes& attrs : {Attributes{}, Attributes{{"min", -inf}, {"max", inf}},
                                  Attributes{{"min", 2.0}, {"max", 1.0}}}) {
    StatusOr<Tensor> y = RunGate("clip", {x}, attrs);
    ASSERT_FALSE(y.ok());
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("node '"));
    EXPECT_THAT(y.status().message(), ::testing::HasSubstr("min"));
  }
}

TEST(ClipTest, EqualBoundsAreAllowed) {
  StatusOr<Tensor> y = RunGate("clip", {T64(Shape{6}, kX)}, {{"min", 0.5}, {"max", 0.5}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->ToDoubles(), std::vector<double>(6, 0.5));
}

TEST(ClipTest, GradientGateIsInternal) {
  const Gate* gate = BuiltinGates().Find("clip_grad");
  ASSERT_NE(gate, nullptr);
  EXPECT_TRUE(gate->internal());
  EXPECT_FALSE(gate->differentiable());
}

}  // namespace
}  // namespace backflow
