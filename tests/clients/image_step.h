// One TrainStep on a fixed batch of 4 images (images [4, 1, 28, 28], labels [4]), for the CLI
// tests that train a model (LeNet-5, models/mlp_tanh.pbtxt) between commands.
#ifndef BACKFLOW_TESTS_CLIENTS_IMAGE_STEP_H_
#define BACKFLOW_TESTS_CLIENTS_IMAGE_STEP_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/ir/tensor_proto.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {

// The model's step after the step; a failed call fails the test.
inline int64_t TrainOneImageStep(v1::Backflow::Stub& stub, const std::string& id) {
  v1::TrainStepRequest request;
  request.set_model_id(id);
  std::vector<double> pixels(4 * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>(i % 13) / 13;
  TensorToProto(Tensor::FromValues(DType::kFloat32, Shape{4, 1, 28, 28}, pixels),
                &(*request.mutable_batch())["images"]);
  TensorToProto(Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{1, 0, 5, 8}),
                &(*request.mutable_batch())["labels"]);
  v1::TrainStepResponse response;
  const grpc::Status status = stub.TrainStep(Deadline().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.step();
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_CLIENTS_IMAGE_STEP_H_
