#include "engine/data/idx.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace backflow {
namespace {

using Bytes = std::vector<uint8_t>;

// A fresh directory per test, so tests may run in parallel (ctest -j) without sharing files.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("idx_test_" + std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WritePlain(const std::string& name, const Bytes& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  std::string WriteGzip(const std::string& name, const Bytes& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
                static_cast<int>(bytes.size()));
    }
    gzclose(f);
    return path;
  }

  std::filesystem::path dir_;
};

// The bytes of an IDX file: magic 00 00 type rank, big-endian uint32 dims, then `data`.
Bytes Idx(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

Bytes Counting(size_t n) {
  Bytes data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  return data;
}

void ExpectInvalid(const StatusOr<IdxArray>& result, const std::string& path,
                   const std::string& reason) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().ToString();
  EXPECT_NE(result.status().message().find(path), std::string::npos) << result.status().ToString();
  EXPECT_NE(result.status().message().find(reason), std::string::npos)
      << result.status().ToString();
}

TEST_F(IdxTest, PlainAndGzipFilesReadBackExactly) {
  const Bytes data = Counting(2 * 3 * 5);
  for (bool gzip : {false, true}) {
    const Bytes file = Idx({2, 3, 5}, data);
    const std::string path = gzip ? WriteGzip("a.gz", file) : WritePlain("a", file);
    StatusOr<IdxArray> array = ReadIdx(path);
    ASSERT_TRUE(array.ok()) << array.status().ToString();
    EXPECT_EQ(array->dims, (std::vector<int64_t>{2, 3, 5})) << "gzip " << gzip;
    EXPECT_EQ(array->data, data) << "gzip " << gzip;
  }
}

// The reader goes by content, not by name: a compressed file without ".gz" reads the same.
TEST_F(IdxTest, CompressionIsDetectedByContent) {
  const Bytes data = Counting(9);
  StatusOr<IdxArray> array = ReadIdx(WriteGzip("labels-idx1-ubyte", Idx({9}, data)));
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->dims, (std::vector<int64_t>{9}));
  EXPECT_EQ(array->data, data);
}

// Large enough that zlib inflates it in several internal buffers.
TEST_F(IdxTest, LargeGzipFileReadsBackExactly) {
  const Bytes data = Counting(300 * 28 * 28);
  StatusOr<IdxArray> array = ReadIdx(WriteGzip("big.gz", Idx({300, 28, 28}, data)));
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->dims, (std::vector<int64_t>{300, 28, 28}));
  EXPECT_EQ(array->data, data);
}

TEST_F(IdxTest, ZeroRecordsGiveAnEmptyArray) {
  StatusOr<IdxArray> array = ReadIdx(WritePlain("empty", Idx({0, 28, 28}, {})));
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->dims, (std::vector<int64_t>{0, 28, 28}));
  EXPECT_TRUE(array->data.empty());
}

TEST_F(IdxTest, MaxRecordsReadsOnlyAPrefix) {
  const Bytes data = Counting(10 * 4);
  const std::string path = WriteGzip("prefix.gz", Idx({10, 4}, data));
  StatusOr<IdxArray> array = ReadIdx(path, IdxReadOptions{.max_records = 3});
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->dims, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(array->data, Bytes(data.begin(), data.begin() + 12));
  // More records than the file has: all of them.
  array = ReadIdx(path, IdxReadOptions{.max_records = 99});
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->dims, (std::vector<int64_t>{10, 4}));
  EXPECT_EQ(array->data, data);
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "nope.gz").string();
  StatusOr<IdxArray> array = ReadIdx(path);
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().code(), StatusCode::kNotFound);
  EXPECT_NE(array.status().message().find(path), std::string::npos);
}

TEST_F(IdxTest, DirectoryIsInvalid) {
  ExpectInvalid(ReadIdx(dir_.string()), dir_.string(), "is a directory");
}

TEST_F(IdxTest, BadMagicIsInvalid) {
  Bytes file = Idx({4}, Counting(4));
  file[1] = 0x01;
  std::string path = WritePlain("magic", file);
  ExpectInvalid(ReadIdx(path), path, "bad magic 0x00010801");
  path = WriteGzip("text.gz", Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  ExpectInvalid(ReadIdx(path), path, "bad magic");
}

TEST_F(IdxTest, OtherElementTypesAreUnsupported) {
  std::string path = WritePlain("float", Idx({2}, Counting(8), 0x0D));
  ExpectInvalid(ReadIdx(path), path, "unsupported element type 0x0d (float32)");
  path = WritePlain("weird", Idx({2}, Counting(2), 0x42));
  ExpectInvalid(ReadIdx(path), path, "unsupported element type 0x42 (unknown)");
}

TEST_F(IdxTest, RankZeroIsInvalid) {
  const std::string path = WritePlain("rank0", Idx({}, Counting(1)));
  ExpectInvalid(ReadIdx(path), path, "rank 0");
}

TEST_F(IdxTest, TruncatedFilesAreInvalid) {
  const Bytes file = Idx({3, 4}, Counting(12));
  struct Cut {
    size_t keep;
    const char* reason;
  };
  const Cut cuts[] = {{0, "the magic number has 0 of 4 bytes"},
                      {2, "the magic number has 2 of 4 bytes"},
                      {6, "the header has 2 of 8 bytes"},
                      {12, "the data has 0 of 12 bytes"},
                      {23, "the data has 11 of 12 bytes"}};
  for (const Cut& cut : cuts) {
    const Bytes head(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(cut.keep));
    for (bool gzip : {false, true}) {
      const std::string name = "cut" + std::to_string(cut.keep) + (gzip ? ".gz" : "");
      const std::string path = gzip ? WriteGzip(name, head) : WritePlain(name, head);
      SCOPED_TRACE(name);
      ExpectInvalid(ReadIdx(path), path, std::string("truncated: ") + cut.reason);
    }
  }
}

// A gzip stream cut short (a partial download) is as truncated as a short plain file.
TEST_F(IdxTest, TruncatedGzipStreamIsInvalid) {
  const std::string full = WriteGzip("full.gz", Idx({64, 64}, Counting(64 * 64)));
  std::ifstream in(full, std::ios::binary);
  const Bytes compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path =
      WritePlain("half.gz", Bytes(compressed.begin(), compressed.begin() + 40));
  StatusOr<IdxArray> array = ReadIdx(path);
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(array.status().message().find(path), std::string::npos);
}

TEST_F(IdxTest, CorruptGzipDataIsInvalid) {
  // A gzip header (magic, deflate, no flags) followed by bytes that are not a deflate stream.
  Bytes file = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03};
  for (int i = 0; i < 64; ++i) file.push_back(0xff);
  const std::string path = WritePlain("corrupt.gz", file);
  ExpectInvalid(ReadIdx(path), path, "corrupt gzip data");
}

TEST_F(IdxTest, BytesPastTheDeclaredSizeAreInvalid) {
  Bytes file = Idx({2, 2}, Counting(4));
  file.push_back(0);
  const std::string path = WriteGzip("long.gz", file);
  ExpectInvalid(ReadIdx(path), path, "bytes past the declared 4 elements");
}

TEST_F(IdxTest, DimensionsOverTheLimitAreInvalid) {
  // Checked from the header alone: nothing of the (absent) data is allocated or read.
  std::string path = WritePlain("huge", Idx({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  ExpectInvalid(ReadIdx(path), path,
                "dimensions 4294967295x4294967295x4294967295 exceed the limit of 1073741824");
  path = WritePlain("small", Idx({3, 4}, Counting(12)));
  ExpectInvalid(ReadIdx(path, /*max_elements=*/11), path, "dimensions 3x4 exceed the limit of 11");
  StatusOr<IdxArray> array = ReadIdx(path, /*max_elements=*/12);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
}

}  // namespace
}  // namespace backflow
