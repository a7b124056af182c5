#include "engine/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

namespace backflow {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;

// The type codes of the IDX format, for error messages.
const char* IdxTypeName(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

std::string Hex(unsigned value, int digits) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int i = digits - 1; i >= 0; --i) s += kDigits[(value >> (4 * i)) & 0xF];
  return s;
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// A reader over one open file that turns zlib's results into Statuses naming the file.
class IdxStream {
 public:
  IdxStream(std::string path, GzFile file) : path_(std::move(path)), file_(std::move(file)) {}

  Status Error(const std::string& message) const {
    return InvalidArgumentError(path_ + ": " + message);
  }

  // Reads exactly `n` bytes; `what` names them for the truncation message.
  Status ReadExactly(uint8_t* out, int64_t n, const char* what) {
    int64_t done = 0;
    while (done < n) {
      // gzread counts in unsigned int and returns int: read in chunks well below both limits.
      const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, int64_t{1} << 30));
      const int got = gzread(file_.get(), out + done, chunk);
      if (got < 0) return Error("corrupt gzip data (" + ZlibMessage() + ")");
      if (got == 0) {
        return Error("truncated: " + std::string(what) + " has " + std::to_string(done) + " of " +
                     std::to_string(n) + " bytes");
      }
      done += got;
    }
    return Status::Ok();
  }

  // True if anything (even one byte) follows what has been read so far.
  StatusOr<bool> HasMore() {
    uint8_t byte;
    const int got = gzread(file_.get(), &byte, 1);
    if (got < 0) return Error("corrupt gzip data (" + ZlibMessage() + ")");
    return got > 0;
  }

 private:
  std::string ZlibMessage() const {
    int code = Z_OK;
    const char* message = gzerror(file_.get(), &code);
    return message != nullptr && *message != '\0' ? message : "zlib error " + std::to_string(code);
  }

  std::string path_;
  GzFile file_;
};

StatusOr<IdxStream> Open(const std::string& path) {
  // gzopen opens a directory happily and fails only on the first read, with a vaguer message.
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return InvalidArgumentError(path + ": is a directory, not an IDX file");
  }
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int error = errno;
    if (error == ENOENT) return NotFoundError(path + ": no such file");
    return InvalidArgumentError(path + ": cannot open (" +
                                (error != 0 ? std::strerror(error) : "out of memory") + ")");
  }
  return IdxStream(path, std::move(file));
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads the magic and the dimensions; checks the type and the element count against the limit.
Status ReadHeader(IdxStream& in, int64_t max_elements, std::vector<int64_t>* dims) {
  uint8_t magic[4];
  BF_RETURN_IF_ERROR(in.ReadExactly(magic, 4, "the magic number"));
  if (magic[0] != 0 || magic[1] != 0) {
    return in.Error("bad magic " + Hex(BigEndian32(magic), 8) +
                    ": not an IDX file (expected 0x0000TTRR)");
  }
  if (magic[2] != kUnsignedByteType) {
    return in.Error("unsupported element type " + Hex(magic[2], 2) + " (" + IdxTypeName(magic[2]) +
                    "); only unsigned byte (0x08) is supported");
  }
  const int rank = magic[3];
  if (rank == 0) return in.Error("rank 0: an IDX array needs at least one dimension");
  std::vector<uint8_t> raw(static_cast<size_t>(rank) * 4);
  BF_RETURN_IF_ERROR(in.ReadExactly(raw.data(), static_cast<int64_t>(raw.size()), "the header"));
  dims->clear();
  for (int i = 0; i < rank; ++i) dims->push_back(BigEndian32(&raw[static_cast<size_t>(i) * 4]));
  // Each dimension is below 2^32, so a product still under max_elements (< 2^63) times the next
  // one cannot overflow once the bound check before each multiplication has passed.
  if (std::find(dims->begin(), dims->end(), 0) != dims->end()) return Status::Ok();  // empty
  int64_t count = 1;
  for (int64_t d : *dims) {
    if (count > max_elements / d) {
      std::string shape;
      for (int64_t e : *dims) shape += (shape.empty() ? "" : "x") + std::to_string(e);
      return in.Error("dimensions " + shape + " exceed the limit of " +
                      std::to_string(max_elements) + " elements");
    }
    count *= d;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<IdxArray> ReadIdx(const std::string& path, const IdxReadOptions& options) {
  BF_ASSIGN_OR_RETURN(IdxStream in, Open(path));
  IdxArray array;
  BF_RETURN_IF_ERROR(ReadHeader(in, options.max_elements, &array.dims));
  const bool partial = options.max_records >= 0 && options.max_records < array.dims[0];
  if (partial) array.dims[0] = options.max_records;
  int64_t count = 1;
  for (int64_t d : array.dims) count *= d;  // bounded by ReadHeader
  array.data.resize(static_cast<size_t>(count));
  BF_RETURN_IF_ERROR(in.ReadExactly(array.data.data(), count, "the data"));
  if (!partial) {
    BF_ASSIGN_OR_RETURN(bool more, in.HasMore());
    if (more) {
      return in.Error("bytes past the declared " + std::to_string(count) +
                      " elements (wrong dimensions?)");
    }
  }
  return array;
}

StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t max_elements) {
  return ReadIdx(path, IdxReadOptions{.max_elements = max_elements});
}

}  // namespace backflow
