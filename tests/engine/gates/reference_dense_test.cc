#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "engine/gates/reference/dense.h"

namespace backflow::reference {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// A = [[1, 2, 3], [4, 5, 6]] (2x3), B = [[1, -1], [0, 2], [3, 1]] (3x2).
// A B = [[1 + 0 + 9, -1 + 4 + 3], [4 + 0 + 18, -4 + 10 + 6]] = [[10, 6], [22, 12]].
const std::vector<double> kA = {1, 2, 3, 4, 5, 6};
const std::vector<double> kB = {1, -1, 0, 2, 3, 1};
const std::vector<double> kAB = {10, 6, 22, 12};

TEST(ReferenceMatMulTest, PlainProductMatchesHandComputedValues) {
  std::vector<double> c(4);
  MatMul<double>({.m = 2, .k = 3, .n = 2}, kA.data(), kB.data(), c.data());
  EXPECT_THAT(c, ElementsAreArray(kAB));
}

TEST(ReferenceMatMulTest, TransposedOperandsAreReadInPlace) {
  // A^T stored as [3, 2] and B^T stored as [2, 3] give the same product.
  const std::vector<double> at = {1, 4, 2, 5, 3, 6};
  const std::vector<double> bt = {1, 0, 3, -1, 2, 1};
  std::vector<double> c(4);
  MatMul<double>({.m = 2, .k = 3, .n = 2, .transpose_a = true}, at.data(), kB.data(), c.data());
  EXPECT_THAT(c, ElementsAreArray(kAB));
  MatMul<double>({.m = 2, .k = 3, .n = 2, .transpose_b = true}, kA.data(), bt.data(), c.data());
  EXPECT_THAT(c, ElementsAreArray(kAB));
  MatMul<double>({.m = 2, .k = 3, .n = 2, .transpose_a = true, .transpose_b = true}, at.data(),
                 bt.data(), c.data());
  EXPECT_THAT(c, ElementsAreArray(kAB));
}

TEST(ReferenceMatMulTest, TransposedProductOfTheOtherOrder) {
  // B^T A^T = (A B)^T = [[10, 22], [6, 12]], with A and B stored untransposed.
  std::vector<double> c(4);
  MatMul<double>({.m = 2, .k = 3, .n = 2, .transpose_a = true, .transpose_b = true}, kB.data(),
                 kA.data(), c.data());
  EXPECT_THAT(c, ElementsAre(10, 22, 6, 12));
}

TEST(ReferenceMatMulTest, BatchedProductsAreIndependent) {
  // Batch 0: [[1, 2], [3, 4]] [[5, 6], [7, 8]] = [[19, 22], [43, 50]].
  // Batch 1: the identity times [[2, 3], [4, 5]].
  const std::vector<double> a = {1, 2, 3, 4, /**/ 1, 0, 0, 1};
  const std::vector<double> b = {5, 6, 7, 8, /**/ 2, 3, 4, 5};
  std::vector<double> c(8);
  MatMul<double>({.batch = 2, .m = 2, .k = 2, .n = 2}, a.data(), b.data(), c.data());
  EXPECT_THAT(c, ElementsAre(19, 22, 43, 50, 2, 3, 4, 5));
}

TEST(ReferenceMatMulTest, EmptyInnerDimensionGivesZeros) {
  std::vector<double> c(4, 7.0);
  MatMul<double>({.m = 2, .k = 0, .n = 2}, nullptr, nullptr, c.data());
  EXPECT_THAT(c, ElementsAre(0, 0, 0, 0));
}

TEST(ReferenceMatMulTest, FloatAccumulatesInDouble) {
  // 1e8 + 1 - 1e8 is 0 in float arithmetic but 1 when the sum is kept in double.
  const std::vector<float> a = {1e8f, 1.0f, -1e8f};
  const std::vector<float> b = {1.0f, 1.0f, 1.0f};
  float c = -1;
  MatMul<float>({.m = 1, .k = 3, .n = 1}, a.data(), b.data(), &c);
  EXPECT_EQ(c, 1.0f);
}

TEST(ReferenceLinearTest, AddsTheBiasToEveryRow) {
  const std::vector<double> bias = {100, 200};
  std::vector<double> y(4);
  Linear<double>(2, 3, 2, kA.data(), kB.data(), bias.data(), y.data());
  EXPECT_THAT(y, ElementsAre(110, 206, 122, 212));
  Linear<double>(2, 3, 2, kA.data(), kB.data(), nullptr, y.data());
  EXPECT_THAT(y, ElementsAreArray(kAB));
}

}  // namespace
}  // namespace backflow::reference
