// Shape rules and size computations on client-chosen integers near the ends of int64: where the
// exact result does not fit, the node is refused (InvalidArgument naming the node and the
// attribute); where it does, the result is exact. Never a wrapped value (undefined behaviour,
// which the asan preset's UBSan run of this test would report).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/graph.h"
#include "engine/ir/import.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::RunGate;
using ::backflow::testing::T64;
using Ints = std::vector<int64_t>;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t k2To62 = int64_t{1} << 62;

// Adds node `name` (op over placeholders of `shapes`) to a fresh graph: its status, or its
// output shape.
StatusOr<Shape> AddOne(const std::string& op, const std::vector<Shape>& shapes, Attributes attrs,
                       const std::string& name = "n") {
  Graph g(BuiltinGates());
  std::vector<ValueId> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    BF_ASSIGN_OR_RETURN(ValueId x, g.AddPlaceholder("x" + std::to_string(i), shapes[i]));
    inputs.push_back(x);
  }
  BF_ASSIGN_OR_RETURN(ValueId y, g.AddNode(name, op, inputs, std::move(attrs)));
  return g.value(y).shape;
}

// The message of a refused node, expecting InvalidArgument.
std::string Refusal(const std::string& op, const std::vector<Shape>& shapes, Attributes attrs,
                    const std::string& name = "n") {
  StatusOr<Shape> y = AddOne(op, shapes, std::move(attrs), name);
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument) << y.status().ToString();
  return y.status().message();
}

// x = 1, 2, 3, ... in `shape`.
Tensor Iota(const Shape& shape, DType dtype = DType::kFloat64) {
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i + 1);
  return Tensor::FromValues(dtype, shape, v);
}

// ---- conv2d -------------------------------------------------------------------------------

// The issue's finding: (3 - 1) * 2^62 + 1 wrapped to 1, and the node was accepted.
TEST(ShapeOverflowTest, Conv2dDilationPastInt64IsRefused) {
  EXPECT_EQ(Refusal("conv2d", {{1, 1, 5, 5}, {1, 1, 3, 3}}, {{"dilation", Ints{k2To62, 1}}}, "c"),
            "node 'c': dilation [4611686018427387904, 1] with kernel 3x3 overflows the window "
            "size");
  EXPECT_EQ(Refusal("conv2d", {{1, 1, 5, 5}, {1, 1, 1, 2}}, {{"dilation", Ints{1, kMax}}}, "c"),
            "node 'c': dilation [1, 9223372036854775807] with kernel 1x2 overflows the window "
            "size");
}

TEST(ShapeOverflowTest, Conv2dPaddingPastInt64IsRefused) {
  EXPECT_EQ(Refusal("conv2d", {{1, 1, 5, 5}, {1, 1, 3, 3}}, {{"padding", Ints{kMax, 0}}}, "c"),
            "node 'c': padding [9223372036854775807, 0, 9223372036854775807, 0] on the input 5x5 "
            "overflows the padded size");
  // One side alone: 5 + (2^63 - 5) fits, 5 + (2^63 - 5) + 1 does not.
  EXPECT_EQ(
      Refusal("conv2d", {{1, 1, 5, 5}, {1, 1, 3, 3}}, {{"padding", Ints{0, kMax - 5, 0, 1}}}, "c"),
      "node 'c': padding [0, 9223372036854775802, 0, 1] on the input 5x5 overflows the "
      "padded size");
}

// Channels: w's C / groups times groups must be x's C, and the product may not wrap into it.
TEST(ShapeOverflowTest, Conv2dGroupsTimesChannelsPastInt64IsRefused) {
  EXPECT_EQ(Refusal("conv2d", {{1, 4, 5, 5}, {4, k2To62, 1, 1}}, {{"groups", int64_t{4}}}, "c"),
            "node 'c': x [1, 4, 5, 5] has 4 channels, but w [4, 4611686018427387904, 1, 1] "
            "expects more than INT64_MAX (w is [O, C / groups, KH, KW], groups 4)");
}

// A stride past the input leaves one window, at the origin: nothing overflows, so the node is
// valid and computes exactly that window (x = 1..25, w = 1: 1+2+3 + 6+7+8 + 11+12+13 = 63).
TEST(ShapeOverflowTest, Conv2dHugeStrideKeepsOneWindowAndComputesIt) {
  const Attributes attrs{{"stride", Ints{kMax, kMax}}};
  EXPECT_EQ(*AddOne("conv2d", {{1, 1, 5, 5}, {1, 1, 3, 3}}, attrs), (Shape{1, 1, 1, 1}));
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const Tensor w = Tensor::FromValues(dtype, Shape{1, 1, 3, 3}, std::vector<double>(9, 1.0));
    StatusOr<Tensor> y = RunGate("conv2d", {Iota({1, 1, 5, 5}, dtype), w}, attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_EQ(y->ToDoubles(), (std::vector<double>{63.0}));
  }
}

// ---- pooling ------------------------------------------------------------------------------

TEST(ShapeOverflowTest, PoolKernelAreaPastInt64IsRefused) {
  const Shape x{1, 1, 5, 5};
  EXPECT_EQ(Refusal("avg_pool2d", {x}, {{"kernel", Ints{int64_t{1} << 32, int64_t{1} << 32}}}, "p"),
            "node 'p': kernel 4294967296x4294967296 overflows the window's tap count");
  EXPECT_EQ(Refusal("max_pool2d", {x}, {{"kernel", Ints{kMax, 2}}}, "p"),
            "node 'p': kernel 9223372036854775807x2 overflows the window's tap count");
}

TEST(ShapeOverflowTest, PoolDilationAndPaddingPastInt64AreRefused) {
  const Shape x{1, 1, 5, 5};
  EXPECT_EQ(
      Refusal("max_pool2d", {x}, {{"kernel", Ints{3, 3}}, {"dilation", Ints{k2To62, 1}}}, "p"),
      "node 'p': dilation [4611686018427387904, 1] with kernel 3x3 overflows the window "
      "size");
  // Padding below the kernel on each side, but the padded input past int64.
  EXPECT_EQ(
      Refusal("avg_pool2d", {x}, {{"kernel", Ints{kMax, 1}}, {"padding", Ints{kMax - 1, 0}}}, "p"),
      "node 'p': padding [9223372036854775806, 0, 9223372036854775806, 0] on the input 5x5 "
      "overflows the padded size");
  EXPECT_EQ(Refusal("max_pool2d", {x}, {{"kernel", Ints{2, 2}}, {"stride", Ints{0, 1}}}, "p"),
            "node 'p': stride must be 2 ints, each >= 1, got [0, 1]");
}

// ceil_mode used to compute room + stride - 1: with stride INT64_MAX that wrapped. Now the one
// window at the origin: avg of 1, 2, 6, 7 = 4 and max 7.
TEST(ShapeOverflowTest, PoolHugeStrideWithCeilModeKeepsOneWindow) {
  const Attributes attrs{
      {"kernel", Ints{2, 2}}, {"stride", Ints{kMax, kMax}}, {"ceil_mode", int64_t{1}}};
  EXPECT_EQ(*AddOne("avg_pool2d", {{1, 1, 5, 5}}, attrs), (Shape{1, 1, 1, 1}));
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    StatusOr<Tensor> avg = RunGate("avg_pool2d", {Iota({1, 1, 5, 5}, dtype)}, attrs);
    ASSERT_TRUE(avg.ok()) << avg.status().ToString();
    EXPECT_EQ(avg->ToDoubles(), (std::vector<double>{4.0}));
    StatusOr<Tensor> max = RunGate("max_pool2d", {Iota({1, 1, 5, 5}, dtype)}, attrs);
    ASSERT_TRUE(max.ok()) << max.status().ToString();
    EXPECT_EQ(max->ToDoubles(), (std::vector<double>{7.0}));
  }
}

// ---- reshape, flatten, concat -------------------------------------------------------------

TEST(ShapeOverflowTest, ReshapeTargetProductPastInt64IsRefused) {
  EXPECT_EQ(Refusal("reshape", {{2, 3}}, {{"shape", Ints{k2To62, 4}}}, "r"),
            "node 'r': cannot reshape [2, 3] into [4611686018427387904, 4]: the dimensions of "
            "shape multiply past INT64_MAX");
  EXPECT_EQ(Refusal("reshape", {{2, 3}}, {{"shape", Ints{-1, kMax, 2}}}, "r"),
            "node 'r': cannot reshape [2, 3] into [-1, 9223372036854775807, 2]: the dimensions of "
            "shape multiply past INT64_MAX");
  // The 0 copies x's 3: [kMax, 3, 2].
  EXPECT_EQ(Refusal("reshape", {{2, 3}}, {{"shape", Ints{kMax, 0, 2}}}, "r"),
            "node 'r': cannot reshape [2, 3] into [9223372036854775807, 0, 2]: the dimensions of "
            "shape multiply past INT64_MAX");
}

TEST(ShapeOverflowTest, FlattenGroupPastInt64IsRefused) {
  const Shape x{int64_t{1} << 32, int64_t{1} << 32, 2};
  EXPECT_EQ(Refusal("flatten", {x}, {{"axis", int64_t{0}}}, "f"),
            "node 'f': flattening [4294967296, 4294967296, 2] at axis 0 overflows: its "
            "dimensions multiply past INT64_MAX");
  EXPECT_EQ(*AddOne("flatten", {x}, {{"axis", int64_t{1}}}),
            (Shape{int64_t{1} << 32, int64_t{1} << 33}));
}

TEST(ShapeOverflowTest, ConcatSumPastInt64IsRefused) {
  const Attributes axis0{{"axis", int64_t{0}}};
  EXPECT_EQ(Refusal("concat", {{k2To62, 1}, {k2To62, 1}}, axis0, "c"),
            "node 'c': input 1 [4611686018427387904, 1] brings the concatenated axis 0 past "
            "INT64_MAX");
  EXPECT_EQ(*AddOne("concat", {{k2To62 - 1, 1}, {k2To62, 1}}, axis0), (Shape{kMax, 1}));
}

// ---- pad and embedding --------------------------------------------------------------------

TEST(ShapeOverflowTest, PadsNearInt64AreRefusedOrExact) {
  EXPECT_EQ(Refusal("pad", {{2, 3}}, {{"pads", Ints{0, kMax, 0, 1}}}, "p"),
            "node 'p': pads make axis 1 of [2, 3] too large: begin 9223372036854775807, end 1");
  EXPECT_EQ(Refusal("pad", {{2, 3}}, {{"pads", Ints{kMin, 0, 0, 0}}}, "p"),
            "node 'p': pads remove more than axis 0 of [2, 3] holds: begin "
            "-9223372036854775808, end 0");
  EXPECT_EQ(*AddOne("pad", {{2, 3}}, {{"pads", Ints{0, kMax - 4, 0, 1}}}), (Shape{2, kMax}));
}

TEST(ShapeOverflowTest, EmbeddingPaddingIdxAtInt64EndsIsRefused) {
  Graph g(BuiltinGates());
  const ValueId w = *g.AddPlaceholder("w", Shape{10, 4});
  const ValueId ids = *g.AddPlaceholder("ids", Shape{3}, DType::kInt64);
  for (int64_t p : {kMin, kMax}) {
    StatusOr<ValueId> y = g.AddNode("e", "embedding", {w, ids}, {{"padding_idx", p}});
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(y.status().message(),
              "node 'e': padding_idx " + std::to_string(p) + " is not in [-10, 10)");
  }
}

// ---- slice: every combination of extreme starts, ends and steps -----------------------------

// ONNX Slice on one axis of `dim` elements, in 128-bit arithmetic where nothing can overflow:
// the indices read, in order.
std::vector<double> ReferenceSlice(int64_t start, int64_t end, int64_t step, int64_t dim) {
  __extension__ using Wide = __int128;
  Wide s = start, e = end;
  const Wide n = dim, st = step;
  if (s < 0) s += n;
  if (e < 0) e += n;
  std::vector<double> read;
  if (st > 0) {
    s = std::clamp<Wide>(s, 0, n);
    e = std::clamp<Wide>(e, 0, n);
    for (Wide i = s; i < e; i += st) read.push_back(static_cast<double>(i + 1));
  } else {
    s = std::clamp<Wide>(s, 0, n - 1);
    e = std::clamp<Wide>(e, -1, n - 1);
    for (Wide i = s; i > e; i += st) read.push_back(static_cast<double>(i + 1));
  }
  return read;
}

TEST(ShapeOverflowTest, SliceAtInt64EndsReadsWhatTheReferenceReads) {
  const Ints bounds = {kMin, kMin + 1, -6, -5, -1, 0, 1, 4, 5, 6, kMax - 1, kMax};
  const Ints steps = {kMin, kMin + 1, -6, -2, -1, 1, 2, 6, kMax};
  const Tensor x = Iota({5});
  int checked = 0;
  for (int64_t start : bounds) {
    for (int64_t end : bounds) {
      for (int64_t step : steps) {
        const Attributes attrs{{"starts", Ints{start}}, {"ends", Ints{end}}, {"steps", Ints{step}}};
        StatusOr<Tensor> y = RunGate("slice", {x}, attrs);
        ASSERT_TRUE(y.ok()) << y.status().ToString();
        EXPECT_EQ(y->ToDoubles(), ReferenceSlice(start, end, step, 5))
            << "start " << start << ", end " << end << ", step " << step;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 12 * 12 * 9);
}

// ---- matmul and broadcasting: sizes grow past the limits ----------------------------------

// The rules only copy dimensions; what they grow is bounded by the import's limit on every
// output (before any multiplication, so nothing wraps).
TEST(ShapeOverflowTest, HugeMatMulAndBroadcastOutputsAreRefusedAtImport) {
  StatusOr<backflow::v1::Graph> proto = ParseGraphText(R"(
      name: "g"
      placeholders { name: "a" shape: [-1, 4294967296] }
      placeholders { name: "b" shape: [1, 1] })");
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  EXPECT_EQ(ImportGraph(*proto, BuiltinGates()).status().code(), StatusCode::kResourceExhausted);

  for (const char* node : {"nodes { name: 'y' op: 'matmul' inputs: ['c', 'r'] }",
                           "nodes { name: 'y' op: 'add' inputs: ['c', 'r'] }"}) {
    StatusOr<backflow::v1::Graph> g = ParseGraphText(std::string(R"(
        name: "g"
        placeholders { name: "c" shape: [65536, 1] }
        placeholders { name: "r" shape: [1, 65536] } )") +
                                                     node);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    StatusOr<Graph> imported = ImportGraph(*g, BuiltinGates());
    EXPECT_EQ(imported.status().code(), StatusCode::kResourceExhausted) << node;
    EXPECT_EQ(imported.status().message(),
              "node 'y': output: shape [65536, 65536] has more than 268435456 elements (the limit "
              "per tensor)")
        << node;
  }
}

// An empty tensor may not carry dimensions whose strides would overflow.
TEST(ShapeOverflowTest, EmptyTensorsWithHugeDimensionsAreRefusedAtImport) {
  StatusOr<backflow::v1::Graph> g = ParseGraphText(R"(
      name: "g"
      constants { name: "k" value { shape: [0, 4294967296, 4294967296] } })");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  StatusOr<Graph> imported = ImportGraph(*g, BuiltinGates());
  EXPECT_EQ(imported.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(imported.status().message(),
            "constant 'k': shape [0, 4294967296, 4294967296] has more than 268435456 elements "
            "without its zero dimensions (the limit per tensor)");
}

// Per sample [1, 1, 1]; at batch 2^21, [N, N, N] is 2^63 elements. The plan refuses it before
// sizing anything.
TEST(ShapeOverflowTest, BatchCubedPastInt64IsRefusedWhenThePlanIsCompiled) {
  auto g = std::make_shared<Graph>(BuiltinGates());
  const ValueId x = *g->AddPlaceholder("x", Shape{kBatchDim, 1});
  const ValueId square = *g->AddNode("square", "matmul", {x, x}, {{"transpose_b", int64_t{1}}});
  const ValueId column = *g->AddNode("column", "reshape", {square}, {{"shape", Ints{0, 0, 1}}});
  const ValueId row = *g->AddNode("row", "reshape", {x}, {{"shape", Ints{-1}}});
  const ValueId cube = *g->AddNode("cube", "add", {column, row});
  EXPECT_EQ(g->value(cube).shape, (Shape{kBatchDim, kBatchDim, kBatchDim}));
  Program program(g);
  const int64_t batch = int64_t{1} << 21;
  const Tensor fed = Tensor::FromValues(DType::kFloat32, Shape{batch, 1},
                                        std::vector<double>(static_cast<size_t>(batch), 1.0));
  const ValueId fetch[] = {cube};
  StatusOr<std::vector<Tensor>> y = program.Run({{"x", &fed}}, fetch);
  EXPECT_EQ(y.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(y.status().message(),
            "node 'cube': output [2097152, 2097152, 2097152] has more than 576460752303423487 "
            "elements at this batch size");
}

// ---- FLOP estimates saturate ----------------------------------------------------------------

TEST(ShapeOverflowTest, NormalisationFlopsSaturateAtInt64Max) {
  const Shape huge{k2To62, 4};
  for (const char* op : {"batch_norm", "layer_norm"}) {
    const Gate* gate = *BuiltinGates().Lookup(op);
    const Shape* inputs = &huge;
    const FlopsContext ctx{std::span<const Shape>(inputs, 1), huge, Attributes{}};
    EXPECT_EQ(gate->Flops(ctx), kMax) << op;
  }
}

}  // namespace
}  // namespace backflow
