// InferenceRows (Note [Independent rows] in engine/ir/rows.h): the shipped models, graphs whose
// rows mix, and for every gate rule that claims kEach a check that the claim is true: in
// inference, the first rows of a batch of 5 come out as those of a batch of 3 that shares them.
#include "engine/ir/rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/api/import.h"
#include "engine/exec/program.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"

namespace backflow {

void PrintTo(Rows rows, std::ostream* os) {
  *os << (rows == Rows::kNone ? "kNone" : rows == Rows::kEach ? "kEach" : "kMixed");
}

namespace {

using Ints = std::vector<int64_t>;

constexpr int64_t N = kBatchDim;

Graph LoadModel(const std::string& file) {
  StatusOr<v1::Graph> proto = LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + file);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(*graph);
}

Rows RowsOf(const Graph& g, const std::vector<Rows>& rows, const std::string& name) {
  const std::optional<ValueId> v = g.Find(name);
  EXPECT_TRUE(v.has_value()) << name;
  return v ? rows[static_cast<size_t>(*v)] : Rows::kMixed;
}

// ---- the shipped models -------------------------------------------------------------------

class ModelRowsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelRowsTest, EveryValueButTheLossAndAccuracyHasIndependentRows) {
  const Graph g = LoadModel(GetParam());
  const std::vector<Rows> rows = InferenceRows(g);
  ASSERT_EQ(rows.size(), static_cast<size_t>(g.num_values()));
  EXPECT_EQ(RowsOf(g, rows, "logits"), Rows::kEach);
  EXPECT_EQ(rows[static_cast<size_t>(g.loss())], Rows::kMixed);
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kState}) {
    for (ValueId v : g.ValuesOfKind(kind)) {
      EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kNone) << g.value(v).name;
    }
  }
  for (ValueId v : g.ValuesOfKind(ValueKind::kPlaceholder)) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kEach) << g.value(v).name;
  }
  for (const Node& node : g.nodes()) {
    const bool mixes = node.op == "softmax_cross_entropy" || node.op == "accuracy";
    EXPECT_EQ(rows[static_cast<size_t>(node.output)], mixes ? Rows::kMixed : Rows::kEach)
        << node.name << " (" << node.op << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelRowsTest,
                         ::testing::Values("lenet5.pbtxt", "mlp_tanh.pbtxt", "cifar_cnn.pbtxt",
                                           "resnet_fmnist.pbtxt", "transformer_repeat.pbtxt"));

TEST(InferenceRowsTest, TheTransformerKeepsEachSequenceToItself) {
  const Graph g = LoadModel("transformer_repeat.pbtxt");
  const std::vector<Rows> rows = InferenceRows(g);
  // Attention mixes the tokens of one sequence, never two sequences.
  for (const char* name : {"embed", "l0_attn_q_split", "l0_attn_q_heads", "l0_attn_scores",
                           "l0_attn_weights", "l0_attn_merged", "l1_mlp_drop", "pooled"}) {
    EXPECT_EQ(RowsOf(g, rows, name), Rows::kEach) << name;
  }
  EXPECT_EQ(RowsOf(g, rows, "accuracy"), Rows::kMixed);
}

// ---- rows that mix ------------------------------------------------------------------------

// x [N, 4] and y [N, 2, 3] batched, w [4, 3] a parameter.
struct MixGraph {
  Graph g{BuiltinGates()};
  ValueId x = *g.AddPlaceholder("x", Shape{N, 4});
  ValueId y = *g.AddPlaceholder("y", Shape{N, 2, 3});
  ValueId w = *g.AddParameter("w", Shape{4, 3});

  ValueId Add(const std::string& name, std::string_view op, std::vector<ValueId> inputs,
              Attributes attrs = {}) {
    StatusOr<ValueId> v = g.AddNode(name, op, std::move(inputs), std::move(attrs));
    EXPECT_TRUE(v.ok()) << name << ": " << v.status().ToString();
    return v.ok() ? *v : ValueId{0};
  }
  std::vector<Rows> Infer() const { return InferenceRows(g); }
};

TEST(InferenceRowsTest, ParametersAndWhatOnlyTheyFeedAreTheSameForEveryRow) {
  MixGraph m;
  const ValueId fixed = *m.g.AddPlaceholder("fixed", Shape{3, 4});  // no open batch
  const ValueId ww = m.Add("ww", "matmul", {m.w, m.w}, Attributes{{"transpose_b", int64_t{1}}});
  const ValueId f = m.Add("f", "sum", {fixed}, Attributes{{"axes", Ints{0}}});
  const std::vector<Rows> rows = m.Infer();
  for (ValueId v : {m.w, fixed, ww, f}) EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kNone);
  EXPECT_EQ(rows[static_cast<size_t>(m.x)], Rows::kEach);
}

TEST(InferenceRowsTest, ReductionsOverTheBatchMix) {
  MixGraph m;
  const ValueId s0 = m.Add("s0", "sum", {m.x}, Attributes{{"axes", Ints{0}}});
  const ValueId all = m.Add("all", "mean", {m.x});
  const ValueId kept = m.Add("kept", "mean", {m.x},
                             Attributes{{"axes", Ints{-2}}, {"keepdims", int64_t{1}}});  // [1, 4]
  const ValueId centred = m.Add("centred", "sub", {m.x, kept});  // downstream of a mixed value
  const ValueId scaled = m.Add("scaled", "mul_scalar", {s0}, Attributes{{"a", 2.0}});
  const std::vector<Rows> rows = m.Infer();
  for (ValueId v : {s0, all, kept, centred, scaled}) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kMixed) << m.g.value(v).name;
  }
}

TEST(InferenceRowsTest, NormalisingOverTheBatchAxisMixes) {
  MixGraph m;
  const ValueId sm = m.Add("sm", "softmax", {m.x}, Attributes{{"axis", int64_t{0}}});
  const ValueId lsm = m.Add("lsm", "log_softmax", {m.x}, Attributes{{"axis", int64_t{-2}}});
  const ValueId ln = m.Add("ln", "layer_norm", {m.x}, Attributes{{"normalized_ndim", int64_t{2}}});
  const ValueId after = m.Add("after", "linear", {sm, m.w});
  const std::vector<Rows> rows = m.Infer();
  for (ValueId v : {sm, lsm, ln, after}) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kMixed) << m.g.value(v).name;
  }
}

TEST(InferenceRowsTest, MovingTheBatchOffAxisZeroMixes) {
  MixGraph m;
  const ValueId t = m.Add("t", "transpose", {m.x}, Attributes{{"perm", Ints{1, 0}}});  // [4, N]
  const ValueId reversed = m.Add("reversed", "transpose", {m.y});  // empty perm: [3, 2, N]
  const ValueId gram = m.Add("gram", "matmul", {t, m.x});          // [4, 4]
  const ValueId wt = *m.g.AddParameter("wt", Shape{2, 4});
  // The batch on the right: [2, 4] x [N, 4]^T = [2, N].
  const ValueId right =
      m.Add("right", "matmul", {wt, m.x}, Attributes{{"transpose_b", int64_t{1}}});
  const ValueId outer =
      m.Add("outer", "matmul", {m.x, m.x}, Attributes{{"transpose_b", int64_t{1}}});
  const ValueId cols = m.Add("cols", "matmul", {m.x, m.x}, Attributes{{"transpose_a", int64_t{1}}});
  const ValueId through = m.Add("through", "linear", {m.x, gram});  // the weight is mixed
  const std::vector<Rows> rows = m.Infer();
  for (ValueId v : {t, reversed, gram, right, outer, cols, through}) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kMixed) << m.g.value(v).name;
  }
}

TEST(InferenceRowsTest, ReshapesThatRegroupRowsMix) {
  MixGraph m;
  // [N, 4] as [-1, 2] is [2N, 2], though its shape reads [N, 2].
  const ValueId halves = m.Add("halves", "reshape", {m.x}, Attributes{{"shape", Ints{-1, 2}}});
  const ValueId front = m.Add("front", "reshape", {m.x}, Attributes{{"shape", Ints{2, -1}}});
  const ValueId line = m.Add("line", "reshape", {m.x}, Attributes{{"shape", Ints{-1}}});
  const ValueId late =
      m.Add("late", "flatten", {m.y}, Attributes{{"axis", int64_t{2}}});  // [2N, 3]
  const ValueId whole = m.Add("whole", "flatten", {m.y}, Attributes{{"axis", int64_t{0}}});
  const ValueId back = m.Add("back", "reshape", {halves}, Attributes{{"shape", Ints{-1, 4}}});
  const std::vector<Rows> rows = m.Infer();
  for (ValueId v : {halves, front, line, late, whole, back}) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kMixed) << m.g.value(v).name;
  }
}

TEST(InferenceRowsTest, ConcatenatingAlongTheBatchAndLossesMix) {
  MixGraph m;
  const ValueId stacked = m.Add("stacked", "concat", {m.x, m.x}, Attributes{{"axis", int64_t{0}}});
  const ValueId labels = *m.g.AddPlaceholder("labels", Shape{N}, DType::kInt64);
  const ValueId logits = m.Add("logits", "linear", {m.x, m.w});
  const ValueId loss = m.Add("loss", "softmax_cross_entropy", {logits, labels});
  const ValueId acc = m.Add("acc", "accuracy", {logits, labels});
  const ValueId after = m.Add("after", "add_scalar", {loss}, Attributes{{"c", 1.0}});
  const std::vector<Rows> rows = m.Infer();
  EXPECT_EQ(rows[static_cast<size_t>(logits)], Rows::kEach);
  for (ValueId v : {stacked, loss, acc, after}) {
    EXPECT_EQ(rows[static_cast<size_t>(v)], Rows::kMixed) << m.g.value(v).name;
  }
}

// ---- kEach claims hold --------------------------------------------------------------------

// One gate applied to batched placeholders (and parameters or state, drawn in [0.5, 1.5)).
struct RowCase {
  std::string name;
  std::function<StatusOr<ValueId>(Graph&)> build;
  bool positive = false;  // float feeds in [0.5, 1.5) rather than [-1, 1)
};

std::ostream& operator<<(std::ostream& os, const RowCase& c) { return os << c.name; }

const InitializerSpec kUniform{.kind = InitializerSpec::Kind::kUniform, .a = 0.5, .b = 1.5};
constexpr int64_t kTableRows = 6;  // the embedding table: ids are drawn below it

ValueId In(Graph& g, const std::string& name, Shape shape, DType dtype = DType::kFloat32) {
  return *g.AddPlaceholder(name, std::move(shape), dtype);
}
ValueId Param(Graph& g, const std::string& name, Shape shape) {
  return *g.AddParameter(name, std::move(shape), kUniform);
}

// `op` applied to x [N, 2, 3] with `attrs`.
RowCase Unary(std::string op, Attributes attrs = {}, bool positive = false) {
  std::string name = op;
  return {name,
          [op, attrs](Graph& g) {
            return g.AddNode("out", op, {In(g, "x", Shape{N, 2, 3})}, attrs);
          },
          positive};
}

// `op`(x [N, 2, 3], b): b a parameter of `b_shape`, or batched too when there is none.
RowCase Binary(std::string op, std::optional<Shape> b_shape, bool positive = false) {
  std::string name = op + " " + (b_shape ? b_shape->ToString() : "batched");
  return {name,
          [op, b_shape](Graph& g) {
            const ValueId x = In(g, "x", Shape{N, 2, 3});
            const ValueId b = b_shape ? Param(g, "b", *b_shape) : In(g, "y", Shape{N, 2, 3});
            return g.AddNode("out", op, {x, b});
          },
          positive};
}

// `op` with attrs on x of `x_shape` and parameters of `param_shapes`, in that order.
RowCase WithParams(std::string name, std::string op, Shape x_shape, std::vector<Shape> param_shapes,
                   Attributes attrs = {}) {
  return {std::move(name), [op, x_shape, param_shapes, attrs](Graph& g) {
            std::vector<ValueId> inputs = {In(g, "x", x_shape)};
            for (size_t i = 0; i < param_shapes.size(); ++i) {
              inputs.push_back(Param(g, "p" + std::to_string(i), param_shapes[i]));
            }
            return g.AddNode("out", op, std::move(inputs), attrs);
          }};
}

std::vector<RowCase> UnaryCases() {
  std::vector<RowCase> cases;
  for (const char* op : {"neg", "exp", "square", "sigmoid", "tanh", "erf", "relu", "gelu"}) {
    cases.push_back(Unary(op));
  }
  for (const char* op : {"log", "reciprocal", "sqrt"}) cases.push_back(Unary(op, {}, true));
  cases.push_back(Unary("add_scalar", Attributes{{"c", 0.5}}));
  cases.push_back(Unary("mul_scalar", Attributes{{"a", -3.0}}));
  cases.push_back(Unary("leaky_relu", Attributes{{"alpha", 0.1}}));
  cases.push_back(Unary("gelu", Attributes{{"approximate", std::string("tanh")}}));
  cases.push_back(Unary("clip", Attributes{{"min", -0.25}, {"max", 0.5}}));
  cases.push_back(Unary("dropout", Attributes{{"p", 0.5}}));
  cases.push_back(Unary("softmax", Attributes{{"axis", int64_t{-1}}}));
  cases.push_back(Unary("softmax", Attributes{{"axis", int64_t{1}}}));
  cases.push_back(Unary("log_softmax", Attributes{{"axis", int64_t{2}}}));
  cases.push_back(Unary("layer_norm", Attributes{{"normalized_ndim", int64_t{2}}}));
  cases.push_back(Unary("flatten", Attributes{{"axis", int64_t{1}}}));
  cases.push_back(Unary("reshape", Attributes{{"shape", Ints{-1, 6}}}));
  cases.push_back(Unary("reshape", Attributes{{"shape", Ints{0, 3, 1, 2}}}));
  cases.push_back(Unary("transpose", Attributes{{"perm", Ints{0, 2, 1}}}));
  cases.push_back(
      Unary("slice", Attributes{{"starts", Ints{1}}, {"ends", Ints{3}}, {"axes", Ints{2}}}));
  // Axis 0 taken whole, as the shape rule requires of an open batch.
  cases.push_back(Unary(
      "slice",
      Attributes{{"starts", Ints{0, 1}}, {"ends", Ints{INT64_MAX, 2}}, {"axes", Ints{0, 1}}}));
  cases.push_back(Unary("pad", Attributes{{"pads", Ints{0, 1, 0, 0, 0, 2}}, {"value", 0.5}}));
  cases.push_back(Unary("sum", Attributes{{"axes", Ints{1}}}));
  cases.push_back(Unary("sum", Attributes{{"axes", Ints{-1, 1}}, {"keepdims", int64_t{1}}}));
  cases.push_back(Unary("mean", Attributes{{"axes", Ints{2}}}));
  return cases;
}

std::vector<RowCase> BinaryCases() {
  std::vector<RowCase> cases;
  for (const char* op : {"add", "sub", "mul", "max", "min"}) {
    cases.push_back(Binary(op, Shape{3}));
    cases.push_back(Binary(op, std::nullopt));
  }
  cases.push_back(Binary("div", Shape{2, 3}, true));
  cases.push_back(Binary("pow", Shape{1, 2, 1}, true));
  cases.push_back(Binary("add", Shape{1, 1, 3}));
  cases.push_back({"add_n", [](Graph& g) {
                     const ValueId x = In(g, "x", Shape{N, 2, 3});
                     return g.AddNode("out", "add_n", {x, In(g, "y", Shape{N, 2, 3}), x});
                   }});
  cases.push_back({"concat", [](Graph& g) {
                     return g.AddNode("out", "concat",
                                      {In(g, "x", Shape{N, 2, 3}), In(g, "y", Shape{N, 2, 1})},
                                      Attributes{{"axis", int64_t{-1}}});
                   }});
  return cases;
}

std::vector<RowCase> LayerCases() {
  const Attributes tb{{"transpose_b", int64_t{1}}};
  return {
      WithParams("linear", "linear", Shape{N, 4}, {Shape{4, 3}, Shape{3}}),
      WithParams("linear [N, 2, 4]", "linear", Shape{N, 2, 4}, {Shape{4, 3}}),
      WithParams("matmul", "matmul", Shape{N, 4}, {Shape{4, 3}}),
      WithParams("matmul transpose_b", "matmul", Shape{N, 4}, {Shape{3, 4}}, tb),
      WithParams("matmul [N, 2, 4]", "matmul", Shape{N, 2, 4}, {Shape{4, 3}}),
      WithParams("matmul [N, 4, 2] transpose_a", "matmul", Shape{N, 4, 2}, {Shape{1, 4, 3}},
                 Attributes{{"transpose_a", int64_t{1}}}),
      {"matmul of two batches",
       [](Graph& g) {
         return g.AddNode("out", "matmul", {In(g, "x", Shape{N, 2, 4}), In(g, "y", Shape{N, 3, 4})},
                          Attributes{{"transpose_b", int64_t{1}}});
       }},
      WithParams("conv2d", "conv2d", Shape{N, 2, 5, 5}, {Shape{3, 2, 3, 3}, Shape{3}},
                 Attributes{{"padding", Ints{1, 1}}, {"stride", Ints{2, 1}}}),
      WithParams("max_pool2d", "max_pool2d", Shape{N, 2, 4, 5}, {},
                 Attributes{{"kernel", Ints{2, 2}}, {"padding", Ints{1, 1}}}),
      WithParams("avg_pool2d", "avg_pool2d", Shape{N, 2, 4, 5}, {},
                 Attributes{{"kernel", Ints{3, 2}}, {"stride", Ints{1, 1}}}),
      WithParams("global_avg_pool2d", "global_avg_pool2d", Shape{N, 2, 3, 4}, {}),
      WithParams("layer_norm affine", "layer_norm", Shape{N, 2, 3}, {Shape{3}, Shape{3}}),
      {"batch_norm",
       [](Graph& g) {
         const ValueId x = In(g, "x", Shape{N, 2, 3, 3});
         const ValueId mean = *g.AddState("mean", Shape{2}, kUniform);
         const ValueId var = *g.AddState("var", Shape{2}, kUniform);
         return g.AddNode("out", "batch_norm",
                          {x, mean, var, Param(g, "w", Shape{2}), Param(g, "b", Shape{2})});
       }},
      {"embedding",
       [](Graph& g) {
         return g.AddNode(
             "out", "embedding",
             {Param(g, "table", Shape{kTableRows, 3}), In(g, "ids", Shape{N, 4}, DType::kInt64)});
       }},
  };
}

std::vector<RowCase> AllRowCases() {
  std::vector<RowCase> cases = UnaryCases();
  for (auto more : {BinaryCases(), LayerCases()})
    cases.insert(cases.end(), more.begin(), more.end());
  return cases;
}

// `rows` rows of a placeholder of `shape`: the first rows of one draw of 5, so a batch of 3 and
// one of 5 share their first three rows.
Tensor Feed(const Value& value, int64_t rows, unsigned seed) {
  std::vector<int64_t> dims = value.shape.dims();
  dims[0] = 5;
  const Shape five(dims);
  std::mt19937 rng(seed);
  std::vector<double> values(static_cast<size_t>(five.num_elements()));
  for (double& v : values) {
    v = IsInteger(value.dtype) ? static_cast<double>(rng() % kTableRows)
                               : std::uniform_real_distribution<double>(-1, 1)(rng);
  }
  dims[0] = rows;
  values.resize(static_cast<size_t>(Shape(dims).num_elements()));
  // Float placeholders take the run's float dtype: float64 here.
  return Tensor::FromValues(IsInteger(value.dtype) ? value.dtype : DType::kFloat64, Shape(dims),
                            values);
}

// Runs `graph` in inference mode on batches of `rows` rows and returns its output "out".
Tensor RunAt(std::shared_ptr<const Graph> graph, int64_t rows, bool positive) {
  std::unordered_map<std::string, Tensor> tensors =
      *InitializeParameters(*graph, DType::kFloat64, 7, ValueKind::kParameter);
  std::unordered_map<std::string, Tensor> state =
      *InitializeParameters(*graph, DType::kFloat64, 8, ValueKind::kState);
  tensors.merge(state);
  unsigned seed = 1;
  for (ValueId v : graph->ValuesOfKind(ValueKind::kPlaceholder)) {
    Tensor t = Feed(graph->value(v), rows, seed++);
    if (positive && !IsInteger(t.dtype())) {
      std::vector<double> values = t.ToDoubles();
      for (double& e : values) e = 1.0 + e / 2;  // [0.5, 1.5)
      t = Tensor::FromValues(t.dtype(), t.shape(), values);
    }
    tensors.emplace(graph->value(v).name, std::move(t));
  }
  FeedMap feeds;
  for (const auto& [name, t] : tensors) feeds[name] = &t;
  Program program(graph);
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, std::vector<std::string>{"out"});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? std::move((*out)[0]) : Tensor();
}

class RowsClaimTest : public ::testing::TestWithParam<RowCase> {};

TEST_P(RowsClaimTest, EachRowComesOutAsItWouldInASmallerBatch) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  StatusOr<ValueId> out = GetParam().build(*graph);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(InferenceRows(*graph)[static_cast<size_t>(*out)], Rows::kEach);

  const Tensor three = RunAt(graph, 3, GetParam().positive);
  const Tensor five = RunAt(graph, 5, GetParam().positive);
  ASSERT_TRUE(three.valid() && five.valid());
  ASSERT_EQ(three.dtype(), DType::kFloat64);
  ASSERT_EQ(three.shape().dim(0), 3);
  ASSERT_EQ(five.shape().dim(0), 5);
  std::vector<int64_t> dims = five.shape().dims();
  dims[0] = 3;
  ASSERT_EQ(three.shape(), Shape(dims));
  for (int64_t i = 0; i < three.num_elements(); ++i) {
    const double a = three.at(i);
    const double b = five.at(i);
    ASSERT_TRUE(std::isfinite(a)) << "element " << i;
    EXPECT_NEAR(a, b, 1e-12 * std::max(1.0, std::abs(a))) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Gates, RowsClaimTest, ::testing::ValuesIn(AllRowCases()),
                         [](const ::testing::TestParamInfo<RowCase>& info) {
                           std::string name = std::to_string(info.index) + "_" + info.param.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// The check above can fail: a softmax over the batch axis changes the first rows when more rows
// join.
TEST(RowsClaimTest, ItSeesRowsMixWhereTheyDo) {
  auto graph = std::make_shared<Graph>(BuiltinGates());
  ASSERT_TRUE(graph
                  ->AddNode("out", "softmax", {In(*graph, "x", Shape{N, 3})},
                            Attributes{{"axis", int64_t{0}}})
                  .ok());
  EXPECT_EQ(InferenceRows(*graph).back(), Rows::kMixed);
  const Tensor three = RunAt(graph, 3, false);
  const Tensor five = RunAt(graph, 5, false);
  double largest = 0;
  for (int64_t i = 0; i < three.num_elements(); ++i) {
    largest = std::max(largest, std::abs(three.at(i) - five.at(i)));
  }
  EXPECT_GT(largest, 1e-3);
}

}  // namespace
}  // namespace backflow
