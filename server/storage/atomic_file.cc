#include "server/storage/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <utility>

namespace backflow::server {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[4] = {'B', 'F', 'L', 'W'};

// Closes the descriptor unless Close() already did.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // close(2)'s result: on Linux the descriptor is gone even when it fails, so never retried.
  int Close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// Writes all of `data`, resuming after short writes and signals.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, "write");
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return Status::Ok();
}

Status Fsync(int fd, const std::string& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoError(errno, path, "fsync");
  }
  return Status::Ok();
}

// Creates a fresh temporary file next to `path` and stores its name in `temp_path`.
StatusOr<int> CreateTemporaryFile(const fs::path& path, std::string* temp_path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string prefix =
      "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + ".";
  int err = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    *temp_path = (dir / (prefix + RandomSuffix())).string();
    const int fd = ::open(temp_path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    err = errno;
    if (err != EINTR && err != EEXIST) break;
  }
  return ErrnoError(err, *temp_path, "create");
}

// The contents of the temporary file, durable once this returns OK (see write_delay).
Status WriteAndSync(int fd, const std::string& bytes, std::chrono::milliseconds write_delay,
                    const std::string& temp_path) {
  std::string_view rest = bytes;
  if (write_delay.count() > 0) {
    const std::string_view first_half = rest.substr(0, rest.size() / 2);
    BF_RETURN_IF_ERROR(WriteAll(fd, first_half, temp_path));
    BF_RETURN_IF_ERROR(Fsync(fd, temp_path));
    std::this_thread::sleep_for(write_delay);
    rest.remove_prefix(first_half.size());
  }
  BF_RETURN_IF_ERROR(WriteAll(fd, rest, temp_path));
  return Fsync(fd, temp_path);
}

}  // namespace

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

uint32_t Crc32(std::string_view data) {
  // crc32_z takes a size_t length, so payloads past 4 GiB are summed whole.
  return static_cast<uint32_t>(
      crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

Status ErrnoError(int err, const std::string& path, const char* action) {
  return Status(ErrnoCode(err), path + ": cannot " + action + ": " + std::strerror(err));
}

StatusCode ErrnoCode(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return StatusCode::kResourceExhausted;
    case ENOENT:
    case EROFS:
    case EACCES:
    case EPERM:
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EEXIST:
    case ELOOP:
    case ENAMETOOLONG:
    case EXDEV:
    case EBUSY:
      return StatusCode::kFailedPrecondition;
    default:
      return StatusCode::kUnavailable;
  }
}

std::string FrameRecord(const std::string& payload) {
  std::string framed(kMagic, sizeof(kMagic));
  framed.reserve(kFrameHeaderSize + payload.size());
  PutLittleEndian(kFrameVersion, 4, &framed);
  PutLittleEndian(payload.size(), 8, &framed);
  PutLittleEndian(Crc32(payload), 4, &framed);
  framed += payload;
  return framed;
}

StatusOr<std::string> UnframeRecord(const std::string& bytes, const std::string& path) {
  auto loss = [&path](const std::string& what) { return DataLossError(path + ": " + what); };
  if (bytes.size() < kFrameHeaderSize) {
    return loss("truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the " +
                std::to_string(kFrameHeaderSize) + "-byte header");
  }
  if (bytes.compare(0, sizeof(kMagic), kMagic, sizeof(kMagic)) != 0) {
    return loss("bad magic: not a backflow record");
  }
  const uint64_t version = GetLittleEndian(bytes, 4, 4);
  if (version != kFrameVersion) {
    return loss("unknown format version " + std::to_string(version) + " (this server reads " +
                std::to_string(kFrameVersion) + ")");
  }
  const uint64_t length = GetLittleEndian(bytes, 8, 8);
  const uint64_t available = bytes.size() - kFrameHeaderSize;
  if (length > available) {
    return loss("truncated: header promises " + std::to_string(length) +
                " payload bytes, file holds " + std::to_string(available));
  }
  if (length < available) {
    return loss("length mismatch: header promises " + std::to_string(length) +
                " payload bytes, file holds " + std::to_string(available));
  }
  std::string payload = bytes.substr(kFrameHeaderSize);
  if (Crc32(payload) != GetLittleEndian(bytes, 16, 4)) return loss("checksum mismatch");
  return payload;
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes,
                           std::chrono::milliseconds write_delay) {
  std::string temp_path;
  BF_ASSIGN_OR_RETURN(const int raw_fd, CreateTemporaryFile(path, &temp_path));
  ScopedFd fd(raw_fd);
  Status status = WriteAndSync(fd.get(), bytes, write_delay, temp_path);
  if (status.ok() && fd.Close() != 0) status = ErrnoError(errno, temp_path, "close");
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, path, "rename a temporary file over");
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  // The rename is only durable once the directory entry is.
  const fs::path parent = fs::path(path).parent_path();
  return SyncDirectory(parent.empty() ? "." : parent.string());
}

StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(
    const std::string& path, std::chrono::milliseconds write_delay) {
  std::string temp_path;
  BF_ASSIGN_OR_RETURN(const int fd, CreateTemporaryFile(path, &temp_path));
  return std::unique_ptr<AtomicFileWriter>(
      new AtomicFileWriter(path, std::move(temp_path), fd, write_delay));
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string temp_path, int fd,
                                   std::chrono::milliseconds write_delay)
    : path_(std::move(path)),
      temp_path_(std::move(temp_path)),
      fd_(fd),
      write_delay_(write_delay) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

Status AtomicFileWriter::Append(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  if (committed_ || fd_ < 0) return failed_ = InternalError(path_ + ": written after Commit");
  failed_ = WriteAll(fd_, bytes, temp_path_);
  size_ += static_cast<int64_t>(bytes.size());
  return failed_;
}

Status AtomicFileWriter::Pause() {
  if (!failed_.ok() || write_delay_.count() <= 0) return failed_;
  failed_ = Fsync(fd_, temp_path_);
  if (failed_.ok()) std::this_thread::sleep_for(write_delay_);
  write_delay_ = {};
  return failed_;
}

Status AtomicFileWriter::Commit() {
  if (!failed_.ok()) return failed_;
  if (committed_ || fd_ < 0) return failed_ = InternalError(path_ + ": committed twice");
  Status status = Fsync(fd_, temp_path_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, temp_path_, "close");
  if (status.ok() && ::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    status = ErrnoError(errno, path_, "rename a temporary file over");
  }
  if (!status.ok()) return failed_ = status;
  committed_ = true;
  // The rename is only durable once the directory entry is.
  const fs::path parent = fs::path(path_).parent_path();
  return failed_ = SyncDirectory(parent.empty() ? "." : parent.string());
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int raw_fd;
  do {
    raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) {
    if (errno == ENOENT) return NotFoundError(path + ": no such file");
    return ErrnoError(errno, path, "open");
  }
  ScopedFd fd(raw_fd);
  std::string contents;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, "read");
    }
    if (got == 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  return contents;
}

Status SyncDirectory(const std::string& path) {
  int raw_fd;
  do {
    raw_fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) return ErrnoError(errno, path, "open directory");
  ScopedFd fd(raw_fd);
  return Fsync(fd.get(), path);
}

bool IsTemporaryFileName(std::string_view name) {
  return name.size() > 1 && name.front() == '.' && name.find(".tmp.", 1) != std::string_view::npos;
}

std::string RandomSuffix() {
  // One engine per thread, so no lock. A forked child continues its parent's sequence; the pid
  // in temporary names keeps those apart, and creation with O_EXCL retries on a clash.
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static const char kDigits[] = "0123456789abcdef";
  uint64_t value = engine();
  std::string suffix(16, '0');
  for (char& c : suffix) {
    c = kDigits[value & 0xF];
    value >>= 4;
  }
  return suffix;
}

}  // namespace backflow::server
