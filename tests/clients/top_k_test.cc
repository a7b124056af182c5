// backflow infer --top-k: softmax ranking against hand-computed probabilities, labels files and
// the refusals (clients/cli/top_k.h).
#include "clients/cli/top_k.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

namespace backflow::cli {
namespace {

TEST(TopKTest, RanksEachRowBySoftmaxProbability) {
  // Row 0: logits 0, ln 2, ln 4 -> probabilities 1/7, 2/7, 4/7. Row 1: 5, 5, 5 -> ties by index.
  const Tensor scores =
      Tensor::FromValues(DType::kFloat32, Shape{2, 3},
                         std::vector<double>{0.0, std::log(2.0), std::log(4.0), 5.0, 5.0, 5.0});
  StatusOr<std::vector<std::vector<RankedClass>>> ranked = TopK(scores, 2);
  ASSERT_TRUE(ranked.ok()) << ranked.status().ToString();
  ASSERT_EQ(ranked->size(), 2u);
  ASSERT_EQ((*ranked)[0].size(), 2u);
  EXPECT_EQ((*ranked)[0][0].index, 2);
  EXPECT_NEAR((*ranked)[0][0].probability, 4.0 / 7, 1e-7);
  EXPECT_EQ((*ranked)[0][1].index, 1);
  EXPECT_NEAR((*ranked)[0][1].probability, 2.0 / 7, 1e-7);
  EXPECT_EQ((*ranked)[1][0].index, 0);
  EXPECT_EQ((*ranked)[1][1].index, 1);
  EXPECT_NEAR((*ranked)[1][1].probability, 1.0 / 3, 1e-12);
}

TEST(TopKTest, LargeLogitsDoNotOverflowAndKIsCappedAtTheClasses) {
  const Tensor scores =
      Tensor::FromValues(DType::kFloat64, Shape{2}, std::vector<double>{1e4, 1e4 - std::log(3.0)});
  StatusOr<std::vector<std::vector<RankedClass>>> ranked = TopK(scores, 5);
  ASSERT_TRUE(ranked.ok()) << ranked.status().ToString();
  ASSERT_EQ(ranked->size(), 1u);
  ASSERT_EQ((*ranked)[0].size(), 2u);
  EXPECT_NEAR((*ranked)[0][0].probability, 0.75, 1e-12);
  EXPECT_NEAR((*ranked)[0][1].probability, 0.25, 1e-12);
}

TEST(TopKTest, RefusesOtherRanksAndNaN) {
  const Tensor images =
      Tensor::FromValues(DType::kFloat32, Shape{1, 1, 2}, std::vector<double>{1, 2});
  EXPECT_EQ(TopK(images, 1).status().code(), StatusCode::kInvalidArgument);
  const Tensor nan =
      Tensor::FromValues(DType::kFloat32, Shape{1, 2}, std::vector<double>{1, std::nan("")});
  StatusOr<std::vector<std::vector<RankedClass>>> ranked = TopK(nan, 1);
  EXPECT_EQ(ranked.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ranked.status().message().find("NaN"), std::string::npos);
}

TEST(TopKTest, FormatsWithLabelsWhereTheFileNamesTheClass) {
  const std::string path = ::testing::TempDir() + "/labels.txt";
  std::ofstream(path) << "cat\r\n\ndog\n";
  StatusOr<std::vector<std::string>> labels = ReadLabels(path);
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(*labels, (std::vector<std::string>{"cat", "", "dog"}));
  const std::vector<std::vector<RankedClass>> rows = {{{2, 0.75}, {1, 0.125}, {7, 0.125}}};
  EXPECT_EQ(FormatTopK("probs", rows, *labels),
            "probs row 0:\n"
            "  1. 0.750000  class 2 (dog)\n"
            "  2. 0.125000  class 1\n"
            "  3. 0.125000  class 7\n");
  EXPECT_EQ(TopKJson(rows, *labels).dump(),
            R"([[{"class":2,"label":"dog","probability":0.75},{"class":1,"probability":0.125},)"
            R"({"class":7,"probability":0.125}]])");
  EXPECT_EQ(ReadLabels(path + ".missing").status().code(), StatusCode::kNotFound);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace backflow::cli
