// Checkpoint files: a model's parameters, running state and optimizer state on disk, in a
// format with no size limit of its own, written and read a chunk at a time.
//
// Note [Checkpoint files]
// A checkpoint was once one framed protobuf (Note [Atomic files]); protobuf refuses messages of
// 2 GiB or more, so a model past about 500 million float32 parameters (with its optimizer's
// slots, far fewer) could never be saved, and writing one meant serialising it whole, twice the
// model's size in memory. Now a checkpoint file is
//   "BFCK" | u32 version (1) | record... (little-endian)
//   record = u32 type | u64 payload length | u32 CRC-32 of payload | payload
// with, in this order:
//   1 manifest   exactly one: a CheckpointManifest (step, name, the tensors' slots, names,
//                dtypes and shapes), small whatever the model's size;
//   2 data       the tensors' bytes back to back in the manifest's order, cut into records of
//                at most kCheckpointChunkBytes (4 MiB), so each is checked on its own and a
//                reader holds one chunk beyond the tensors it fills;
//   3 end        u64: the number of data bytes, so a file cut at a record boundary is told
//                from a whole one.
// Nothing may follow the end record. A reader checks every checksum, type, length and the
// manifest's sizes (each tensor's bytes are its element count times its dtype's size, all of
// them add up to the data records') before it trusts them, and allocates only what the file
// can hold (its size is known), so a damaged or hostile file is DataLoss naming the file and
// the record, never a crash or an allocation of what the manifest claims.
// The file is written through AtomicFileWriter: a crash leaves the old files and a temporary
// one that the store removes when it opens.
#ifndef BACKFLOW_SERVER_STORAGE_CHECKPOINT_FILE_H_
#define BACKFLOW_SERVER_STORAGE_CHECKPOINT_FILE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "engine/core/status.h"

namespace backflow::server {

inline constexpr int64_t kCheckpointChunkBytes = int64_t{4} << 20;

// What a checkpoint file says about itself, beyond the record's contents.
struct CheckpointFileMeta {
  std::string model_id;
  std::string name;  // "" for an automatic checkpoint
  int64_t sequence = 0;
};

// Writes `checkpoint` to `path` atomically in the format of Note [Checkpoint files]; returns
// the file's size. Tensors go in sorted by slot, then name, so the same state always gives the
// same bytes. With `write_delay` > 0 the call syncs and sleeps that long once half of the data
// is written (the crash tests' "killed mid-write").
StatusOr<int64_t> WriteCheckpointFile(const std::string& path,
                                      const v1::CheckpointRecord& checkpoint,
                                      const CheckpointFileMeta& meta,
                                      std::chrono::milliseconds write_delay = {});

// The manifest of `checkpoint` (step, optimizer steps, time and its tensors in file order:
// sorted by slot, then name), without the file's own fields (name, sequence, model id).
v1::CheckpointManifest DescribeCheckpoint(const v1::CheckpointRecord& checkpoint);
// The tensor a manifest entry describes, in `checkpoint`; null if it has none.
const v1::Tensor* FindCheckpointTensor(const v1::CheckpointRecord& checkpoint,
                                       const v1::CheckpointTensor& entry);

// The checkpoint in the file at `path`, and its manifest if `manifest` is not null. NotFound if
// there is no file; DataLoss "PATH: ..." for anything Note [Checkpoint files] rules out; file
// system errors with ErrnoCode's status code.
StatusOr<v1::CheckpointRecord> ReadCheckpointFile(const std::string& path,
                                                  v1::CheckpointManifest* manifest = nullptr);

// Only the manifest (the file's first record), for listing checkpoints without reading them.
// The data records are not checked.
StatusOr<v1::CheckpointManifest> ReadCheckpointManifest(const std::string& path);

class RecordReader;  // checkpoint_reader.cc

// A checkpoint file read a data record at a time, for sending it on without holding it
// (DownloadCheckpoint): every check of ReadCheckpointFile, made as the records go by. The file
// stays open, so a checkpoint removed meanwhile (pruned, deleted) is still read whole.
class CheckpointFileReader {
 public:
  // Opens the file and reads its manifest, whose tensors are checked as ReadCheckpointFile
  // checks them (shapes, sizes, what the file can hold).
  static StatusOr<std::unique_ptr<CheckpointFileReader>> Open(const std::string& path);
  ~CheckpointFileReader();
  CheckpointFileReader(const CheckpointFileReader&) = delete;
  CheckpointFileReader& operator=(const CheckpointFileReader&) = delete;

  const v1::CheckpointManifest& manifest() const { return manifest_; }
  // The next data record's bytes (at most kCheckpointChunkBytes) into `chunk`: true. False once
  // the end record is read and matches what came before, with nothing after it. DataLoss naming
  // the file and the record otherwise.
  StatusOr<bool> Next(std::string* chunk);

 private:
  CheckpointFileReader(std::string path, std::unique_ptr<RecordReader> reader,
                       v1::CheckpointManifest manifest, uint64_t total);
  std::string path_;
  std::unique_ptr<RecordReader> reader_;
  v1::CheckpointManifest manifest_;
  uint64_t total_;      // the data bytes the manifest lists
  uint64_t seen_ = 0;   // data bytes read so far
  bool ended_ = false;  // the end record was read
};

// A CheckpointRecord filled from its tensors' bytes as they arrive, back to back in the order
// of a manifest's tensor list (reading a file; UploadCheckpoint).
class CheckpointAssembler {
 public:
  // Checks the list: known slots and dtypes, no name twice in a slot, dimensions whose element
  // count times the dtype's size is the entry's `bytes`, all without overflow. DataLoss
  // "WHAT: tensor 'NAME' ..." otherwise. Allocates nothing for the bytes yet.
  static StatusOr<CheckpointAssembler> Create(
      const google::protobuf::RepeatedPtrField<v1::CheckpointTensor>& tensors,
      const std::string& what);

  // The next bytes; each tensor's storage is reserved when its first byte arrives. DataLoss
  // for bytes past the list's total.
  Status Append(std::string_view bytes);
  uint64_t total() const { return total_; }
  uint64_t received() const { return received_; }
  bool complete() const { return received_ == total_; }
  // The record (step and the rest left for the caller to set).
  v1::CheckpointRecord& record() { return record_; }

 private:
  CheckpointAssembler(std::string what,
                      google::protobuf::RepeatedPtrField<v1::CheckpointTensor> order,
                      v1::CheckpointRecord record, uint64_t total)
      : what_(std::move(what)), order_(std::move(order)), record_(std::move(record)),
        total_(total) {}
  // The tensor of order_[index_] in record_ (looked up, never kept: the record may move).
  v1::Tensor& Current();
  std::string what_;
  google::protobuf::RepeatedPtrField<v1::CheckpointTensor> order_;  // the list, checked
  v1::CheckpointRecord record_;
  uint64_t total_;
  uint64_t received_ = 0;
  size_t index_ = 0;    // the tensor being filled
  uint64_t filled_ = 0;  // its bytes so far
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_FILE_H_
