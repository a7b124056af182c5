#include "server/storage/checkpoint_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ir/tensor_proto.h"
#include "server/storage/atomic_file.h"

namespace backflow::server {
namespace {

constexpr char kMagic[4] = {'B', 'F', 'C', 'K'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFileHeaderSize = 8;     // magic, version
constexpr size_t kRecordHeaderSize = 16;  // type, length, CRC-32
// A manifest holds names and shapes only: even a model of a million tensors stays far below.
constexpr uint64_t kMaxManifestBytes = uint64_t{256} << 20;

enum RecordType : uint32_t { kManifest = 1, kData = 2, kEnd = 3 };

void PutLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t GetLittleEndian(std::string_view bytes, size_t offset, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

std::string RecordHeader(RecordType type, std::string_view payload) {
  std::string header;
  header.reserve(kRecordHeaderSize);
  PutLittleEndian(type, 4, &header);
  PutLittleEndian(payload.size(), 8, &header);
  PutLittleEndian(Crc32(payload), 4, &header);
  return header;
}

// One tensor of the record, with where it goes in the manifest.
struct TensorEntry {
  v1::CheckpointTensor::Slot slot;
  const std::string* name;
  const v1::Tensor* tensor;
};

std::vector<TensorEntry> SortedTensors(const v1::CheckpointRecord& checkpoint) {
  std::vector<TensorEntry> entries;
  const auto add = [&](v1::CheckpointTensor::Slot slot,
                       const google::protobuf::Map<std::string, v1::Tensor>& tensors) {
    for (const auto& [name, tensor] : tensors) entries.push_back({slot, &name, &tensor});
  };
  add(v1::CheckpointTensor::PARAMETER, checkpoint.parameters());
  add(v1::CheckpointTensor::STATE, checkpoint.state());
  add(v1::CheckpointTensor::OPTIMIZER_STATE, checkpoint.optimizer_state());
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.slot, *a.name) < std::tie(b.slot, *b.name);
  });
  return entries;
}

// Data records of at most kCheckpointChunkBytes out of tensors' bytes appended one by one.
class ChunkWriter {
 public:
  ChunkWriter(AtomicFileWriter* file, int64_t total) : file_(file), total_(total) {
    chunk_.reserve(static_cast<size_t>(std::min(total, kCheckpointChunkBytes)));
  }

  Status Append(std::string_view bytes) {
    while (!bytes.empty()) {
      const size_t room = static_cast<size_t>(kCheckpointChunkBytes) - chunk_.size();
      const size_t take = std::min(room, bytes.size());
      chunk_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (chunk_.size() == static_cast<size_t>(kCheckpointChunkBytes)) BF_RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  Status Flush() {
    if (chunk_.empty()) return Status::Ok();
    BF_RETURN_IF_ERROR(file_->Append(RecordHeader(kData, chunk_)));
    BF_RETURN_IF_ERROR(file_->Append(chunk_));
    written_ += static_cast<int64_t>(chunk_.size());
    chunk_.clear();
    if (!paused_ && 2 * written_ >= total_) {
      paused_ = true;
      return file_->Pause();
    }
    return Status::Ok();
  }

 private:
  AtomicFileWriter* file_;
  int64_t total_;
  int64_t written_ = 0;
  bool paused_ = false;
  std::string chunk_;
};

// Reads a checkpoint file front to back, one record at a time.
class RecordReader {
 public:
  static StatusOr<std::unique_ptr<RecordReader>> Open(const std::string& path) {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ENOENT) return NotFoundError(path + ": no such file");
    if (fd < 0) return ErrnoError(errno, path, "open");
    std::unique_ptr<RecordReader> reader(new RecordReader(path, fd));
    struct stat info {};
    if (::fstat(fd, &info) != 0) return ErrnoError(errno, path, "stat");
    reader->size_ = static_cast<uint64_t>(info.st_size);
    std::string header;
    BF_RETURN_IF_ERROR(reader->ReadExactly(kFileHeaderSize, &header, "the file header"));
    if (header.compare(0, 4, kMagic, 4) != 0) {
      return DataLossError(path + ": not a backflow checkpoint file (bad magic)");
    }
    const uint64_t version = GetLittleEndian(header, 4, 4);
    if (version != kVersion) {
      return DataLossError(path + ": unknown checkpoint format version " + std::to_string(version));
    }
    return reader;
  }

  ~RecordReader() { ::close(fd_); }
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Bytes of the file not read yet.
  uint64_t remaining() const { return size_ - offset_; }
  int records() const { return records_; }

  // The next record's payload into `payload`, its type as the result. `max_length` bounds what
  // is allocated for it. At the end of the file: DataLoss (every file ends with an end record).
  StatusOr<uint32_t> Next(uint64_t max_length, std::string* payload) {
    ++records_;
    const std::string what = "record " + std::to_string(records_);
    std::string header;
    BF_RETURN_IF_ERROR(ReadExactly(kRecordHeaderSize, &header, what + "'s header"));
    const auto type = static_cast<uint32_t>(GetLittleEndian(header, 0, 4));
    const uint64_t length = GetLittleEndian(header, 4, 8);
    const auto crc = static_cast<uint32_t>(GetLittleEndian(header, 12, 4));
    if (type < kManifest || type > kEnd) {
      return DataLossError(path_ + ": " + what + " has unknown type " + std::to_string(type));
    }
    if (length > max_length || length > remaining()) {
      return DataLossError(path_ + ": " + what + " claims " + std::to_string(length) +
                           " bytes, more than " +
                           (length > remaining() ? "the file holds" : "a record of its type may"));
    }
    BF_RETURN_IF_ERROR(ReadExactly(length, payload, what));
    if (Crc32(*payload) != crc) return DataLossError(path_ + ": checksum mismatch in " + what);
    return type;
  }

 private:
  RecordReader(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  Status ReadExactly(uint64_t count, std::string* out, const std::string& what) {
    if (count > remaining()) return DataLossError(path_ + ": truncated in " + what);
    out->resize(count);
    size_t done = 0;
    while (done < count) {
      const ssize_t got = ::read(fd_, out->data() + done, count - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoError(errno, path_, "read");
      if (got == 0) return DataLossError(path_ + ": truncated in " + what);
      done += static_cast<size_t>(got);
    }
    offset_ += count;
    return Status::Ok();
  }

  std::string path_;
  int fd_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  int records_ = 0;
};

StatusOr<v1::CheckpointManifest> ReadManifest(RecordReader& reader, const std::string& path) {
  std::string payload;
  BF_ASSIGN_OR_RETURN(const uint32_t type, reader.Next(kMaxManifestBytes, &payload));
  if (type != kManifest) {
    return DataLossError(path + ": record 1 has type " + std::to_string(type) +
                         ", not the manifest");
  }
  v1::CheckpointManifest manifest;
  if (!manifest.ParseFromString(payload)) {
    return DataLossError(path + ": the manifest does not parse");
  }
  return manifest;
}

google::protobuf::Map<std::string, v1::Tensor>* SlotMap(v1::CheckpointTensor::Slot slot,
                                                        v1::CheckpointRecord* record) {
  switch (slot) {
    case v1::CheckpointTensor::PARAMETER:
      return record->mutable_parameters();
    case v1::CheckpointTensor::STATE:
      return record->mutable_state();
    case v1::CheckpointTensor::OPTIMIZER_STATE:
      return record->mutable_optimizer_state();
    default:
      return nullptr;
  }
}

// Checks one manifest entry: a known slot and dtype, a name new to its slot, dimensions whose
// element count times the dtype's size is `bytes`, all without overflow. Returns its bytes.
StatusOr<uint64_t> CheckTensorEntry(const v1::CheckpointTensor& entry, v1::CheckpointRecord* record,
                                    const std::string& path) {
  const std::string what = path + ": tensor '" + entry.name() + "'";
  google::protobuf::Map<std::string, v1::Tensor>* tensors = SlotMap(entry.slot(), record);
  if (tensors == nullptr) return DataLossError(what + " has an unknown slot");
  if (tensors->contains(entry.name())) return DataLossError(what + " is listed twice");
  StatusOr<DType> dtype = DTypeFromProto(entry.dtype(), "dtype");
  if (!dtype.ok()) return DataLossError(what + ": " + dtype.status().message());
  uint64_t count = 1;
  for (const int64_t dim : entry.dims()) {
    if (dim < 0 || __builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count)) {
      return DataLossError(what + " has an impossible shape");
    }
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(count, SizeOf(*dtype), &bytes) || entry.bytes() < 0 ||
      bytes != static_cast<uint64_t>(entry.bytes())) {
    return DataLossError(what + " claims " + std::to_string(entry.bytes()) +
                         " bytes, not its shape's " + std::to_string(bytes));
  }
  v1::Tensor& tensor = (*tensors)[entry.name()];
  tensor.mutable_shape()->Assign(entry.dims().begin(), entry.dims().end());
  tensor.set_dtype(entry.dtype());
  return bytes;
}

// The data records and the end record after the manifest: each tensor's bytes, in manifest
// order, into `record` (whose tensors CheckTensorEntry made); `total` is their sum.
Status ReadTensorBytes(RecordReader& reader, const v1::CheckpointManifest& manifest,
                       uint64_t total, v1::CheckpointRecord* record, const std::string& path) {
  size_t index = 0;     // tensor being filled
  uint64_t filled = 0;  // bytes of it filled so far
  uint64_t seen = 0;    // data bytes read
  const auto next_tensor = [&]() -> v1::Tensor* {
    const v1::CheckpointTensor& entry = manifest.tensors(static_cast<int>(index));
    return &(*SlotMap(entry.slot(), record))[entry.name()];
  };
  std::string payload;
  while (true) {
    BF_ASSIGN_OR_RETURN(const uint32_t type,
                        reader.Next(static_cast<uint64_t>(kCheckpointChunkBytes), &payload));
    const std::string what = path + ": record " + std::to_string(reader.records());
    if (type == kManifest) return DataLossError(what + " is a second manifest");
    if (type == kEnd) {
      if (payload.size() != 8 || GetLittleEndian(payload, 0, 8) != seen || seen != total) {
        return DataLossError(what + " (the end) does not match the " + std::to_string(seen) +
                             " data bytes read and the " + std::to_string(total) +
                             " the manifest lists");
      }
      break;
    }
    if (seen + payload.size() > total) {
      return DataLossError(what + " holds data past the manifest's " + std::to_string(total) +
                           " bytes");
    }
    seen += payload.size();
    std::string_view chunk = payload;
    while (!chunk.empty()) {
      while (static_cast<uint64_t>(manifest.tensors(static_cast<int>(index)).bytes()) == filled) {
        ++index;  // tensors of no bytes, and those already full
        filled = 0;
      }
      v1::Tensor* tensor = next_tensor();
      const uint64_t want =
          static_cast<uint64_t>(manifest.tensors(static_cast<int>(index)).bytes());
      const size_t take = static_cast<size_t>(std::min<uint64_t>(want - filled, chunk.size()));
      if (filled == 0) tensor->mutable_data()->reserve(want);
      tensor->mutable_data()->append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      filled += take;
    }
  }
  if (reader.remaining() != 0) {
    return DataLossError(path + ": " + std::to_string(reader.remaining()) +
                         " bytes follow the end record");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<int64_t> WriteCheckpointFile(const std::string& path,
                                      const v1::CheckpointRecord& checkpoint,
                                      const CheckpointFileMeta& meta,
                                      std::chrono::milliseconds write_delay) {
  const std::vector<TensorEntry> tensors = SortedTensors(checkpoint);
  v1::CheckpointManifest manifest;
  manifest.set_step(checkpoint.step());
  manifest.set_optimizer_steps(checkpoint.optimizer_steps());
  manifest.set_saved_unix_ms(checkpoint.saved_unix_ms());
  manifest.set_name(meta.name);
  manifest.set_sequence(meta.sequence);
  manifest.set_model_id(meta.model_id);
  int64_t total = 0;
  for (const TensorEntry& entry : tensors) {
    v1::CheckpointTensor* described = manifest.add_tensors();
    described->set_slot(entry.slot);
    described->set_name(*entry.name);
    described->set_dtype(entry.tensor->dtype());
    described->mutable_dims()->Assign(entry.tensor->shape().begin(), entry.tensor->shape().end());
    described->set_bytes(static_cast<int64_t>(entry.tensor->data().size()));
    total += described->bytes();
  }
  std::string payload;
  if (manifest.ByteSizeLong() > kMaxManifestBytes || !manifest.SerializeToString(&payload)) {
    return ResourceExhaustedError(path + ": the checkpoint's manifest (" +
                                  std::to_string(tensors.size()) + " tensors) is too large");
  }
  BF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file,
                      AtomicFileWriter::Create(path, write_delay));
  std::string header(kMagic, sizeof(kMagic));
  PutLittleEndian(kVersion, 4, &header);
  BF_RETURN_IF_ERROR(file->Append(header));
  BF_RETURN_IF_ERROR(file->Append(RecordHeader(kManifest, payload)));
  BF_RETURN_IF_ERROR(file->Append(payload));
  ChunkWriter chunks(file.get(), total);
  for (const TensorEntry& entry : tensors) BF_RETURN_IF_ERROR(chunks.Append(entry.tensor->data()));
  BF_RETURN_IF_ERROR(chunks.Flush());
  std::string end;
  PutLittleEndian(static_cast<uint64_t>(total), 8, &end);
  BF_RETURN_IF_ERROR(file->Append(RecordHeader(kEnd, end)));
  BF_RETURN_IF_ERROR(file->Append(end));
  const int64_t size = file->size();
  BF_RETURN_IF_ERROR(file->Commit());
  return size;
}

StatusOr<v1::CheckpointRecord> ReadCheckpointFile(const std::string& path,
                                                  v1::CheckpointManifest* manifest_out) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::Open(path));
  BF_ASSIGN_OR_RETURN(v1::CheckpointManifest manifest, ReadManifest(*reader, path));
  v1::CheckpointRecord record;
  record.set_step(manifest.step());
  record.set_optimizer_steps(manifest.optimizer_steps());
  record.set_saved_unix_ms(manifest.saved_unix_ms());
  // Shapes first, checked against what the file can hold, before any tensor's bytes are
  // allocated: a manifest claiming terabytes costs nothing.
  uint64_t total = 0;
  for (const v1::CheckpointTensor& entry : manifest.tensors()) {
    BF_ASSIGN_OR_RETURN(const uint64_t bytes, CheckTensorEntry(entry, &record, path));
    if (__builtin_add_overflow(total, bytes, &total) || total > reader->remaining()) {
      return DataLossError(path + ": the manifest's tensors need more bytes than the file holds");
    }
  }
  BF_RETURN_IF_ERROR(ReadTensorBytes(*reader, manifest, total, &record, path));
  if (manifest_out != nullptr) *manifest_out = std::move(manifest);
  return record;
}

StatusOr<v1::CheckpointManifest> ReadCheckpointManifest(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::Open(path));
  return ReadManifest(*reader, path);
}

}  // namespace backflow::server
