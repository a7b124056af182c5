#include "server/storage/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/server/storage/storage_test_util.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::Listing;
using testing::ScratchDir;
using ::testing::StartsWith;

constexpr char kPath[] = "/data/models/m/checkpoint.pb";

// CRC-32 of "123456789" is 0xCBF43926, the standard check value of the zlib polynomial.
TEST(FrameTest, HeaderIsMagicVersionLengthAndCrcLittleEndian) {
  const std::string framed = FrameRecord("123456789");
  const std::string expected_header(
      "BFLW"
      "\x01\x00\x00\x00"
      "\x09\x00\x00\x00\x00\x00\x00\x00"
      "\x26\x39\xF4\xCB",
      20);
  ASSERT_EQ(framed.size(), 29u);
  EXPECT_EQ(framed.substr(0, 20), expected_header);
  EXPECT_EQ(framed.substr(20), "123456789");
}

TEST(FrameTest, RoundTripKeepsBinaryPayload) {
  const std::string payload("a\0b\xff\x00z", 6);
  StatusOr<std::string> unframed = UnframeRecord(FrameRecord(payload), kPath);
  ASSERT_TRUE(unframed.ok()) << unframed.status().ToString();
  EXPECT_EQ(*unframed, payload);

  StatusOr<std::string> empty = UnframeRecord(FrameRecord(""), kPath);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
}

// Each kind of damage is DATA_LOSS and the message starts with the file's path.
void ExpectDataLoss(const std::string& bytes, const std::string& reason) {
  StatusOr<std::string> unframed = UnframeRecord(bytes, kPath);
  ASSERT_FALSE(unframed.ok());
  EXPECT_EQ(unframed.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(unframed.status().message(), StartsWith(std::string(kPath) + ": "));
  EXPECT_THAT(unframed.status().message(), HasSubstr(reason));
}

TEST(FrameTest, FlippedPayloadByteIsChecksumMismatch) {
  std::string framed = FrameRecord("some checkpoint bytes");
  framed[25] ^= 0x01;
  ExpectDataLoss(framed, "checksum mismatch");
}

TEST(FrameTest, FlippedChecksumByteIsChecksumMismatch) {
  std::string framed = FrameRecord("some checkpoint bytes");
  framed[17] ^= 0x40;
  ExpectDataLoss(framed, "checksum mismatch");
}

TEST(FrameTest, TruncatedPayloadIsReported) {
  const std::string framed = FrameRecord("some checkpoint bytes");
  ExpectDataLoss(framed.substr(0, framed.size() - 1),
                 "truncated: header promises 21 payload bytes, file holds 20");
}

TEST(FrameTest, TruncatedHeaderIsReported) {
  ExpectDataLoss(FrameRecord("abc").substr(0, 11), "truncated: 11 bytes");
  ExpectDataLoss("", "truncated: 0 bytes");
}

TEST(FrameTest, TrailingBytesAreALengthMismatch) {
  ExpectDataLoss(FrameRecord("abc") + "x",
                 "length mismatch: header promises 3 payload bytes, file holds 4");
}

TEST(FrameTest, BadMagicIsReported) {
  std::string framed = FrameRecord("abc");
  framed[0] = 'X';
  ExpectDataLoss(framed, "bad magic");
}

TEST(FrameTest, UnknownVersionIsReported) {
  std::string framed = FrameRecord("abc");
  framed[4] = 2;
  ExpectDataLoss(framed, "unknown format version 2");
}

TEST(WriteFileAtomicallyTest, WritesThenReplacesWithoutLeavingTemporaryFiles) {
  ScratchDir dir;
  const std::string path = (dir.path() / "file.pb").string();
  ASSERT_TRUE(WriteFileAtomically(path, "first version").ok());
  StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, "first version");

  const std::string second(100000, 'z');
  ASSERT_TRUE(WriteFileAtomically(path, second).ok());
  read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, second);
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"file.pb"});
}

TEST(WriteFileAtomicallyTest, DelayedWriteStillWritesEveryByte) {
  ScratchDir dir;
  const std::string path = (dir.path() / "file.pb").string();
  std::string bytes;
  for (int i = 0; i < 1001; ++i) bytes += static_cast<char>(i % 251);
  ASSERT_TRUE(WriteFileAtomically(path, bytes, std::chrono::milliseconds(20)).ok());
  StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, bytes);
}

TEST(WriteFileAtomicallyTest, MissingDirectoryIsAnErrorNamingThePath) {
  ScratchDir dir;
  const std::string path = (dir.path() / "absent" / "file.pb").string();
  const Status status = WriteFileAtomically(path, "bytes");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr((dir.path() / "absent").string()));
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(WriteFileAtomicallyTest, RenameFailureRemovesTheTemporaryFile) {
  ScratchDir dir;
  // rename(2) cannot put a file over a non-empty directory.
  fs::create_directories(dir.path() / "target" / "child");
  const Status status = WriteFileAtomically((dir.path() / "target").string(), "bytes");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr((dir.path() / "target").string()));
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"target"});
}

TEST(ReadFileTest, MissingFileIsNotFound) {
  ScratchDir dir;
  StatusOr<std::string> read = ReadFile((dir.path() / "nope").string());
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr((dir.path() / "nope").string()));
}

TEST(TemporaryFileNameTest, MatchesOnlyWriteFileAtomicallyNames) {
  EXPECT_TRUE(IsTemporaryFileName(".checkpoint.pb.tmp.123.0123456789abcdef"));
  EXPECT_FALSE(IsTemporaryFileName("checkpoint.pb"));
  EXPECT_FALSE(IsTemporaryFileName("checkpoint.pb.tmp.1.2"));
  EXPECT_FALSE(IsTemporaryFileName(".deleted-m-0123"));
  EXPECT_NE(RandomSuffix(), RandomSuffix());
  EXPECT_EQ(RandomSuffix().size(), 16u);
}

}  // namespace
}  // namespace backflow::server
