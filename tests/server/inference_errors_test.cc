// What the Open Inference Protocol's ModelInfer answers to requests it cannot serve: each a
// precise status naming the tensor and the reason, and none of them changes the model.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/server/inference_fixture.h"

namespace backflow::testing {
namespace {

class InferenceErrorsTest : public InferenceTest {
 protected:
  void SetUp() override {
    InferenceTest::SetUp();
    info_ = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
    TensorToProto(TinyBatch(9).x, &x_);
  }
  // A valid raw request for the tiny MLP: x [4, 8].
  inference::ModelInferRequest Raw() const {
    inference::ModelInferRequest request;
    request.set_model_name(info_.id());
    AddRawInput(request, "x", x_);
    return request;
  }
  inference::ModelInferRequest Typed() const {
    inference::ModelInferRequest request;
    request.set_model_name(info_.id());
    AddFp32Input(request, "x", x_);
    return request;
  }
  ::testing::AssertionResult Fails(const inference::ModelInferRequest& request,
                                   grpc::StatusCode code, const std::string& fragment) {
    inference::ModelInferResponse response;
    return HasStatus(Infer(request, &response), code, fragment);
  }

  v1::ModelInfo info_;
  v1::Tensor x_;
};

TEST_F(InferenceErrorsTest, ValidRequestsWork) {
  inference::ModelInferResponse response;
  ASSERT_TRUE(IsOk(Infer(Raw(), &response)));
  ASSERT_TRUE(IsOk(Infer(Typed(), &response)));
}

TEST_F(InferenceErrorsTest, ModelsAndVersions) {
  inference::ModelInferRequest request = Raw();
  request.set_model_name("");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "the model name is empty"));
  request.set_model_name("missing");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::NOT_FOUND, "no model has the name or id 'missing'"));
  request = Raw();
  request.set_model_version("3");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::NOT_FOUND, "has no version '3'"));
}

TEST_F(InferenceErrorsTest, Datatypes) {
  inference::ModelInferRequest request = Raw();
  request.mutable_inputs(0)->set_datatype("FP16");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x': datatype FP16 is not supported by backflow"));
  request.mutable_inputs(0)->set_datatype("float");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "datatype 'float' is not a datatype of the Open Inference Protocol"));
  // FP64 elements for a float32 model: the bytes fit the shape, the dtype does not.
  request = Raw();
  request.mutable_inputs(0)->set_datatype("FP64");
  request.mutable_inputs(0)->set_shape(0, 2);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x': dtype float64, the model computes in float32"));
}

TEST_F(InferenceErrorsTest, RawContents) {
  inference::ModelInferRequest request = Raw();
  request.mutable_raw_input_contents(0)->resize(100);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x': raw_input_contents[0] has 100 bytes; shape [4, 8] of FP32 needs "
                    "128"));
  request = Raw();
  request.add_raw_input_contents("extra");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "raw_input_contents has 2 entries for 1 inputs"));
  request = Raw();
  request.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x' has contents, but the request sends raw_input_contents"));
}

TEST_F(InferenceErrorsTest, TypedContents) {
  inference::ModelInferRequest request = Typed();
  request.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0.5f);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x': contents.fp32_contents holds 33 values; its shape needs 32"));
  request = Typed();
  request.mutable_inputs(0)->mutable_contents()->add_int64_contents(1);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x' is FP32 but its contents hold int64_contents"));
  request = Typed();
  request.mutable_inputs(0)->mutable_contents()->set_fp32_contents(
      5, std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'x': element 5 is NaN (values must be finite)"));
}

TEST_F(InferenceErrorsTest, ShapesNamesAndOutputs) {
  inference::ModelInferRequest request = Raw();
  request.mutable_inputs(0)->set_shape(1, -1);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "input 'x': dimension 1 is -1"));
  request = Raw();
  request.mutable_inputs(0)->set_shape(0, int64_t{1} << 40);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::RESOURCE_EXHAUSTED, "input 'x': shape"));
  request = Raw();
  request.mutable_inputs(0)->set_shape(1, 7);
  request.mutable_raw_input_contents(0)->resize(4 * 7 * 4);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "'x'"));  // the graph needs 8
  request = Raw();
  AddRawInput(request, "x", x_);
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "input 'x' is given twice"));
  request = Raw();
  request.mutable_inputs(0)->set_name("w1");
  EXPECT_TRUE(Fails(request, grpc::StatusCode::INVALID_ARGUMENT,
                    "input 'w1': is a parameter; the model supplies it"));
  request = Raw();
  request.add_outputs()->set_name("nope");
  EXPECT_TRUE(
      Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "output 'nope' is not in the graph"));
  request = Raw();
  request.add_outputs()->set_name("logits");
  request.add_outputs()->set_name("logits");
  EXPECT_TRUE(
      Fails(request, grpc::StatusCode::INVALID_ARGUMENT, "output 'logits' is requested twice"));
  request = Raw();
  request.mutable_inputs(0)->set_name(std::string(300, 'n'));
  EXPECT_TRUE(Fails(request, grpc::StatusCode::RESOURCE_EXHAUSTED,
                    "(300 bytes): longer than the limit of 256 bytes"));
}

TEST_F(InferenceErrorsTest, UndecodableRequestIsInvalidArgument) {
  grpc::GenericStub generic(channel_);
  const char garbage[] = "\xff\xff\xff\xff";  // wire type 7: no message decodes from it
  grpc::Slice slice(garbage, 4);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientContext> context = Context();
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  generic.UnaryCall(context.get(), "/inference.GRPCInferenceService/ModelInfer", {}, &request,
                    &response, [&](grpc::Status s) {
                      std::lock_guard lock(mu);
                      status = std::move(s);
                      done = true;
                      done_cv.notify_one();
                    });
  std::unique_lock lock(mu);
  ASSERT_TRUE(done_cv.wait_for(lock, std::chrono::seconds(30), [&] { return done; }));
  EXPECT_TRUE(HasStatus(status, grpc::StatusCode::INVALID_ARGUMENT,
                        "the request is not a valid inference.ModelInferRequest"));
}

}  // namespace
}  // namespace backflow::testing
