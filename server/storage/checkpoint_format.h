// The constants of Note [Checkpoint files] (server/storage/checkpoint_file.h), shared by the
// writer (checkpoint_file.cc) and the reader (checkpoint_reader.cc). Internal to the storage.
#ifndef BACKFLOW_SERVER_STORAGE_CHECKPOINT_FORMAT_H_
#define BACKFLOW_SERVER_STORAGE_CHECKPOINT_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace backflow::server::checkpoint_format {

inline constexpr char kMagic[4] = {'B', 'F', 'C', 'K'};
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kFileHeaderSize = 8;     // magic, version
inline constexpr size_t kRecordHeaderSize = 16;  // type, length, CRC-32
// A manifest holds names and shapes only: even a model of a million tensors stays far below.
inline constexpr uint64_t kMaxManifestBytes = uint64_t{256} << 20;

enum RecordType : uint32_t { kManifest = 1, kData = 2, kEnd = 3 };

}  // namespace backflow::server::checkpoint_format

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_FORMAT_H_
