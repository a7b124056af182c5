#include "engine/ir/tensor_proto.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace backflow {
namespace {

// Bytes of `values` as the wire format carries them.
template <typename T>
std::string RawBytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST(TensorProtoTest, Float32RoundTripsExactly) {
  const std::vector<float> values = {
      1.5f, -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
      0.1f, -3.25f};
  backflow::v1::Tensor proto;
  proto.add_shape(2);
  proto.add_shape(3);
  proto.set_dtype(backflow::v1::FLOAT32);
  proto.set_data(RawBytes(values));
  StatusOr<Tensor> tensor = TensorFromProto(proto, "input 'x'", 100);
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->dtype(), DType::kFloat32);
  EXPECT_EQ(tensor->shape(), Shape({2, 3}));
  EXPECT_EQ(std::memcmp(tensor->raw(), values.data(), proto.data().size()), 0);
  backflow::v1::Tensor back;
  TensorToProto(*tensor, &back);
  EXPECT_EQ(back.SerializeAsString(), proto.SerializeAsString());
}

TEST(TensorProtoTest, Float64RoundTripsExactly) {
  const std::vector<double> values = {0.1, -1e-310, 1e300, 3.0};
  const Tensor original = Tensor::FromValues(DType::kFloat64, Shape({4}), values);
  backflow::v1::Tensor proto;
  TensorToProto(original, &proto);
  EXPECT_EQ(proto.dtype(), backflow::v1::FLOAT64);
  EXPECT_EQ(proto.data(), RawBytes(values));
  StatusOr<Tensor> back = TensorFromProto(proto, "t", 100);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(BitwiseEqual(*back, original));
}

TEST(TensorProtoTest, IntegersRoundTripExactly) {
  Tensor ids(DType::kInt64, Shape({2, 2}));
  const std::vector<int64_t> values = {0, -3, (int64_t{1} << 53) + 1, 9};
  std::copy(values.begin(), values.end(), ids.data<int64_t>());
  backflow::v1::Tensor proto;
  TensorToProto(ids, &proto);
  EXPECT_EQ(proto.dtype(), backflow::v1::INT64);
  EXPECT_EQ(proto.data(), RawBytes(values));
  StatusOr<Tensor> back = TensorFromProto(proto, "t", 100);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(BitwiseEqual(*back, ids));
  EXPECT_EQ(back->id(2), (int64_t{1} << 53) + 1);

  const std::vector<int32_t> narrow = {5, -1, 2};
  proto.Clear();
  proto.add_shape(3);
  proto.set_dtype(backflow::v1::INT32);
  proto.set_data(RawBytes(narrow));
  back = TensorFromProto(proto, "t", 100);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->dtype(), DType::kInt32);
  EXPECT_EQ(back->ToDoubles(), (std::vector<double>{5, -1, 2}));
  proto.set_data(RawBytes(std::vector<int64_t>{5, -1}));  // 16 bytes where 12 are expected
  back = TensorFromProto(proto, "t", 100);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("expected 12"), std::string::npos)
      << back.status().message();
}

TEST(TensorProtoTest, UnspecifiedDtypeReadsAsFloat32AndScalarsWork) {
  backflow::v1::Tensor proto;
  proto.set_data(RawBytes(std::vector<float>{2.5f}));
  StatusOr<Tensor> tensor = TensorFromProto(proto, "t", 1);
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->dtype(), DType::kFloat32);
  EXPECT_EQ(tensor->shape(), Shape());
  EXPECT_EQ(tensor->at(0), 2.5);
}

TEST(TensorProtoTest, RejectsTruncatedBytes) {
  backflow::v1::Tensor proto;
  proto.add_shape(3);
  std::string bytes = RawBytes(std::vector<float>{1, 2, 3});
  bytes.pop_back();
  proto.set_data(bytes);
  StatusOr<Tensor> tensor = TensorFromProto(proto, "input 'x'", 100);
  ASSERT_FALSE(tensor.ok());
  EXPECT_EQ(tensor.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tensor.status().message().find("input 'x': data has 11 bytes, expected 12"),
            std::string::npos)
      << tensor.status().message();
}

TEST(TensorProtoTest, RejectsTooManyElementsWithoutOverflow) {
  backflow::v1::Tensor proto;
  proto.add_shape(int64_t{1} << 62);
  proto.add_shape(int64_t{1} << 62);
  StatusOr<Tensor> tensor = TensorFromProto(proto, "t", 1000);
  ASSERT_FALSE(tensor.ok());
  EXPECT_EQ(tensor.status().code(), StatusCode::kResourceExhausted);
}

TEST(TensorProtoTest, RejectsNegativeDimensionsAndUnknownDtypes) {
  backflow::v1::Tensor proto;
  proto.add_shape(-1);
  EXPECT_EQ(TensorFromProto(proto, "t", 100).status().code(), StatusCode::kInvalidArgument);
  proto.clear_shape();
  proto.set_dtype(static_cast<backflow::v1::DataType>(7));
  proto.set_data(std::string(4, '\0'));
  StatusOr<Tensor> tensor = TensorFromProto(proto, "t", 100);
  ASSERT_FALSE(tensor.ok());
  EXPECT_NE(tensor.status().message().find("t: unknown dtype 7"), std::string::npos);
}

TEST(TensorProtoTest, CheckAllFiniteNamesTheElement) {
  const std::vector<double> values = {1.0, -std::numeric_limits<double>::infinity()};
  const Tensor tensor = Tensor::FromValues(DType::kFloat64, Shape({2}), values);
  const Status status = CheckAllFinite(tensor, "input 'x'");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("input 'x': element 1 is -Inf"), std::string::npos);
  EXPECT_TRUE(CheckAllFinite(Tensor::Scalar(DType::kFloat32, 3), "s").ok());
}

}  // namespace
}  // namespace backflow
