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
#include <string>

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

// The checkpoint in the file at `path`, and its manifest if `manifest` is not null. NotFound if
// there is no file; DataLoss "PATH: ..." for anything Note [Checkpoint files] rules out; file
// system errors with ErrnoCode's status code.
StatusOr<v1::CheckpointRecord> ReadCheckpointFile(const std::string& path,
                                                  v1::CheckpointManifest* manifest = nullptr);

// Only the manifest (the file's first record), for listing checkpoints without reading them.
// The data records are not checked.
StatusOr<v1::CheckpointManifest> ReadCheckpointManifest(const std::string& path);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_FILE_H_
