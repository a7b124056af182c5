#include "engine/gates/builtin.h"
#include "engine/gates/conv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/gates/reference/conv.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "tests/engine/gates/spatial_test_util.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::spatial_test::RandomTensor;
using ::backflow::testing::GateCase;
using ::backflow::testing::RunGate;
using Ints = std::vector<int64_t>;
using Values = std::vector<double>;

struct ConvCase {
  std::string name;
  int64_t n, c, h, w, o, kh, kw;
  bool bias;
  Attributes attrs;
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

// The reference's view of a case, read from its attributes independently of the gate's parser.
reference::Conv2dShape ShapeOf(const ConvCase& c) {
  reference::Conv2dShape s{c.n, c.c, c.h, c.w, c.o, {}};
  reference::Window2d& win = s.window;
  win.kernel_h = c.kh;
  win.kernel_w = c.kw;
  const Ints stride = c.attrs.GetInts("stride", {1, 1});
  const Ints pad = c.attrs.GetInts("padding", {0, 0});
  const Ints dilation = c.attrs.GetInts("dilation", {1, 1});
  win.stride_h = stride[0];
  win.stride_w = stride[1];
  win.dilation_h = dilation[0];
  win.dilation_w = dilation[1];
  win.pad_top = pad[0];
  win.pad_left = pad[1];
  win.pad_bottom = pad.size() == 4 ? pad[2] : pad[0];
  win.pad_right = pad.size() == 4 ? pad[3] : pad[1];
  s.groups = c.attrs.GetInt("groups", 1);
  return s;
}

Shape XShape(const ConvCase& c) { return Shape{c.n, c.c, c.h, c.w}; }
Shape WShape(const ConvCase& c) {
  return Shape{c.o, c.c / c.attrs.GetInt("groups", 1), c.kh, c.kw};
}
Shape YShape(const ConvCase& c) {
  const reference::Conv2dShape s = ShapeOf(c);
  return Shape{c.n, c.o, s.out_h(), s.out_w()};
}

Values Abs(const Tensor& t) {
  Values v = t.ToDoubles();
  for (double& x : v) x = std::abs(x);
  return v;
}

// float32 results against the float64 reference: the error of a float32 sum grows with the
// sum of its terms' magnitudes, not with the (possibly cancelled) result, so the tolerance is
// 1e-5 of `magnitude` (the reference applied to absolute values), which is 1e-5 relative
// wherever nothing cancels.
void ExpectNearReference(const Tensor& got, const Values& want, const Values& magnitude) {
  ASSERT_EQ(got.dtype(), DType::kFloat32);
  ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got.at(static_cast<int64_t>(i)), want[i], 1e-5 * magnitude[i] + 1e-7)
        << "element " << i;
  }
}

Values RefForward(const ConvCase& c, const Values& x, const Values& w, const Values* b) {
  Values y(static_cast<size_t>(YShape(c).num_elements()));
  reference::Conv2dForward(ShapeOf(c), x.data(), w.data(), b ? b->data() : nullptr, y.data());
  return y;
}
Values RefBackwardData(const ConvCase& c, const Values& dy, const Values& w) {
  Values dx(static_cast<size_t>(XShape(c).num_elements()));
  reference::Conv2dBackwardData(ShapeOf(c), dy.data(), w.data(), dx.data());
  return dx;
}
Values RefBackwardWeights(const ConvCase& c, const Values& x, const Values& dy) {
  Values dw(static_cast<size_t>(WShape(c).num_elements()));
  reference::Conv2dBackwardWeights(ShapeOf(c), x.data(), dy.data(), dw.data(),
                                   static_cast<double*>(nullptr));
  return dw;
}

const std::vector<ConvCase>& Cases() {
  static const auto* cases = new std::vector<ConvCase>{
      {"c3_o5_k3_bias", 2, 3, 6, 5, 5, 3, 3, true, {}},
      {"groups2_pad1",
       2,
       4,
       7,
       6,
       6,
       3,
       3,
       true,
       {{"groups", int64_t{2}}, {"padding", Ints{1, 1}}}},
      {"depthwise_stride2",
       1,
       5,
       9,
       7,
       5,
       3,
       3,
       false,
       {{"groups", int64_t{5}}, {"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}},
      {"depthwise_multiplier2_dilated",
       1,
       3,
       11,
       13,
       6,
       3,
       2,
       true,
       {{"groups", int64_t{3}}, {"dilation", Ints{2, 1}}, {"padding", Ints{1, 0, 2, 1}}}},
      {"groups3_c18_o9_batch3",
       3,
       18,
       5,
       5,
       9,
       1,
       3,
       true,
       {{"groups", int64_t{3}}, {"stride", Ints{1, 2}}}},
      {"c3_o5_k3_no_bias", 2, 3, 6, 6, 5, 3, 3, false, {}},
      {"stride2_pad1",
       2,
       3,
       7,
       6,
       5,
       3,
       3,
       true,
       {{"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}},
      {"asymmetric_padding",
       1,
       5,
       5,
       6,
       3,
       3,
       2,
       true,
       {{"padding", Ints{1, 0, 2, 1}}, {"stride", Ints{1, 2}}}},
      {"dilation2",
       2,
       3,
       7,
       7,
       4,
       3,
       3,
       false,
       {{"dilation", Ints{2, 2}}, {"padding", Ints{2, 2}}}},
      {"non_square_3x2_stride_2_1", 2, 5, 6, 5, 3, 3, 2, true, {{"stride", Ints{2, 1}}}},
      {"c6_o16_batch1",
       1,
       6,
       7,
       7,
       16,
       3,
       3,
       true,
       {{"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}},
      {"pointwise_1x1", 2, 3, 4, 4, 5, 1, 1, true, {}},
      {"stride_larger_than_kernel", 1, 2, 7, 7, 3, 2, 2, false, {{"stride", Ints{3, 3}}}},
      {"everything_2x3",
       2,
       3,
       8,
       7,
       5,
       2,
       3,
       true,
       {{"dilation", Ints{2, 1}}, {"stride", Ints{2, 2}}, {"padding", Ints{0, 1, 1, 2}}}},
      {"padding_as_large_as_kernel", 1, 3, 4, 4, 5, 2, 2, true, {{"padding", Ints{2, 2}}}},
  };
  return *cases;
}

auto CaseName = [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; };

class ConvGradientTest : public ::testing::TestWithParam<ConvCase> {};

std::vector<Shape> InputShapes(const ConvCase& c) {
  std::vector<Shape> shapes = {XShape(c), WShape(c)};
  if (c.bias) shapes.push_back(Shape{c.o});
  return shapes;
}

// The shared checker at a tolerance that allows for its rounding; the exact check below holds
// the same gradients to 1e-9. See Note [Finite differences on many outputs].
TEST_P(ConvGradientTest, MatchesFiniteDifferences) {
  const ConvCase& c = GetParam();
  testing::ExpectGradientsMatchFiniteDifferences(
      GateCase{.op = "conv2d", .shapes = InputShapes(c), .attrs = c.attrs, .tolerance = 1e-5});
}

// conv2d is linear in each input element, so any step is exact but for rounding.
TEST_P(ConvGradientTest, MatchesExactCentralDifferences) {
  const ConvCase& c = GetParam();
  std::vector<Tensor> xs;
  for (const Shape& shape : InputShapes(c)) {
    xs.push_back(RandomTensor(shape, 50 + static_cast<unsigned>(xs.size())));
  }
  spatial_test::ExpectGradientsMatchLinearDifferences("conv2d", std::move(xs), c.attrs,
                                                      /*step=*/0.5, /*tolerance=*/1e-9);
}

INSTANTIATE_TEST_SUITE_P(Variants, ConvGradientTest, ::testing::ValuesIn(Cases()), CaseName);

class ConvFloat32Test : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvFloat32Test, ForwardMatchesReference) {
  const ConvCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 1);
  const Tensor w = RandomTensor(WShape(c), 2);
  const Tensor b = RandomTensor(Shape{c.o}, 3);
  std::vector<Tensor> inputs = {x.CastTo(DType::kFloat32), w.CastTo(DType::kFloat32)};
  if (c.bias) inputs.push_back(b.CastTo(DType::kFloat32));
  StatusOr<Tensor> y = RunGate("conv2d", inputs, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->shape(), YShape(c));
  const Values bv = b.ToDoubles();
  const Values babs = Abs(b);
  ExpectNearReference(*y, RefForward(c, x.ToDoubles(), w.ToDoubles(), c.bias ? &bv : nullptr),
                      RefForward(c, Abs(x), Abs(w), c.bias ? &babs : nullptr));
}

TEST_P(ConvFloat32Test, BackwardDataMatchesReference) {
  const ConvCase& c = GetParam();
  const Tensor dy = RandomTensor(YShape(c), 4);
  const Tensor w = RandomTensor(WShape(c), 5);
  Attributes attrs = c.attrs;
  attrs.Set("input_size", Ints{c.h, c.w});
  StatusOr<Tensor> dx = RunGate("conv2d_backward_data",
                                {dy.CastTo(DType::kFloat32), w.CastTo(DType::kFloat32)}, attrs);
  ASSERT_TRUE(dx.ok()) << dx.status().ToString();
  EXPECT_EQ(dx->shape(), XShape(c));
  ExpectNearReference(*dx, RefBackwardData(c, dy.ToDoubles(), w.ToDoubles()),
                      RefBackwardData(c, Abs(dy), Abs(w)));
}

TEST_P(ConvFloat32Test, BackwardWeightsMatchesReference) {
  const ConvCase& c = GetParam();
  const Tensor x = RandomTensor(XShape(c), 6);
  const Tensor dy = RandomTensor(YShape(c), 7);
  Attributes attrs = c.attrs;
  attrs.Set("kernel_size", Ints{c.kh, c.kw});
  StatusOr<Tensor> dw = RunGate("conv2d_backward_weights",
                                {x.CastTo(DType::kFloat32), dy.CastTo(DType::kFloat32)}, attrs);
  ASSERT_TRUE(dw.ok()) << dw.status().ToString();
  EXPECT_EQ(dw->shape(), WShape(c));
  ExpectNearReference(*dw, RefBackwardWeights(c, x.ToDoubles(), dy.ToDoubles()),
                      RefBackwardWeights(c, Abs(x), Abs(dy)));
}

// L = sum(conv2d(x, w, b) * R) with x fed through an open batch dimension: the gradients autodiff
// wires up, computed by the oneDNN kernels, against the reference's.
TEST_P(ConvFloat32Test, TrainingGraphMatchesReference) {
  const ConvCase& c = GetParam();
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, c.c, c.h, c.w});
  const ValueId w = *g->AddPlaceholder("w", WShape(c));
  std::vector<ValueId> inputs = {x, w};
  if (c.bias) inputs.push_back(*g->AddPlaceholder("b", Shape{c.o}));
  StatusOr<ValueId> y = g->AddNode("y", "conv2d", inputs, c.attrs);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const Tensor r = RandomTensor(YShape(c), 8);
  const ValueId rc = *g->AddConstant("r", r);
  const ValueId loss = *g->AddNode("L", "sum", {*g->AddNode("p", "mul", {*y, rc})});
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*g, loss, inputs);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();

  const Tensor xv = RandomTensor(XShape(c), 9).CastTo(DType::kFloat32);
  const Tensor wv = RandomTensor(WShape(c), 10).CastTo(DType::kFloat32);
  const Tensor bv = RandomTensor(Shape{c.o}, 11).CastTo(DType::kFloat32);
  Program program(g);
  FeedMap feeds = {{"x", &xv}, {"w", &wv}};
  if (c.bias) feeds["b"] = &bv;
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, *grads);
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  const Values dy = r.ToDoubles();
  ExpectNearReference((*out)[0], RefBackwardData(c, dy, wv.ToDoubles()),
                      RefBackwardData(c, Abs(r), Abs(wv)));
  ExpectNearReference((*out)[1], RefBackwardWeights(c, xv.ToDoubles(), dy),
                      RefBackwardWeights(c, Abs(xv), Abs(r)));
  if (!c.bias) return;
  Values db(static_cast<size_t>(c.o), 0.0);
  Values db_magnitude(static_cast<size_t>(c.o), 0.0);
  const int64_t plane = YShape(c).num_elements() / (c.n * c.o);
  for (int64_t i = 0; i < r.num_elements(); ++i) {
    const size_t o = static_cast<size_t>((i / plane) % c.o);
    db[o] += r.at(i);
    db_magnitude[o] += std::abs(r.at(i));
  }
  ExpectNearReference((*out)[2], db, db_magnitude);
}

INSTANTIATE_TEST_SUITE_P(Variants, ConvFloat32Test, ::testing::ValuesIn(Cases()), CaseName);

// The shape rule's message for conv2d(x, w[, b]) with `attrs`, added as node "conv".
std::string ShapeError(const Shape& x, const Shape& w, Attributes attrs = {},
                       const Shape* b = nullptr) {
  Graph g(BuiltinGates());
  std::vector<ValueId> inputs = {*g.AddPlaceholder("x", x), *g.AddPlaceholder("w", w)};
  if (b != nullptr) inputs.push_back(*g.AddPlaceholder("b", *b));
  StatusOr<ValueId> y = g.AddNode("conv", "conv2d", inputs, std::move(attrs));
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  return y.status().message();
}

TEST(ConvShapeTest, InfersTheOutputShapeWithTheOpenBatchDimension) {
  Graph g(BuiltinGates());
  const ValueId x = *g.AddPlaceholder("x", Shape{kBatchDim, 3, 7, 6});
  const ValueId w = *g.AddPlaceholder("w", Shape{5, 3, 3, 2});
  StatusOr<ValueId> y =
      g.AddNode("conv", "conv2d", {x, w}, {{"stride", Ints{2, 1}}, {"padding", Ints{1, 0, 0, 1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  // OH = (7 + 1 + 0 - 3) / 2 + 1 = 3, OW = (6 + 0 + 1 - 2) / 1 + 1 = 6.
  EXPECT_EQ(g.value(*y).shape, (Shape{kBatchDim, 5, 3, 6}));
}

TEST(ConvShapeTest, ChannelMismatchNamesTheNode) {
  EXPECT_EQ(ShapeError({2, 3, 5, 5}, {4, 2, 3, 3}),
            "node 'conv': x [2, 3, 5, 5] has 3 channels, but w [4, 2, 3, 3] expects 2 "
            "(w is [O, C / groups, KH, KW], groups 1)");
}

TEST(ConvShapeTest, GroupsMustDivideBothChannelCountsAndNameTheNode) {
  auto error = [](const Shape& x, const Shape& w, int64_t groups) {
    Graph g(BuiltinGates());
    StatusOr<ValueId> y =
        g.AddNode("conv", "conv2d", {*g.AddPlaceholder("x", x), *g.AddPlaceholder("w", w)},
                  {{"groups", groups}});
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    return y.status().message();
  };
  EXPECT_EQ(error({1, 6, 5, 5}, {4, 2, 3, 3}, 3),
            "node 'conv': groups 3 must be >= 1 and divide both the 6 input and the 4 output "
            "channels");
  EXPECT_EQ(error({1, 5, 5, 5}, {4, 1, 3, 3}, 2),
            "node 'conv': groups 2 must be >= 1 and divide both the 5 input and the 4 output "
            "channels");
  EXPECT_EQ(error({1, 4, 5, 5}, {4, 1, 3, 3}, 0),
            "node 'conv': groups 0 must be >= 1 and divide both the 4 input and the 4 output "
            "channels");
  EXPECT_EQ(error({1, 4, 5, 5}, {4, 1, 3, 3}, 2),
            "node 'conv': x [1, 4, 5, 5] has 4 channels, but w [4, 1, 3, 3] expects 2 (w is "
            "[O, C / groups, KH, KW], groups 2)");
}

// Values from PyTorch 1.13 (float64): x = [(i * 7) % 11 - 5 for i in range(36)] as 1x4x3x3,
// w = [(i * 5) % 7 - 3 for i in range(32)] as 4x2x2x2, b = [1, -1, 2, 0],
// y = torch.nn.functional.conv2d(x, w, b, groups=2), y.backward(1..16).
TEST(ConvSeedTest, GroupedConvolutionMatchesPyTorch) {
  Values xs(36), ws(32);
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = static_cast<double>(static_cast<int>(i * 7 % 11) - 5);
  for (size_t i = 0; i < ws.size(); ++i)
    ws[i] = static_cast<double>(static_cast<int>(i * 5 % 7) - 3);
  Values dys(16);
  for (size_t i = 0; i < dys.size(); ++i) dys[i] = static_cast<double>(i + 1);
  const Attributes groups{{"groups", int64_t{2}}};
  Attributes data_attrs = groups;
  data_attrs.Set("input_size", Ints{3, 3});
  Attributes weights_attrs = groups;
  weights_attrs.Set("kernel_size", Ints{2, 2});
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const Tensor x = testing::T64({1, 4, 3, 3}, xs).CastTo(dtype);
    const Tensor w = testing::T64({4, 2, 2, 2}, ws).CastTo(dtype);
    const Tensor b = testing::T64({4}, {1, -1, 2, 0}).CastTo(dtype);
    const Tensor dy = testing::T64({1, 4, 2, 2}, dys).CastTo(dtype);
    StatusOr<Tensor> y = RunGate("conv2d", {x, w, b}, groups);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->ToDoubles(),
              (Values{30, -24, 0, -10, -24, 12, -4, -1, -15, -15, -4, 18, 3, 0, -6, 13}));
    StatusOr<Tensor> dx = RunGate("conv2d_backward_data", {dy, w}, data_attrs);
    ASSERT_TRUE(dx.ok()) << dx.status().ToString();
    EXPECT_EQ(dx->ToDoubles(), (Values{7,  8,  4,  -5,  11,  22, -14, -1,  16,  8,  8,  -4,
                                       0,  3,  2,  -24, -23, 4,  -26, -7,  22,  10, 31, 20,
                                       48, 48, -4, -48, -53, -2, -38, -69, -32, 22, -6, -32}));
    StatusOr<Tensor> dw = RunGate("conv2d_backward_weights", {x, dy}, weights_attrs);
    ASSERT_TRUE(dw.ok()) << dw.status().ToString();
    EXPECT_EQ(dw->shape(), (Shape{4, 2, 2, 2}));
    EXPECT_EQ(dw->ToDoubles(),
              (Values{18,   -11, 19,  -21, -1, 3,  -11, 15, 30,   -19, 59,  -45, 7, -9, -19, 31,
                      -111, -37, -21, 42,  5,  57, -37, 15, -151, -53, -33, 54,  5, 81, -53, 23}));
  }
}

TEST(ConvShapeTest, KernelLargerThanThePaddedInputNamesTheNode) {
  EXPECT_EQ(ShapeError({1, 3, 4, 4}, {2, 3, 5, 5}),
            "node 'conv': kernel 5x5 is larger than the padded input 4x4, so the output would "
            "have no elements");
  EXPECT_EQ(ShapeError({1, 3, 4, 4}, {2, 3, 3, 3}, {{"dilation", Ints{2, 2}}}),
            "node 'conv': kernel 3x3 (spanning 5x5 dilated) is larger than the padded input "
            "4x4, so the output would have no elements");
  // Padding makes room.
  Graph g(BuiltinGates());
  EXPECT_TRUE(g.AddNode("conv", "conv2d",
                        {*g.AddPlaceholder("x", Shape{1, 3, 4, 4}),
                         *g.AddPlaceholder("w", Shape{2, 3, 5, 5})},
                        {{"padding", Ints{1, 1}}})
                  .ok());
}

TEST(ConvShapeTest, BadBiasAndAttributesNameTheNode) {
  const Shape b{4};
  EXPECT_EQ(ShapeError({1, 3, 5, 5}, {5, 3, 3, 3}, {}, &b),
            "node 'conv': b must be [O] = [5], one bias per output channel, got [4]");
  EXPECT_EQ(ShapeError({1, 3, 5, 5}, {5, 3, 3, 3}, {{"padding", Ints{1, 1, 1}}}),
            "node 'conv': padding must be 2 ints [ph, pw] or 4 ints [top, left, bottom, right], "
            "each >= 0, got [1, 1, 1]");
  EXPECT_EQ(ShapeError({1, 3, 5, 5}, {5, 3, 3, 3}, {{"stride", Ints{0, 1}}}),
            "node 'conv': stride must be 2 ints, each >= 1, got [0, 1]");
  EXPECT_EQ(ShapeError({1, 3, 5, 5}, {5, 3, 3, 3}, {{"dilation", Ints{0, 0}}}),
            "node 'conv': dilation must be 2 ints, each >= 1, got [0, 0]");
  EXPECT_EQ(ShapeError({3, 5, 5}, {5, 3, 3, 3}),
            "node 'conv': x must be [N, C, H, W] with C, H, W > 0, got [3, 5, 5]");
  EXPECT_THAT(ShapeError({1, 3, 5, 5}, {5, 3, 3}), ::testing::StartsWith("node 'conv': w "));
}

TEST(ConvShapeTest, BackwardGatesCheckDyAgainstTheForwardShape) {
  Graph g(BuiltinGates());
  const ValueId dy = *g.AddPlaceholder("dy", Shape{2, 5, 4, 4});
  const ValueId w = *g.AddPlaceholder("w", Shape{5, 3, 3, 3});
  StatusOr<ValueId> dx =
      g.AddNode("dx", "conv2d_backward_data", {dy, w}, {{"input_size", Ints{7, 7}}});
  EXPECT_EQ(dx.status().message(),
            "node 'dx': dy is [2, 5, 4, 4], but the convolution outputs [2, 5, 5, 5]");
}

TEST(ConvGatesTest, BackwardGatesAreInternal) {
  for (const char* op : {"conv2d_backward_data", "conv2d_backward_weights"}) {
    const Gate* gate = BuiltinGates().Find(op);
    ASSERT_NE(gate, nullptr) << op;
    EXPECT_TRUE(gate->internal()) << op;
  }
  EXPECT_FALSE(BuiltinGates().Find("conv2d")->internal());
}

// One compiled float32 plan run from several threads at once: each run allocates its own
// scratch and scratchpad, so all agree with a run made alone.
TEST(ConvFloat32Test, ConcurrentRunsOfOnePlanAgree) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 3, 9, 9});
  const ValueId w = *g->AddPlaceholder("w", Shape{16, 3, 3, 3});
  const ValueId y = *g->AddNode("y", "conv2d", {x, w}, {{"padding", Ints{1, 1}}});
  const Tensor xv = RandomTensor(Shape{4, 3, 9, 9}, 1).CastTo(DType::kFloat32);
  const Tensor wv = RandomTensor(Shape{16, 3, 3, 3}, 2).CastTo(DType::kFloat32);
  Program program(g);
  const FeedMap feeds = {{"x", &xv}, {"w", &wv}};
  const ValueId fetch[] = {y};
  StatusOr<std::vector<Tensor>> alone = program.Run(feeds, fetch);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (size_t t = 0; t < same.size(); ++t) {
    threads.emplace_back([&, t] {
      bool ok = true;
      for (int i = 0; i < 10 && ok; ++i) {
        StatusOr<std::vector<Tensor>> out = program.Run(feeds, fetch);
        ok = out.ok() && BitwiseEqual((*out)[0], (*alone)[0]);
      }
      same[t] = ok ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(same, ::testing::Each(1));
}

}  // namespace
}  // namespace backflow
