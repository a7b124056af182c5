// Shape rules on integers past int64 over the wire (issue 21): conv2d with dilation 2^62 used to
// wrap its window to 1 and be accepted, and float64 Infer then answered a wrong value. CreateModel
// now answers INVALID_ARGUMENT naming the node and the attribute, the server keeps serving, and
// a valid model beside it computes exactly and survives a restart.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

// x [N, 1, 5, 5], w [1, 1, 3, 3] all 0.5, and conv2d node 'c' with the window `attrs` (text).
v1::Graph ConvGraph(const std::string& attrs) {
  StatusOr<v1::Graph> g = ParseGraphText(
      R"(name: "conv"
         placeholders { name: "x" shape: [-1, 1, 5, 5] }
         parameters { name: "w" shape: [1, 1, 3, 3] init { constant { value: 0.5 } } }
         nodes { name: "c" op: "conv2d" inputs: ["x", "w"] )" +
      attrs + " } outputs: 'c'");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : v1::Graph();
}

grpc::Status Create(v1::Backflow::Stub& stub, const v1::Graph& graph, v1::ModelInfo* info) {
  return stub.CreateModel(Context().get(), ModelRequest(graph, {}, 1, v1::FLOAT64), info);
}

class ShapeOverflowTest : public ServerTest {};

TEST_F(ShapeOverflowTest, ConvWindowPastInt64IsRefusedAndTheServerKeepsServing) {
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(
      Create(*stub_,
             ConvGraph(
                 "attrs { key: 'dilation' value { ints { values: [4611686018427387904, 1] } } }"),
             &info),
      grpc::StatusCode::INVALID_ARGUMENT,
      "node 'c': dilation [4611686018427387904, 1] with kernel 3x3 overflows the window size"));
  EXPECT_TRUE(HasStatus(
      Create(
          *stub_,
          ConvGraph("attrs { key: 'padding' value { ints { values: [9223372036854775807, 0] } } }"),
          &info),
      grpc::StatusCode::INVALID_ARGUMENT,
      "node 'c': padding [9223372036854775807, 0, 9223372036854775807, 0] on the input 5x5 "
      "overflows the padded size"));

  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse serving;
  ASSERT_TRUE(IsOk(health->Check(Context().get(), {}, &serving)));
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // Dilation 2 (span 5 rows), x = 1..25: y[0, 0, 0, j] = 0.5 * the sum of rows 0, 2, 4 and
  // columns j..j+2 = 0.5 * (90 + 3 * (3j + 6)) = 54, 58.5, 63.
  ASSERT_TRUE(IsOk(Create(
      *stub_, ConvGraph("attrs { key: 'dilation' value { ints { values: [2, 1] } } }"), &info)));
  std::vector<double> x(25);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
  v1::InferRequest infer;
  infer.set_model_id(info.id());
  (*infer.mutable_inputs())["x"] = WireTensor64({1, 1, 5, 5}, x);
  for (int run = 0; run < 2; ++run) {
    v1::InferResponse response;
    ASSERT_TRUE(IsOk(stub_->Infer(Context().get(), infer, &response)));
    EXPECT_EQ(Doubles(response.outputs().at("c")), (std::vector<double>{54.0, 58.5, 63.0}));
    v1::ListModelsResponse list;
    ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), {}, &list)));
    ASSERT_EQ(list.models_size(), 1);  // the refused graphs left nothing behind
    EXPECT_EQ(list.models(0).id(), info.id());
    if (run == 0) Restart();
  }
}

}  // namespace
}  // namespace backflow::testing
