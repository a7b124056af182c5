// The CLI's readers of users' data (clients/cli/data_file.h): .npz archives written by NumPy
// (tests/clients/data/generate.py says what each holds) and CSV text, with their errors.
#include "clients/cli/data_file.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace backflow::cli {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(BACKFLOW_SOURCE_DIR) + "/tests/clients/data/" + name;
}

std::vector<float> Values(const Tensor& tensor) {
  return {tensor.data<float>(), tensor.data<float>() + tensor.num_elements()};
}

TEST(DataFileTest, ReadsNumpySavezWithItsNamesAndDtypes) {
  StatusOr<std::vector<std::pair<std::string, Tensor>>> arrays = ReadNpz(Fixture("plain.npz"));
  ASSERT_TRUE(arrays.ok()) << arrays.status().ToString();
  ASSERT_EQ(arrays->size(), 2u);
  EXPECT_EQ((*arrays)[0].first, "x");
  EXPECT_EQ((*arrays)[0].second.dtype(), DType::kFloat32);
  EXPECT_EQ((*arrays)[0].second.shape(), Shape({4, 3}));
  EXPECT_EQ((*arrays)[1].first, "labels");
  EXPECT_EQ((*arrays)[1].second.dtype(), DType::kInt64);
  EXPECT_EQ((*arrays)[1].second.data<int64_t>()[0], 2);

  StatusOr<Dataset> data = LoadDataFile(Fixture("plain.npz"));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size(), 4);
  EXPECT_EQ(data->images.shape(), Shape({4, 3}));
  EXPECT_EQ(Values(data->images), std::vector<float>({0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f,
                                                      2, 2.25f, 2.5f, 2.75f}));
  EXPECT_EQ(Values(data->labels), std::vector<float>({2, 0, 1, 2}));
}

TEST(DataFileTest, ReadsCompressedAndUnnamedArchives) {
  // savez_compressed (deflate); the labels come first and are named y.
  StatusOr<Dataset> compressed = LoadDataFile(Fixture("compressed.npz"));
  ASSERT_TRUE(compressed.ok()) << compressed.status().ToString();
  EXPECT_EQ(compressed->images.shape(), Shape({3, 2, 2}));
  EXPECT_EQ(compressed->images.dtype(), DType::kFloat32);
  EXPECT_EQ(compressed->images.data<float>()[0], -5.5f);
  EXPECT_EQ(compressed->images.data<float>()[11], 5.5f);
  EXPECT_EQ(Values(compressed->labels), std::vector<float>({1, 0, 1}));

  // arr_0 and arr_1: the labels are the only rank-1 array.
  StatusOr<Dataset> unnamed = LoadDataFile(Fixture("unnamed.npz"), {.limit = 1});
  ASSERT_TRUE(unnamed.ok()) << unnamed.status().ToString();
  EXPECT_EQ(unnamed->images.shape(), Shape({1, 2}));
  EXPECT_EQ(Values(unnamed->images), std::vector<float>({1, 2}));
  EXPECT_EQ(Values(unnamed->labels), std::vector<float>({0}));
}

TEST(DataFileTest, ArchiveErrorsSayWhatWasFoundAndWhatWouldDo) {
  struct Case {
    std::string file, code, message;
  };
  const std::vector<Case> cases = {
      {"missing.npz", "NOT_FOUND", "missing.npz: no such file"},
      {"three.npz", "INVALID_ARGUMENT",
       "three.npz: holds a [3], b [3], c [3, 2]: train needs two arrays, the features [N, ...] "
       "and the labels [N], as np.savez(FILE, x=x, labels=labels) writes them"},
      {"uint8.npz", "INVALID_ARGUMENT", "uint8.npz: x.npy: dtype '|u1' is not supported"},
      {"blob_mlp.pbtxt", "INVALID_ARGUMENT", "not a .npz archive (Not a zip archive)"},
  };
  for (const Case& c : cases) {
    StatusOr<std::vector<std::pair<std::string, Tensor>>> arrays = ReadNpz(Fixture(c.file));
    Status status = arrays.status();
    if (status.ok()) status = LoadDataFile(Fixture(c.file)).status();
    EXPECT_EQ(StatusCodeName(status.code()), c.code) << c.file << ": " << status.ToString();
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status.ToString();
  }
}

TEST(DataFileTest, CsvFindsItsHeaderAndLabelColumn) {
  const std::string text = "a, b ,label,c\n1,2,0,3\n\n4.5,-5,2,6e1\r\n";
  StatusOr<Dataset> data = DatasetFromCsv(text, "", "t.csv");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->images.shape(), Shape({2, 3}));
  EXPECT_EQ(Values(data->images), std::vector<float>({1, 2, 3, 4.5f, -5, 60}));
  EXPECT_EQ(Values(data->labels), std::vector<float>({0, 2}));

  // No header: the last column, unless named by index.
  StatusOr<Dataset> last = DatasetFromCsv("1,2,1\n3,4,0\n", "", "t.csv");
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(Values(last->labels), std::vector<float>({1, 0}));
  StatusOr<Dataset> first = DatasetFromCsv("1,2,1\n3,4,0\n", "0", "t.csv");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Values(first->labels), std::vector<float>({1, 3}));
  EXPECT_EQ(Values(first->images), std::vector<float>({2, 1, 4, 0}));
  StatusOr<Dataset> named = DatasetFromCsv("p,q,r\n1,2,1\n", "p", "t.csv");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(Values(named->labels), std::vector<float>({1}));
}

TEST(DataFileTest, CsvErrorsNameTheLineAndColumn) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a,b\n1,2\n3\n", "t.csv line 3: 1 fields, expected 2"},
      {"a,b\n1,2\n3,x7\n", "t.csv line 3: column b: 'x7' is not a finite number"},
      {"1,2\n3,nan\n", "t.csv line 2: column 1: 'nan' is not a finite number"},
      {"a,b\n", "t.csv: needs at least one row of two or more columns"},
      {"1\n2\n", "t.csv: needs at least one row of two or more columns"},
  };
  for (const auto& [text, message] : cases) {
    StatusOr<Dataset> data = DatasetFromCsv(text, "", "t.csv");
    ASSERT_FALSE(data.ok()) << text;
    EXPECT_EQ(data.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(data.status().message().find(message), std::string::npos) << data.status().ToString();
  }
  StatusOr<Dataset> no_column = DatasetFromCsv("a,b\n1,2\n", "label", "t.csv");
  ASSERT_FALSE(no_column.ok());
  EXPECT_EQ(no_column.status().message(), "t.csv: no label column 'label' (2 columns)");
  EXPECT_TRUE(IsDataFile("d/x.npz") && IsDataFile("x.csv") && !IsDataFile("fashion-mnist"));
}

}  // namespace
}  // namespace backflow::cli
