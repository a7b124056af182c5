// Reading checkpoint files (Note [Checkpoint files] in checkpoint_file.h): RecordReader walks
// the records, CheckpointAssembler fills tensors from data records, and ReadCheckpointFile and
// CheckpointFileReader put the two together.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string_view>
#include <utility>

#include "engine/core/tensor.h"
#include "engine/ir/tensor_proto.h"
#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_file.h"
#include "server/storage/checkpoint_format.h"

namespace backflow::server {

using checkpoint_format::kEnd;
using checkpoint_format::kFileHeaderSize;
using checkpoint_format::kMagic;
using checkpoint_format::kManifest;
using checkpoint_format::kMaxManifestBytes;
using checkpoint_format::kRecordHeaderSize;
using checkpoint_format::kVersion;

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

namespace {

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

}  // namespace

StatusOr<CheckpointAssembler> CheckpointAssembler::Create(
    const google::protobuf::RepeatedPtrField<v1::CheckpointTensor>& tensors,
    const std::string& what) {
  v1::CheckpointRecord record;
  uint64_t total = 0;
  for (const v1::CheckpointTensor& entry : tensors) {
    BF_ASSIGN_OR_RETURN(const uint64_t bytes, CheckTensorEntry(entry, &record, what));
    if (__builtin_add_overflow(total, bytes, &total)) {
      return DataLossError(what + ": the tensors' sizes add up past 2^64 bytes");
    }
  }
  return CheckpointAssembler(what, tensors, std::move(record), total);
}

v1::Tensor& CheckpointAssembler::Current() {
  const v1::CheckpointTensor& entry = order_.Get(static_cast<int>(index_));
  return (*SlotMap(entry.slot(), &record_))[entry.name()];
}

Status CheckpointAssembler::Append(std::string_view bytes) {
  if (bytes.size() > total_ - received_) {
    return DataLossError(what_ + ": " + std::to_string(received_ + bytes.size()) +
                         " bytes of tensors, more than the " + std::to_string(total_) +
                         " listed");
  }
  received_ += bytes.size();
  while (!bytes.empty()) {
    while (static_cast<uint64_t>(order_.Get(static_cast<int>(index_)).bytes()) == filled_) {
      ++index_;  // tensors of no bytes, and those already full
      filled_ = 0;
    }
    const auto want = static_cast<uint64_t>(order_.Get(static_cast<int>(index_)).bytes());
    std::string* data = Current().mutable_data();
    const size_t take = static_cast<size_t>(std::min<uint64_t>(want - filled_, bytes.size()));
    if (filled_ == 0) data->reserve(want);
    data->append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    filled_ += take;
  }
  return Status::Ok();
}

CheckpointFileReader::CheckpointFileReader(std::string path, std::unique_ptr<RecordReader> reader,
                                           v1::CheckpointManifest manifest, uint64_t total)
    : path_(std::move(path)), reader_(std::move(reader)), manifest_(std::move(manifest)),
      total_(total) {}

CheckpointFileReader::~CheckpointFileReader() = default;

StatusOr<std::unique_ptr<CheckpointFileReader>> CheckpointFileReader::Open(
    const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::Open(path));
  BF_ASSIGN_OR_RETURN(v1::CheckpointManifest manifest, ReadManifest(*reader, path));
  // Shapes first, checked against what the file can hold, before any tensor's bytes are
  // allocated: a manifest claiming terabytes costs nothing.
  BF_ASSIGN_OR_RETURN(const CheckpointAssembler layout,
                      CheckpointAssembler::Create(manifest.tensors(), path));
  if (layout.total() > reader->remaining()) {
    return DataLossError(path + ": the manifest's tensors need more bytes than the file holds");
  }
  const uint64_t total = layout.total();
  return std::unique_ptr<CheckpointFileReader>(
      new CheckpointFileReader(path, std::move(reader), std::move(manifest), total));
}

StatusOr<bool> CheckpointFileReader::Next(std::string* chunk) {
  if (ended_) return false;
  BF_ASSIGN_OR_RETURN(const uint32_t type,
                      reader_->Next(static_cast<uint64_t>(kCheckpointChunkBytes), chunk));
  const std::string what = path_ + ": record " + std::to_string(reader_->records());
  if (type == kManifest) return DataLossError(what + " is a second manifest");
  if (type == kEnd) {
    if (chunk->size() != 8 || GetLittleEndian(*chunk, 0, 8) != seen_ || seen_ != total_) {
      return DataLossError(what + " (the end) does not match the " + std::to_string(seen_) +
                           " data bytes read and the " + std::to_string(total_) +
                           " the manifest lists");
    }
    if (reader_->remaining() != 0) {
      return DataLossError(path_ + ": " + std::to_string(reader_->remaining()) +
                           " bytes follow the end record");
    }
    chunk->clear();
    ended_ = true;
    return false;
  }
  if (chunk->size() > total_ - seen_) {
    return DataLossError(what + " holds data past the manifest's " + std::to_string(total_) +
                         " bytes");
  }
  seen_ += chunk->size();
  return true;
}

StatusOr<v1::CheckpointRecord> ReadCheckpointFile(const std::string& path,
                                                  v1::CheckpointManifest* manifest_out) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointFileReader> reader,
                      CheckpointFileReader::Open(path));
  BF_ASSIGN_OR_RETURN(CheckpointAssembler assembler,
                      CheckpointAssembler::Create(reader->manifest().tensors(), path));
  std::string chunk;
  while (true) {
    BF_ASSIGN_OR_RETURN(const bool more, reader->Next(&chunk));
    if (!more) break;
    BF_RETURN_IF_ERROR(assembler.Append(chunk));
  }
  v1::CheckpointRecord record = std::move(assembler.record());
  record.set_step(reader->manifest().step());
  record.set_optimizer_steps(reader->manifest().optimizer_steps());
  record.set_saved_unix_ms(reader->manifest().saved_unix_ms());
  if (reader->manifest().has_history()) *record.mutable_history() = reader->manifest().history();
  if (manifest_out != nullptr) *manifest_out = reader->manifest();
  return record;
}

StatusOr<v1::CheckpointManifest> ReadCheckpointManifest(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::Open(path));
  return ReadManifest(*reader, path);
}

}  // namespace backflow::server
