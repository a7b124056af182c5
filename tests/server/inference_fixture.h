// Test support for the Open Inference Protocol (server/inference_service.h): a ServerTest with an
// inference.GRPCInferenceService stub beside the backflow.v1 one, and request builders.
#ifndef BACKFLOW_TESTS_SERVER_INFERENCE_FIXTURE_H_
#define BACKFLOW_TESTS_SERVER_INFERENCE_FIXTURE_H_

#include <cstring>
#include <initializer_list>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {

class InferenceTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    oip_ = inference::GRPCInferenceService::NewStub(channel_);
  }
  void Reconnect() {
    Restart();
    oip_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  // LeNet-5 trained for two steps (so its answers are not its initial values), named `name`.
  v1::ModelInfo TrainedLeNet(const std::string& name = "lenet") {
    v1::CreateModelRequest request = ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05), 3);
    request.set_name(name);
    v1::ModelInfo info = CreateModel(*stub_, request);
    for (uint32_t seed : {1u, 2u}) TrainStep(*stub_, info.id(), ImageBatch(8, seed));
    return info;
  }

  // backflow.v1 Infer of `outputs` on `inputs`: what ModelInfer must equal.
  v1::InferResponse V1Infer(const std::string& id, const WireTensorMap& inputs,
                            const std::vector<std::string>& outputs = {}) {
    v1::InferRequest request;
    request.set_model_id(id);
    *request.mutable_inputs() = inputs;
    for (const std::string& name : outputs) request.add_outputs(name);
    v1::InferResponse response;
    EXPECT_TRUE(IsOk(stub_->Infer(Context().get(), request, &response)));
    return response;
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    return oip_->ModelInfer(Context().get(), request, response);
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> oip_;
};

using InferInput = inference::ModelInferRequest::InferInputTensor;

// A wire map of the named tensors.
inline WireTensorMap Tensors(std::initializer_list<std::pair<std::string, v1::Tensor>> entries) {
  WireTensorMap map;
  for (const auto& [name, tensor] : entries) map[name] = tensor;
  return map;
}

// An input whose elements travel in raw_input_contents (appended to `request`).
inline InferInput* AddRawInput(inference::ModelInferRequest& request, const std::string& name,
                               const v1::Tensor& tensor, const std::string& datatype = "FP32") {
  InferInput* input = request.add_inputs();
  input->set_name(name);
  input->set_datatype(datatype);
  *input->mutable_shape() = tensor.shape();
  request.add_raw_input_contents(tensor.data());
  return input;
}

// An input with typed contents (fp32_contents).
inline InferInput* AddFp32Input(inference::ModelInferRequest& request, const std::string& name,
                                const v1::Tensor& tensor) {
  InferInput* input = request.add_inputs();
  input->set_name(name);
  input->set_datatype("FP32");
  *input->mutable_shape() = tensor.shape();
  for (float v : Floats(tensor)) input->mutable_contents()->add_fp32_contents(v);
  return input;
}

inline std::vector<float> RawFloats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_SERVER_INFERENCE_FIXTURE_H_
