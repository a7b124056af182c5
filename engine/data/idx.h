// IDX: the file format of MNIST and Fashion-MNIST (yann.lecun.com/exdb/mnist).
//
// A file is a 4-byte big-endian magic 0x00 0x00 TYPE RANK, then RANK big-endian uint32
// dimensions, then the elements row-major. Only TYPE 0x08 (unsigned byte) is supported: it is
// what the image and label files use. Files may be plain or gzip-compressed (as they are
// distributed); zlib tells the two apart by content, not by the file name.
//
// The reader trusts nothing in the file: the header's element count is checked against a limit
// before anything is allocated, and a file that ends early or goes on past its declared size is
// rejected rather than padded or cut.
//
// Thread safety: ReadIdx keeps no state; call it from any thread.
#ifndef BACKFLOW_ENGINE_DATA_IDX_H_
#define BACKFLOW_ENGINE_DATA_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/status.h"

namespace backflow {

// 1 GiB of bytes: the largest file ReadIdx accepts unless told otherwise.
inline constexpr int64_t kIdxDefaultMaxElements = int64_t{1} << 30;

struct IdxArray {
  std::vector<int64_t> dims;  // outermost first; dims[0] is the record count
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

struct IdxReadOptions {
  // Upper bound on the element count the header may declare (before max_records applies).
  int64_t max_elements = kIdxDefaultMaxElements;
  // If >= 0, read only the first max_records records (slices along dims[0]); dims[0] of the
  // result is then min(dims[0], max_records) and the rest of the file is not read or checked.
  int64_t max_records = -1;
};

// Reads the IDX file at `path`. Errors:
//   NotFound          the file does not exist;
//   InvalidArgument   naming the file: a bad magic, an unsupported element type, rank 0, more
//                     elements than the limit, a file that ends early (truncated) or has bytes
//                     past its declared size, a corrupt gzip stream, or a file it cannot open.
StatusOr<IdxArray> ReadIdx(const std::string& path, const IdxReadOptions& options);
StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t max_elements = kIdxDefaultMaxElements);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_DATA_IDX_H_
