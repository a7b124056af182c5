// The checkpoint file format (Note [Checkpoint files]): round trips across chunk boundaries, and
// every kind of damage reported as DataLoss naming the file, never a crash or a large
// allocation.
#include "server/storage/checkpoint_file.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "server/storage/atomic_file.h"
#include "tests/server/storage/storage_test_util.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using testing::CheckpointAt;
using testing::FloatTensor;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::WriteBytes;

// A record as the format frames it, for files written by hand.
std::string Record(uint32_t type, const std::string& payload) {
  std::string record;
  PutLittleEndian(type, 4, &record);
  PutLittleEndian(payload.size(), 8, &record);
  PutLittleEndian(Crc32(payload), 4, &record);
  return record + payload;
}

std::string FileHeader() { return std::string("BFCK\x01\x00\x00\x00", 8); }

std::string EndRecord(uint64_t data_bytes) {
  std::string payload;
  PutLittleEndian(data_bytes, 8, &payload);
  return Record(3, payload);
}

// 3,000,000 float32 (12 MB: three chunks), a scalar, an empty tensor, float64 and int64 state.
v1::CheckpointRecord LargeCheckpoint() {
  v1::CheckpointRecord checkpoint = CheckpointAt(41);
  std::vector<float> big(3000000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 9973) * 0.5f;
  (*checkpoint.mutable_parameters())["big"] = FloatTensor({1000, 3000}, big);
  (*checkpoint.mutable_parameters())["scalar"] = FloatTensor({}, {3.5f});
  (*checkpoint.mutable_parameters())["empty"] = FloatTensor({0, 4}, {});
  v1::Tensor counts;
  counts.add_shape(2);
  counts.set_dtype(v1::INT64);
  const int64_t values[2] = {7, -9};
  counts.set_data(std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  (*checkpoint.mutable_state())["bn/count"] = counts;
  v1::Tensor mean;
  mean.add_shape(1);
  mean.set_dtype(v1::FLOAT64);
  const double m = 0.125;
  mean.set_data(std::string(reinterpret_cast<const char*>(&m), sizeof(m)));
  (*checkpoint.mutable_state())["bn/mean"] = mean;
  return checkpoint;
}

class CheckpointFileTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }

  // The DataLoss message reading `bytes` as a checkpoint file gives ("" if it reads).
  std::string DamageOf(const std::string& bytes) {
    const std::string path = Path("damaged.bfck");
    WriteBytes(path, bytes);
    StatusOr<v1::CheckpointRecord> read = ReadCheckpointFile(path);
    if (read.ok()) return "";
    EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << read.status().ToString();
    EXPECT_THAT(read.status().message(), HasSubstr(path));
    return read.status().message();
  }

  ScratchDir dir_;
};

TEST_F(CheckpointFileTest, RoundTripAcrossChunks) {
  const v1::CheckpointRecord saved = LargeCheckpoint();
  const std::string path = Path("big.bfck");
  StatusOr<int64_t> size =
      WriteCheckpointFile(path, saved, {.model_id = "m-1", .name = "best", .sequence = 12});
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, static_cast<int64_t>(fs::file_size(path)));
  // The header, the manifest, three data records, the end; the data of 12,000,000 + 32 + 4 + 16
  // + 8 bytes.
  EXPECT_GT(*size, 12000060);
  EXPECT_LT(*size, 12000060 + 1024);

  v1::CheckpointManifest manifest;
  StatusOr<v1::CheckpointRecord> loaded = ReadCheckpointFile(path, &manifest);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(*loaded, saved));
  EXPECT_EQ(manifest.step(), 41);
  EXPECT_EQ(manifest.optimizer_steps(), 41);
  EXPECT_EQ(manifest.saved_unix_ms(), 1700000000041);
  EXPECT_EQ(manifest.name(), "best");
  EXPECT_EQ(manifest.sequence(), 12);
  EXPECT_EQ(manifest.model_id(), "m-1");
  // Sorted by slot, then name.
  std::vector<std::string> order;
  for (const v1::CheckpointTensor& tensor : manifest.tensors()) order.push_back(tensor.name());
  EXPECT_THAT(order, ::testing::ElementsAre("b", "big", "empty", "scalar", "w", "bn/count",
                                            "bn/mean", "w/m"));
  EXPECT_EQ(manifest.tensors(1).bytes(), 12000000);

  StatusOr<v1::CheckpointManifest> only = ReadCheckpointManifest(path);
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(*only, manifest));
}

TEST_F(CheckpointFileTest, TheSameStateGivesTheSameBytes) {
  const v1::CheckpointRecord saved = CheckpointAt(3);
  ASSERT_TRUE(WriteCheckpointFile(Path("a"), saved, {.sequence = 1}).ok());
  ASSERT_TRUE(WriteCheckpointFile(Path("b"), saved, {.sequence = 1}).ok());
  EXPECT_EQ(*ReadFile(Path("a")), *ReadFile(Path("b")));
}

TEST_F(CheckpointFileTest, EveryTruncationAndEveryFlippedByteIsDataLoss) {
  ASSERT_TRUE(WriteCheckpointFile(Path("small"), CheckpointAt(5), {.sequence = 1}).ok());
  const std::string bytes = *ReadFile(Path("small"));
  ASSERT_EQ(DamageOf(bytes), "");
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_NE(DamageOf(bytes.substr(0, length)), "") << "cut at " << length;
  }
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string flipped = bytes;
    flipped[at] ^= 0x20;
    EXPECT_NE(DamageOf(flipped), "") << "byte " << at;
  }
  EXPECT_THAT(DamageOf(bytes + "x"), HasSubstr("1 bytes follow the end record"));
}

TEST_F(CheckpointFileTest, ManifestClaimsAreCheckedBeforeAnythingIsAllocated) {
  const auto file_with = [](const v1::CheckpointTensor& tensor, const std::string& data) {
    v1::CheckpointManifest manifest;
    *manifest.add_tensors() = tensor;
    std::string payload;
    manifest.SerializeToString(&payload);
    return FileHeader() + Record(1, payload) + (data.empty() ? "" : Record(2, data)) +
           EndRecord(data.size());
  };
  v1::CheckpointTensor huge;
  huge.set_name("w");
  huge.set_dtype(v1::FLOAT32);
  huge.add_dims(1 << 20);
  huge.add_dims(1 << 20);
  huge.set_bytes(int64_t{4} << 40);  // 4 TiB in a file of a few dozen bytes
  EXPECT_THAT(DamageOf(file_with(huge, "")), HasSubstr("need more bytes than the file holds"));

  v1::CheckpointTensor overflowing = huge;
  overflowing.add_dims(int64_t{1} << 40);
  EXPECT_THAT(DamageOf(file_with(overflowing, "")), HasSubstr("impossible shape"));

  v1::CheckpointTensor wrong_size;
  wrong_size.set_name("w");
  wrong_size.add_dims(2);
  wrong_size.set_bytes(4);
  EXPECT_THAT(DamageOf(file_with(wrong_size, "abcd")),
              HasSubstr("tensor 'w' claims 4 bytes, not its shape's 8"));

  v1::CheckpointTensor negative = wrong_size;
  negative.set_dims(0, -2);
  EXPECT_THAT(DamageOf(file_with(negative, "")), HasSubstr("impossible shape"));

  v1::CheckpointTensor bad_dtype = wrong_size;
  bad_dtype.set_bytes(8);
  bad_dtype.set_dtype(static_cast<v1::DataType>(99));
  EXPECT_NE(DamageOf(file_with(bad_dtype, "abcdefgh")), "");

  v1::CheckpointTensor fine = wrong_size;
  fine.set_bytes(8);
  EXPECT_EQ(DamageOf(file_with(fine, "abcdefgh")), "");
  EXPECT_THAT(DamageOf(file_with(fine, "abcdefghij")), HasSubstr("data past the manifest's 8"));
}

TEST_F(CheckpointFileTest, RecordsOutOfPlaceAreDataLoss) {
  v1::CheckpointManifest manifest;
  std::string payload;
  manifest.SerializeToString(&payload);
  EXPECT_THAT(DamageOf(FileHeader() + EndRecord(0)), HasSubstr("not the manifest"));
  EXPECT_THAT(DamageOf(FileHeader() + Record(1, payload) + Record(1, payload) + EndRecord(0)),
              HasSubstr("a second manifest"));
  EXPECT_THAT(DamageOf(FileHeader() + Record(1, payload) + Record(7, "") + EndRecord(0)),
              HasSubstr("unknown type 7"));
  EXPECT_THAT(DamageOf(FileHeader() + Record(1, payload) + EndRecord(5)),
              HasSubstr("does not match"));
  EXPECT_THAT(DamageOf(FileHeader() + Record(1, payload)), HasSubstr("truncated"));
  EXPECT_THAT(DamageOf(std::string("BFCK\x02\x00\x00\x00", 8) + Record(1, payload)),
              HasSubstr("unknown checkpoint format version 2"));
  EXPECT_EQ(DamageOf(FileHeader() + Record(1, payload) + EndRecord(0)), "");
}

TEST_F(CheckpointFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadCheckpointFile(Path("none")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadCheckpointManifest(Path("none")).status().code(), StatusCode::kNotFound);
}

TEST_F(CheckpointFileTest, AFailedWriteLeavesNothing) {
  const std::string path = Path("sub/missing-dir/x.bfck");
  EXPECT_FALSE(WriteCheckpointFile(path, CheckpointAt(1), {}).ok());
  EXPECT_TRUE(fs::is_empty(dir_.path()));
}

}  // namespace
}  // namespace backflow::server
