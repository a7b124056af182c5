// The CLI's .npy reader and writer (clients/cli/npy.h). The expected bytes were produced once by
// numpy 1.24 (np.save / np.lib.format.write_array) and are written out here, so the test needs
// no Python: the dict text, the number of padding spaces numpy adds and the data bytes.
#include "clients/cli/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace backflow::cli {
namespace {

std::string FromHex(std::string_view hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return bytes;
}

// A version 1.0 file: magic, version, header length (little-endian uint16), dict, `spaces`
// spaces, '\n', data.
std::string NumpyFile(std::string_view dict, size_t spaces, std::string_view data_hex) {
  const size_t length = dict.size() + spaces + 1;
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(length & 0xff);
  bytes += static_cast<char>(length >> 8);
  bytes += std::string(dict) + std::string(spaces, ' ') + "\n" + FromHex(data_hex);
  return bytes;
}

struct NumpyCase {
  std::string name;
  Tensor tensor;
  std::string expected;  // what np.save writes
};

std::vector<NumpyCase> NumpyCases() {
  std::vector<double> six = {0, 1, 2, 3, 4, 5};
  std::vector<double> five = {0, 1, 2, 3, 4};
  return {
      {"arange6_f4_2x3", Tensor::FromValues(DType::kFloat32, Shape{2, 3}, six),
       NumpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58,
                 "000000000000803f0000004000004040000080400000a040")},
      {"scalar_f8", Tensor::Scalar(DType::kFloat64, 1.5),
       NumpyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 62,
                 "000000000000f83f")},
      {"arange5_f8", Tensor::FromValues(DType::kFloat64, Shape{5}, five),
       NumpyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", 60,
                 "0000000000000000000000000000f03f00000000000000400000000000000840"
                 "0000000000001040")},
      // np.save(f, np.array([[0, -1, 2]], dtype=np.int64)) and np.array([7, -3], np.int32).
      {"ids_i8_1x3", Tensor::FromValues(DType::kInt64, Shape{1, 3}, std::vector<double>{0, -1, 2}),
       NumpyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3), }", 58,
                 "0000000000000000ffffffffffffffff0200000000000000")},
      {"ids_i4_2", Tensor::FromValues(DType::kInt32, Shape{2}, std::vector<double>{7, -3}),
       NumpyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 60,
                 "07000000fdffffff")},
      {"empty_f4", Tensor(DType::kFloat32, Shape{0}),
       NumpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 60, "")},
      {"zeros_f4_123456x0", Tensor(DType::kFloat32, Shape{123456, 0}),
       NumpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (123456, 0), }", 53, "")},
      {"zeros_f4_1x2x3x4", Tensor(DType::kFloat32, Shape{1, 2, 3, 4}),
       NumpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3, 4), }", 52,
                 std::string(24 * 8, '0'))},
      // Rank 21: the header outgrows 128 bytes and numpy pads to the next multiple of 64.
      {"rank21_f4",
       Tensor::FromValues(DType::kFloat32,
                          Shape(std::vector<int64_t>{2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1}),
                          std::vector<double>{0, 1}),
       NumpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 1, 1, 1, 1, 1, 1, 1, "
                 "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }",
                 65, "000000000000803f")},
  };
}

TEST(NpyTest, EncodesExactlyWhatNumpyWrites) {
  for (const NumpyCase& c : NumpyCases()) {
    SCOPED_TRACE(c.name);
    const std::string bytes = EncodeNpy(c.tensor);
    EXPECT_EQ(bytes, c.expected);
    EXPECT_EQ((bytes.size() - c.tensor.byte_size()) % 64, 0u) << "data must start 64-aligned";
  }
}

TEST(NpyTest, DecodesWhatNumpyWrites) {
  for (const NumpyCase& c : NumpyCases()) {
    SCOPED_TRACE(c.name);
    StatusOr<Tensor> tensor = DecodeNpy(c.expected);
    ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
    EXPECT_TRUE(BitwiseEqual(*tensor, c.tensor))
        << tensor->shape().ToString() << " vs " << c.tensor.shape().ToString();
  }
}

TEST(NpyTest, RoundTripsRandomTensorsBitwise) {
  std::mt19937_64 random(42);
  std::normal_distribution<double> normal(0, 1e3);
  const std::vector<Shape> shapes = {Shape{}, Shape{1}, Shape{7}, Shape{3, 4}, Shape{2, 3, 5, 2}};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (const Shape& shape : shapes) {
      std::vector<double> values(static_cast<size_t>(shape.num_elements()));
      for (double& v : values) v = normal(random);
      const Tensor tensor = Tensor::FromValues(dtype, shape, values);
      StatusOr<Tensor> back = DecodeNpy(EncodeNpy(tensor));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_TRUE(BitwiseEqual(*back, tensor)) << shape.ToString() << " " << DTypeName(dtype);
    }
  }
}

TEST(NpyTest, ReadsVersion2Headers) {
  // np.lib.format.write_array(f, np.array([1, 2, 3], np.float32), version=(2, 0)): a 4-byte
  // header length (116) and 58 spaces of padding.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  const std::string bytes = std::string("\x93NUMPY\x02\x00\x74\x00\x00\x00", 12) + dict +
                            std::string(58, ' ') + "\n" + FromHex("0000803f0000004000004040");
  ASSERT_EQ(bytes.size(), 128u + 12u);
  StatusOr<Tensor> tensor = DecodeNpy(bytes);
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->shape(), (Shape{3}));
  EXPECT_EQ(tensor->dtype(), DType::kFloat32);
  EXPECT_EQ(tensor->ToDoubles(), (std::vector<double>{1, 2, 3}));
}

TEST(NpyTest, ReadsKeysInAnyOrderAndAnySpacing) {
  const std::string dict = "{\"shape\":(2,),'fortran_order':False,\n 'descr' : '<f8'}";
  std::string bytes = NumpyFile(dict, 3, "000000000000f03f0000000000000040");
  StatusOr<Tensor> tensor = DecodeNpy(bytes);
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->shape(), (Shape{2}));
  EXPECT_EQ(tensor->ToDoubles(), (std::vector<double>{1, 2}));
}

// The message of DecodeNpy's error for `bytes` (empty if it succeeded).
std::string DecodeError(const std::string& bytes) {
  StatusOr<Tensor> tensor = DecodeNpy(bytes);
  EXPECT_FALSE(tensor.ok());
  if (tensor.ok()) return "";
  EXPECT_EQ(tensor.status().code(), StatusCode::kInvalidArgument);
  return tensor.status().message();
}

TEST(NpyTest, RejectsWhatItCannotReadWithAClearMessage) {
  const std::string f4_2x3 = "'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<i2', " + f4_2x3, 1, std::string(24, '0')))
                .find("dtype '<i2' is not supported"),
            std::string::npos);
  EXPECT_NE(
      DecodeError(NumpyFile("{'descr': '>f4', " + f4_2x3, 1, std::string(48, '0'))).find("'>f4'"),
      std::string::npos);
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 1,
                                  std::string(48, '0')))
                .find("Fortran"),
            std::string::npos);
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<f4', " + f4_2x3, 1, std::string(40, '0')))
                .find("needs 24 bytes of data, found 20"),
            std::string::npos);
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<f4', " + f4_2x3, 1, std::string(56, '0')))
                .find("found 28"),
            std::string::npos);
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<f4', 'shape': (2, 3), }", 1, "")).find("lacks"),
            std::string::npos);
  EXPECT_NE(DecodeError(NumpyFile("{'descr': '<f4', " + std::string("'fortran_order': False, "
                                                                    "'shape': (2, -3), }"),
                                  1, ""))
                .find("'shape'"),
            std::string::npos);
  EXPECT_NE(DecodeError("PK\x03\x04 a zip file").find("not a .npy file"), std::string::npos);
  std::string version4 = EncodeNpy(Tensor::Scalar(DType::kFloat32, 1));
  version4[6] = '\x04';
  EXPECT_NE(DecodeError(version4).find("version 4.0"), std::string::npos);
  EXPECT_NE(
      DecodeError(EncodeNpy(Tensor::Scalar(DType::kFloat32, 1)).substr(0, 40)).find("truncated"),
      std::string::npos);
}

TEST(NpyTest, FilesRoundTripAndErrorsNameThePath) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("backflow-npy-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "w.npy").string();
  const Tensor tensor =
      Tensor::FromValues(DType::kFloat64, Shape{2, 2}, std::vector<double>{1, 2, 3, 4});
  ASSERT_TRUE(WriteNpy(path, tensor).ok());
  StatusOr<Tensor> back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(BitwiseEqual(*back, tensor));

  StatusOr<Tensor> missing = ReadNpy((dir / "missing.npy").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.npy"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace backflow::cli
