#include "server/storage/checkpoint_file.h"

#include <algorithm>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_format.h"

namespace backflow::server {
namespace {

using checkpoint_format::kData;
using checkpoint_format::kEnd;
using checkpoint_format::kMagic;
using checkpoint_format::kManifest;
using checkpoint_format::kMaxManifestBytes;
using checkpoint_format::kRecordHeaderSize;
using checkpoint_format::kVersion;
using checkpoint_format::RecordType;

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

}  // namespace

v1::CheckpointManifest DescribeCheckpoint(const v1::CheckpointRecord& checkpoint) {
  v1::CheckpointManifest manifest;
  manifest.set_step(checkpoint.step());
  manifest.set_optimizer_steps(checkpoint.optimizer_steps());
  manifest.set_saved_unix_ms(checkpoint.saved_unix_ms());
  if (checkpoint.has_history()) *manifest.mutable_history() = checkpoint.history();
  for (const TensorEntry& entry : SortedTensors(checkpoint)) {
    v1::CheckpointTensor* described = manifest.add_tensors();
    described->set_slot(entry.slot);
    described->set_name(*entry.name);
    described->set_dtype(entry.tensor->dtype());
    described->mutable_dims()->Assign(entry.tensor->shape().begin(), entry.tensor->shape().end());
    described->set_bytes(static_cast<int64_t>(entry.tensor->data().size()));
  }
  return manifest;
}

const v1::Tensor* FindCheckpointTensor(const v1::CheckpointRecord& checkpoint,
                                       const v1::CheckpointTensor& entry) {
  const google::protobuf::Map<std::string, v1::Tensor>* tensors = nullptr;
  switch (entry.slot()) {
    case v1::CheckpointTensor::PARAMETER:
      tensors = &checkpoint.parameters();
      break;
    case v1::CheckpointTensor::STATE:
      tensors = &checkpoint.state();
      break;
    case v1::CheckpointTensor::OPTIMIZER_STATE:
      tensors = &checkpoint.optimizer_state();
      break;
    default:
      return nullptr;
  }
  auto it = tensors->find(entry.name());
  return it == tensors->end() ? nullptr : &it->second;
}

StatusOr<int64_t> WriteCheckpointFile(const std::string& path,
                                      const v1::CheckpointRecord& checkpoint,
                                      const CheckpointFileMeta& meta,
                                      std::chrono::milliseconds write_delay) {
  v1::CheckpointManifest manifest = DescribeCheckpoint(checkpoint);
  manifest.set_name(meta.name);
  manifest.set_sequence(meta.sequence);
  manifest.set_model_id(meta.model_id);
  const std::vector<TensorEntry> tensors = SortedTensors(checkpoint);
  int64_t total = 0;
  for (const TensorEntry& entry : tensors) {
    total += static_cast<int64_t>(entry.tensor->data().size());
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

}  // namespace backflow::server
