// Note [Team size per primitive]: which nodes get a team of every core, and how the choice
// reaches the kernels compiled for them.
#include <gtest/gtest.h>
#include <omp.h>

#include <string_view>
#include <vector>

#include "engine/exec/team.h"
#include "engine/gates/builtin.h"
#include "engine/ir/gate.h"
#include "engine/runtime/core_budget.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace {

// The team of one application of the built-in gate `op` (no attributes).
int TeamFor(std::string_view op, const std::vector<Shape>& inputs, const Shape& output) {
  return TeamForNode(*BuiltinGates().Find(op), inputs, output, Attributes{});
}

int All() { return CoreBudget::Global().total(); }

TEST(TeamTest, OnlyVeryLargePrimitivesGetEveryCore) {
  // LeNet-5's second convolution at batch 64: 2 * 64*16*10*10 * 6*5*5 = 30.7 MFLOP.
  const std::vector<Shape> lenet_conv2 = {Shape{64, 6, 14, 14}, Shape{16, 6, 5, 5}};
  EXPECT_EQ(TeamFor("conv2d", lenet_conv2, Shape{64, 16, 10, 10}), 1);
  // The CIFAR CNN's second convolution at batch 32: 2 * 32*64*16*16 * 32*3*3 = 302 MFLOP, the
  // same for its two backward passes: still one thread. At batch 128 (1.2 GFLOP): every core.
  const Shape x{32, 32, 16, 16}, w{64, 32, 3, 3}, y{32, 64, 16, 16};
  EXPECT_EQ(TeamFor("conv2d", std::vector<Shape>{x, w}, y), 1);
  EXPECT_EQ(TeamFor("conv2d_backward_data", std::vector<Shape>{y, w}, x), 1);
  EXPECT_EQ(TeamFor("conv2d_backward_weights", std::vector<Shape>{x, y}, w), 1);
  const Shape x128{128, 32, 16, 16}, y128{128, 64, 16, 16};
  EXPECT_EQ(TeamFor("conv2d", std::vector<Shape>{x128, w}, y128), All());
  EXPECT_EQ(TeamFor("conv2d_backward_data", std::vector<Shape>{y128, w}, x128), All());
  EXPECT_EQ(TeamFor("conv2d_backward_weights", std::vector<Shape>{x128, y128}, w), All());
  // The MLP's first layer, [64, 784] x [784, 256]: 25.7 MFLOP; a 1024^3 product: 2.1 GFLOP.
  EXPECT_EQ(TeamFor("linear", std::vector<Shape>{Shape{64, 784}, Shape{784, 256}},
                    Shape{64, 256}),
            1);
  EXPECT_EQ(TeamFor("matmul", std::vector<Shape>{Shape{1024, 1024}, Shape{1024, 1024}},
                    Shape{1024, 1024}),
            All());
  // Memory-bound nodes go by the elements they touch (input and output): 16M and up.
  EXPECT_EQ(TeamFor("relu", std::vector<Shape>{Shape{64, 6, 28, 28}}, Shape{64, 6, 28, 28}), 1);
  EXPECT_EQ(TeamFor("relu", std::vector<Shape>{Shape{4, 1024, 1024}}, Shape{4, 1024, 1024}), 1);
  EXPECT_EQ(TeamFor("relu", std::vector<Shape>{Shape{8, 1024, 1024}}, Shape{8, 1024, 1024}),
            All());
}

TEST(TeamTest, ScopeSetsTheCompilingThreadsTeamAndRestoresIt) {
  const int before = omp_get_max_threads();
  EXPECT_EQ(dnnl_rt::CompileTeam(), before >= All() ? Kernel::kAllCores : before);
  {
    const dnnl_rt::TeamScope scope(1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    EXPECT_EQ(dnnl_rt::CompileTeam(), All() == 1 ? Kernel::kAllCores : 1);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
  {
    const dnnl_rt::TeamScope scope(All());
    EXPECT_EQ(dnnl_rt::CompileTeam(), Kernel::kAllCores);
  }
}

}  // namespace
}  // namespace backflow
