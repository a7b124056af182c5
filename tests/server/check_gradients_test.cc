// The CheckGradients RPC: inline graphs and models, the report's fields, and its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using ::testing::ElementsAre;
using CheckGradientsTest = ServerTest;

TEST_F(CheckGradientsTest, MlpTanhFromItsInitializersPasses) {
  v1::CheckGradientsRequest request;
  *request.mutable_graph() = ModelGraph("mlp_tanh.pbtxt");
  request.set_seed(3);
  v1::CheckGradientsResponse response;
  ASSERT_TRUE(IsOk(stub_->CheckGradients(Context().get(), request, &response)));
  EXPECT_TRUE(response.ok());
  EXPECT_THAT(response.drawn(), ElementsAre("b1", "b2", "images", "labels", "w1", "w2"));
  ASSERT_EQ(response.tensors_size(), 4);
  EXPECT_EQ(response.evaluations(), 1 + 2 * (32 + 32 + 32 + 10));
  const v1::GradientCheckTensor& w1 = response.tensors(0);
  EXPECT_EQ(w1.name(), "w1");
  EXPECT_THAT(w1.shape(), ElementsAre(784, 256));
  EXPECT_EQ(w1.checked(), 32);
  EXPECT_EQ(w1.total(), 784 * 256);
  EXPECT_EQ(response.tensors(3).checked(), 10);  // b2: all of it
  for (const v1::GradientCheckTensor& t : response.tensors()) {
    EXPECT_TRUE(t.ok()) << t.name();
    // Relative errors a little over 1e-6 occur on tiny elements, where the difference's own
    // rounding (about 1e-16 |L| / epsilon) dominates; they pass by abs_tolerance (1e-8).
    EXPECT_LT(t.max_relative_error(), 1e-4) << t.name();
    EXPECT_LT(t.max_abs_error(), 1e-8) << t.name();
    ASSERT_EQ(t.worst_size(), 5) << t.name();
    const v1::GradientCheckElement& e = t.worst(0);
    EXPECT_EQ(e.relative_error(), t.max_relative_error()) << t.name();
    EXPECT_NEAR(e.analytic(), e.numeric(), 1e-8) << t.name();
    EXPECT_EQ(e.position_size(), t.shape_size()) << t.name();
  }
  EXPECT_GT(response.loss(), 1.0);  // a cross-entropy over ten classes, near ln 10 at the start
  EXPECT_LT(response.loss(), 5.0);
}

TEST_F(CheckGradientsTest, AModelIsCheckedOnItsCurrentParameters) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), SgdSpec(0.5), 1));
  v1::TrainStepRequest step;
  step.set_model_id(info.id());
  TinyBatch(9).ToWire(step.mutable_batch());
  v1::TrainStepResponse stepped;
  ASSERT_TRUE(IsOk(stub_->TrainStep(Context().get(), step, &stepped)));

  const TinyBatch batch(5);
  v1::ComputeGradientsRequest gradients;
  gradients.set_model_id(info.id());
  batch.ToWire(gradients.mutable_batch());
  v1::ComputeGradientsResponse computed;
  ASSERT_TRUE(IsOk(stub_->ComputeGradients(Context().get(), gradients, &computed)));

  v1::CheckGradientsRequest request;
  request.set_model_id(info.id());
  batch.ToWire(request.mutable_values());
  request.add_wrt("w2");
  request.add_wrt("x");
  request.set_max_elements_per_tensor(4);
  request.set_worst_k(2);
  v1::CheckGradientsResponse response;
  ASSERT_TRUE(IsOk(stub_->CheckGradients(Context().get(), request, &response)));
  EXPECT_TRUE(response.ok());
  EXPECT_TRUE(response.drawn().empty());
  // The stepped parameters' loss, as ComputeGradients computes it in float32.
  EXPECT_NEAR(response.loss(), computed.loss(), 1e-5 * computed.loss());
  ASSERT_EQ(response.tensors_size(), 2);
  EXPECT_EQ(response.tensors(1).name(), "x");
  EXPECT_EQ(response.tensors(1).checked(), 4);
  EXPECT_EQ(response.tensors(1).total(), 4 * 8);
  EXPECT_EQ(response.tensors(1).worst_size(), 2);
}

TEST_F(CheckGradientsTest, ErrorsHaveTheirCodes) {
  v1::CheckGradientsRequest request;
  v1::CheckGradientsResponse response;
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::INVALID_ARGUMENT, "no graph: set graph or model_id"));
  request.set_model_id("nope");
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::NOT_FOUND, "nope"));
  *request.mutable_graph() = TinyMlpGraph();
  request.add_wrt("logits");
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::INVALID_ARGUMENT, "wrt 'logits' is a node"));
  request.clear_wrt();
  request.set_epsilon(-1);
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::INVALID_ARGUMENT, "epsilon"));
  request.clear_epsilon();
  (*request.mutable_values())["x"] = WireTensor({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::INVALID_ARGUMENT, "'x'"));
  StatusOr<v1::Graph> no_loss = ParseGraphText(R"pb(
    placeholders { name: "x" shape: [2] }
    nodes { name: "y" op: "tanh" inputs: "x" }
    outputs: "y"
  )pb");
  ASSERT_TRUE(no_loss.ok());
  *request.mutable_graph() = *no_loss;
  request.clear_values();
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::INVALID_ARGUMENT, "the graph has no loss"));
}

class CheckGradientsLimitTest : public ServerTest {
  void Configure(server::ServerConfig& config) override { config.limits.max_gradcheck_runs = 100; }
};

TEST_F(CheckGradientsLimitTest, PastTheRunLimitIsResourceExhausted) {
  v1::CheckGradientsRequest request;
  *request.mutable_graph() = TinyMlpGraph();  // 1 + 2 * (32 + 16 + 32 + 4) = 169 runs
  v1::CheckGradientsResponse response;
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "needs 169 forward runs, over the limit of 100"));
  request.set_max_elements_per_tensor(8);  // 1 + 2 * (8 + 8 + 8 + 4) = 57
  ASSERT_TRUE(IsOk(stub_->CheckGradients(Context().get(), request, &response)));
  EXPECT_EQ(response.evaluations(), 57);
  request.set_batch(int64_t{1} << 40);  // past --max-tensor-elements: refused, not allocated
  EXPECT_TRUE(HasStatus(stub_->CheckGradients(Context().get(), request, &response),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "placeholder 'x' drawn with batch 1099511627776 would hold more than"));
}

}  // namespace
}  // namespace backflow::testing
