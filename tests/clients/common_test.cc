// clients/common: the flag parser of every binary, synthetic batches and tensor encoding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "clients/common/flags.h"
#include "clients/common/synthetic.h"
#include "clients/common/tensors.h"

namespace backflow::clients {
namespace {

const FlagSpec kSpecs[] = {
    {"epochs", FlagKind::kValue, "N", "passes over the data"},
    {"lr", FlagKind::kValue, "X", "learning rate"},
    {"input", FlagKind::kList, "NAME=VALUE", "an input (repeat)"},
    {"json", FlagKind::kSwitch, "", "print JSON"},
    {"help", FlagKind::kSwitch, "", "show help"},
};

StatusOr<Args> Parse(std::vector<std::string> argv) { return ParseArgs(argv, kSpecs); }

TEST(FlagsTest, BothSpellingsOperandsAndTheEndOfFlags) {
  StatusOr<Args> args = Parse({"a", "--epochs", "3", "--lr=0.5", "-4", "--", "--json"});
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  EXPECT_EQ(args->Value("epochs"), "3");
  EXPECT_EQ(*args->Number("lr", 0), 0.5);
  EXPECT_EQ(args->operands(), (std::vector<std::string>{"a", "-4", "--json"}));
  EXPECT_FALSE(args->Has("json"));
  EXPECT_TRUE(Parse({"-h"})->Has("help"));
}

TEST(FlagsTest, ARepeatedValueKeepsTheLastAndAListKeepsEvery) {
  StatusOr<Args> args =
      Parse({"--epochs", "1", "--input", "x=1", "--epochs=2", "--input=y=2", "--json", "--json"});
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  EXPECT_EQ(*args->Integer("epochs", 0), 2);
  EXPECT_EQ(args->Values("input"), (std::vector<std::string>{"x=1", "y=2"}));
  EXPECT_TRUE(args->Has("json"));
}

TEST(FlagsTest, UnknownFlagsSuggestTheClosest) {
  EXPECT_EQ(Parse({"--epoch", "3"}).status().message(),
            "unknown flag '--epoch'; did you mean '--epochs'?");
  EXPECT_EQ(Parse({"--lr2=1"}).status().message(), "unknown flag '--lr2'; did you mean '--lr'?");
  EXPECT_EQ(Parse({"-epochs"}).status().message(),
            "unknown flag '-epochs'; did you mean '--epochs'?");
  EXPECT_EQ(Parse({"--bogus"}).status().message(), "unknown flag '--bogus'");
  EXPECT_EQ(Parse({"--bogus"}).status().code(), StatusCode::kInvalidArgument);
}

TEST(FlagsTest, ValueErrorsNameTheFlag) {
  EXPECT_EQ(Parse({"--epochs"}).status().message(), "--epochs needs a value (N)");
  EXPECT_EQ(Parse({"--json=1"}).status().message(), "--json takes no value");
  EXPECT_EQ(Parse({"--epochs", "two"})->Integer("epochs", 1).status().message(),
            "--epochs: 'two' is not an integer");
  EXPECT_EQ(Parse({"--lr", "fast"})->Number("lr", 1).status().message(),
            "--lr: 'fast' is not a number");
  EXPECT_EQ(Parse({"--epochs", "0"})->Integer("epochs", 1, 1, 100).status().message(),
            "--epochs: 0 is outside [1, 100]");
  EXPECT_EQ(Parse({"--lr", "2"})->Number("lr", 1, 0, 1.5).status().message(),
            "--lr: 2 is outside [0, 1.5]");
  constexpr std::string_view kKinds[] = {"sgd", "adam"};
  EXPECT_EQ(Parse({"--lr", "x"})->Choice("lr", "sgd", kKinds).status().message(),
            "--lr: 'x' is not one of sgd, adam");
  EXPECT_EQ(*Parse({})->Choice("lr", "adam", kKinds), "adam");
  EXPECT_EQ(Parse({"x"})->NoOperands().message(), "unexpected argument 'x'");
}

TEST(FlagsTest, ServerAddressesGetThePortTheyLackAndRefuseUrls) {
  EXPECT_EQ(*ServerAddress("127.0.0.1:50052"), "127.0.0.1:50052");
  EXPECT_EQ(*ServerAddress("127.0.0.1"), "127.0.0.1:50051");
  EXPECT_EQ(*ServerAddress("backflow.internal"), "backflow.internal:50051");
  EXPECT_EQ(*ServerAddress("[::1]"), "[::1]:50051");
  EXPECT_EQ(*ServerAddress("[::1]:7000"), "[::1]:7000");
  EXPECT_EQ(*ServerAddress("unix:/run/backflow.sock"), "unix:/run/backflow.sock");
  EXPECT_EQ(*ServerAddress("dns:///backflow:50051"), "dns:///backflow:50051");
  EXPECT_EQ(ServerAddress("https://h:443/x").status().message(),
            "'https://h:443/x' is a URL; give HOST:PORT without a scheme ('h:443')");
  EXPECT_EQ(ServerAddress("h:80x").status().message(),
            "'h:80x': the port must be a number from 0 to 65535");
  EXPECT_EQ(ServerAddress("h:65536").status().message(),
            "'h:65536': the port must be a number from 0 to 65535");
  EXPECT_EQ(ServerAddress("::1").status().message(),
            "'::1' is not HOST:PORT (an IPv6 host goes in [])");
  EXPECT_FALSE(ServerAddress("").ok());
  EXPECT_EQ(ServerAddress("50051").status().message(),
            "'50051' is a port alone; give HOST:PORT ('127.0.0.1:50051')");
  const FlagSpec server[] = {{"server", FlagKind::kValue, "HOST:PORT", "server address"}};
  const std::vector<std::string> host = {"--server", "h"}, zero = {"--server", "h:-1"};
  EXPECT_EQ(ParseArgs(host, server)->Address("server", "x:1").value(), "h:50051");
  EXPECT_EQ(ParseArgs(zero, server)->Address("server", "x:1").status().message(),
            "--server: 'h:-1': the port must be a number from 0 to 65535");
}

TEST(FlagsTest, HelpIsGeneratedFromTheSpecs) {
  const std::string help = FormatFlags(kSpecs);
  EXPECT_NE(help.find("  --epochs N                passes over the data\n"), std::string::npos)
      << help;
  EXPECT_NE(help.find("  --input NAME=VALUE ...    an input (repeat)\n"), std::string::npos);
  const FlagSpec wrapped[] = {{"listen", FlagKind::kValue, "HOST:PORT", "first\nsecond"}};
  EXPECT_EQ(FormatFlags(wrapped, {.equals = true, .column = 24}),
            "  --listen=HOST:PORT    first\n                        second\n");
}

v1::Graph TwoInputs() {
  v1::Graph graph;
  v1::Placeholder* x = graph.add_placeholders();
  x->set_name("x");
  x->add_shape(-1);
  x->add_shape(3);
  v1::Placeholder* labels = graph.add_placeholders();
  labels->set_name("labels");
  labels->add_shape(-1);
  return graph;
}

TEST(SyntheticTest, ASeedNamesOneBatch) {
  const auto batch = SyntheticBatch(TwoInputs(), {.batch = 4, .classes = 3}, 7);
  const v1::Tensor& x = batch.at("x");
  EXPECT_EQ(x.dtype(), v1::FLOAT32);
  EXPECT_EQ(std::vector<int64_t>(x.shape().begin(), x.shape().end()), (std::vector<int64_t>{4, 3}));
  ASSERT_EQ(x.data().size(), 12 * sizeof(float));
  const v1::Tensor& labels = batch.at("labels");
  ASSERT_EQ(labels.data().size(), 4 * sizeof(float));
  for (int i = 0; i < 4; ++i) {
    float label = 0;
    std::memcpy(&label, labels.data().data() + i * sizeof(float), sizeof label);
    EXPECT_TRUE(label == 0 || label == 1 || label == 2) << label;
  }
  // The float values of the engine's batch are the wire batch's.
  std::mt19937_64 rng(7);
  std::vector<int64_t> shape;
  const std::vector<float> values =
      SyntheticValues<float>(TwoInputs().placeholders(0), {.batch = 4, .classes = 3}, rng, &shape);
  EXPECT_EQ(std::memcmp(values.data(), x.data().data(), x.data().size()), 0);
  const auto again = SyntheticBatch(TwoInputs(), {.batch = 4, .classes = 3}, 7);
  EXPECT_EQ(again.at("x").data(), x.data());
  EXPECT_NE(SyntheticBatch(TwoInputs(), {.batch = 4}, 8).at("x").data(), x.data());
  EXPECT_EQ(
      SyntheticBatch(TwoInputs(), {.batch = 4, .dtype = v1::FLOAT64}, 7).at("x").data().size(),
      12 * sizeof(double));
}

// Integer placeholders (token ids, int labels) get ids in [0, classes) of their own dtype,
// whatever the float dtype of the batch.
TEST(SyntheticTest, IntegerPlaceholdersGetIdsOfTheirDtype) {
  v1::Graph graph = TwoInputs();
  graph.mutable_placeholders(1)->set_dtype(v1::INT64);
  v1::Placeholder* tokens = graph.add_placeholders();
  tokens->set_name("tokens");
  tokens->set_dtype(v1::INT32);
  tokens->add_shape(-1);
  tokens->add_shape(5);
  const auto batch = SyntheticBatch(graph, {.batch = 4, .classes = 3, .dtype = v1::FLOAT64}, 7);
  EXPECT_EQ(batch.at("x").dtype(), v1::FLOAT64);
  const v1::Tensor& labels = batch.at("labels");
  EXPECT_EQ(labels.dtype(), v1::INT64);
  ASSERT_EQ(labels.data().size(), 4 * sizeof(int64_t));
  std::vector<int64_t> ids(4);
  std::memcpy(ids.data(), labels.data().data(), labels.data().size());
  for (int64_t id : ids) EXPECT_TRUE(id >= 0 && id < 3) << id;
  const v1::Tensor& t = batch.at("tokens");
  EXPECT_EQ(t.dtype(), v1::INT32);
  EXPECT_EQ(std::vector<int64_t>(t.shape().begin(), t.shape().end()), (std::vector<int64_t>{4, 5}));
  ASSERT_EQ(t.data().size(), 20 * sizeof(int32_t));
  std::vector<int32_t> token_ids(20);
  std::memcpy(token_ids.data(), t.data().data(), t.data().size());
  int distinct = 0;
  for (int32_t v = 0; v < 3; ++v) {
    EXPECT_TRUE(std::all_of(token_ids.begin(), token_ids.end(),
                            [](int32_t id) { return id >= 0 && id < 3; }));
    distinct += std::count(token_ids.begin(), token_ids.end(), v) > 0 ? 1 : 0;
  }
  EXPECT_GE(distinct, 2) << "20 draws from 3 ids";
}

TEST(TensorsTest, EncodeWidensAndNarrows) {
  const float floats[] = {1.5f, -2.0f};
  v1::Tensor proto;
  proto.add_shape(9);  // cleared
  EncodeTensor(std::vector<int64_t>{2}, v1::FLOAT64, floats, &proto);
  EXPECT_EQ(proto.dtype(), v1::FLOAT64);
  ASSERT_EQ(proto.shape_size(), 1);
  double wide[2];
  ASSERT_EQ(proto.data().size(), sizeof wide);
  std::memcpy(wide, proto.data().data(), sizeof wide);
  EXPECT_EQ(wide[0], 1.5);
  EXPECT_EQ(wide[1], -2.0);
  const double doubles[] = {0.25};
  EncodeTensor({}, v1::FLOAT32, doubles, &proto);
  EXPECT_EQ(proto.dtype(), v1::FLOAT32);
  EXPECT_EQ(proto.shape_size(), 0);
  float narrow = 0;
  ASSERT_EQ(proto.data().size(), sizeof narrow);
  std::memcpy(&narrow, proto.data().data(), sizeof narrow);
  EXPECT_EQ(narrow, 0.25f);
  EXPECT_EQ(WireDType(DType::kFloat64), v1::FLOAT64);
  EXPECT_EQ(EngineDType(v1::DATA_TYPE_UNSPECIFIED), DType::kFloat32);
}

}  // namespace
}  // namespace backflow::clients
