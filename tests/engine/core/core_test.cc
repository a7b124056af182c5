// Status, Shape (broadcasting) and Tensor: the value types everything else stands on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/gates/broadcast.h"

namespace backflow {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  BF_ASSIGN_OR_RETURN(int half, Half(x));
  BF_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, CodesMessagesAndPropagation) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().ToString(), "OK");
  Status s = NotFoundError("model 'm'");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: model 'm'");
  EXPECT_EQ(s.WithPrefix("load").message(), "load: model 'm'");
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd: 3");
  StatusOr<int> from_ok = Status::Ok();  // a value was promised: not silently OK
  EXPECT_EQ(from_ok.status().code(), StatusCode::kInternal);
}

TEST(ShapeTest, BroadcastingFollowsNumPy) {
  Shape out;
  ASSERT_TRUE(BroadcastShapes(Shape{2, 3}, Shape{3}, &out));
  EXPECT_EQ(out, (Shape{2, 3}));
  ASSERT_TRUE(BroadcastShapes(Shape{2, 1}, Shape{1, 3}, &out));
  EXPECT_EQ(out, (Shape{2, 3}));
  ASSERT_TRUE(BroadcastShapes(Shape{}, Shape{4, 5}, &out));
  EXPECT_EQ(out, (Shape{4, 5}));
  ASSERT_TRUE(BroadcastShapes(Shape{kBatchDim, 3}, Shape{1, 3}, &out));
  EXPECT_EQ(out, (Shape{kBatchDim, 3}));
  EXPECT_FALSE(BroadcastShapes(Shape{2, 3}, Shape{4}, &out));
  EXPECT_EQ((Shape{kBatchDim, 784}).ToString(), "[N, 784]");
  EXPECT_EQ((Shape{kBatchDim, 3}).WithBatch(5), (Shape{5, 3}));
  EXPECT_FALSE((Shape{kBatchDim, 3}).fully_defined());
}

TEST(ShapeTest, ForEachBroadcastVisitsEveryPairOnce) {
  // a: [2, 1, 3], b: [4, 1] -> out [2, 4, 3]
  std::vector<std::tuple<int64_t, int64_t, int64_t>> seen;
  ForEachBroadcast(Shape{2, 4, 3}, Shape{2, 1, 3}, Shape{4, 1},
                   [&](int64_t i, int64_t ia, int64_t ib) { seen.emplace_back(i, ia, ib); });
  ASSERT_EQ(seen.size(), 24u);
  for (int64_t i = 0; i < 24; ++i) {
    const int64_t n = i / 12, r = (i / 3) % 4, c = i % 3;
    EXPECT_EQ(seen[static_cast<size_t>(i)], std::make_tuple(i, n * 3 + c, r)) << i;
  }
}

TEST(TensorTest, ValuesCopiesAndCasts) {
  Tensor t = Tensor::FromValues(DType::kFloat32, Shape{2, 2}, std::vector<double>{1, 2, 3, 4.5});
  EXPECT_EQ(t.num_elements(), 4);
  EXPECT_EQ(t.byte_size(), 16u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);  // aligned for oneDNN
  Tensor copy = t;
  copy.data<float>()[0] = 7;
  EXPECT_EQ(t.at(0), 1.0);  // deep copy
  EXPECT_EQ(copy.at(0), 7.0);
  Tensor d = t.CastTo(DType::kFloat64);
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  EXPECT_EQ(d.ToDoubles(), (std::vector<double>{1, 2, 3, 4.5}));
  EXPECT_FALSE(BitwiseEqual(t, d));
  EXPECT_TRUE(BitwiseEqual(t, Tensor(t)));
  EXPECT_EQ(Tensor(DType::kFloat64, Shape{3}).ToDoubles(), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(Tensor::Scalar(DType::kFloat32, 2.5).shape().rank(), 0);
}

// Integer tensors hold labels and ids: sizes, names, exact int64 elements beyond 2^53, casts.
TEST(TensorTest, IntegerDtypesHoldIdsExactly) {
  EXPECT_EQ(SizeOf(DType::kInt32), 4u);
  EXPECT_EQ(SizeOf(DType::kInt64), 8u);
  EXPECT_EQ(DTypeName(DType::kInt32), "int32");
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
  EXPECT_TRUE(IsInteger(DType::kInt64));
  EXPECT_FALSE(IsInteger(DType::kFloat64));
  EXPECT_EQ(DTypeOf<int32_t>(), DType::kInt32);
  EXPECT_EQ(DTypeOf<int64_t>(), DType::kInt64);
  Tensor ids(DType::kInt64, Shape{3});
  EXPECT_EQ(ids.byte_size(), 24u);
  ids.data<int64_t>()[0] = (int64_t{1} << 53) + 1;  // not representable as a double
  ids.data<int64_t>()[1] = -4;
  ids.data<int64_t>()[2] = 7;
  EXPECT_EQ(ids.id(0), (int64_t{1} << 53) + 1);
  EXPECT_EQ(ids.at(1), -4.0);
  const Tensor narrow = ids.CastTo(DType::kInt32);
  EXPECT_EQ(narrow.data<int32_t>()[1], -4);
  EXPECT_EQ(narrow.id(2), 7);
  EXPECT_EQ(narrow.CastTo(DType::kFloat32).ToDoubles(), (std::vector<double>{1, -4, 7}));
  const Tensor from_floats =
      Tensor::FromValues(DType::kInt32, Shape{3}, std::vector<double>{2, -1.7, 3.9});
  EXPECT_EQ(from_floats.ToDoubles(), (std::vector<double>{2, -1, 3}));  // truncated toward zero
  EXPECT_EQ(FirstNonFinite(ids), -1);
  EXPECT_TRUE(BitwiseEqual(ids, Tensor(ids)));
}

// Note [Buffer cache]: a large block freed by one tensor is handed to the next tensor of the
// same size, zero-filled again, and scratch buffers come from the same cache, 64-byte aligned.
TEST(TensorTest, LargeBuffersAreRecycledAndStillZeroed) {
  const Shape shape{512, 512};  // 1 MiB of float32: far above the cache's 64 KiB floor
  const std::byte* first = nullptr;
  {
    Tensor t(DType::kFloat32, shape);
    std::fill(t.data<float>(), t.data<float>() + t.num_elements(), 7.0f);
    first = t.raw();
  }
  Tensor again(DType::kFloat32, shape);
  EXPECT_EQ(again.raw(), first) << "the freed block was not reused";
  EXPECT_TRUE(std::all_of(again.data<float>(), again.data<float>() + again.num_elements(),
                          [](float v) { return v == 0.0f; }));
  const void* scratch_block = nullptr;
  {
    ScratchBuffer scratch(3 << 20);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(scratch.data()) % 64, 0u);
    scratch_block = scratch.data();
  }
  ScratchBuffer reused(3 << 20);
  EXPECT_EQ(reused.data(), scratch_block);
  ScratchBuffer moved(std::move(reused));
  EXPECT_EQ(moved.data(), scratch_block);
  EXPECT_EQ(ScratchBuffer(0).data(), nullptr);
}

TEST(TensorTest, FirstNonFiniteFindsTheFirstNanOrInfinity) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    std::vector<double> values(5000, 1.5);
    EXPECT_EQ(FirstNonFinite(Tensor::FromValues(dtype, Shape{5000}, values)), -1);
    values[4097] = -std::numeric_limits<double>::infinity();
    values[4999] = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(FirstNonFinite(Tensor::FromValues(dtype, Shape{5000}, values)), 4097);
    values[3] = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(FirstNonFinite(Tensor::FromValues(dtype, Shape{5000}, values)), 3);
    // The largest finite value is not flagged.
    EXPECT_EQ(FirstNonFinite(Tensor::Scalar(dtype, dtype == DType::kFloat32
                                                        ? std::numeric_limits<float>::max()
                                                        : std::numeric_limits<double>::max())),
              -1);
  }
}

}  // namespace
}  // namespace backflow
