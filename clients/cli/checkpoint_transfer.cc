// backflow checkpoint download | upload: a checkpoint as a directory of .npy files, and back.
//
// Note [Checkpoint directories]
// `checkpoint download ID --out DIR` writes
//   DIR/checkpoint.json        the stream's CheckpointHeader as protobuf JSON: how the model
//                              was created, its step, and every tensor's slot, name, dtype and
//                              shape, in the order the server sends them
//   DIR/parameters/NAME.npy    each parameter
//   DIR/state/NAME.npy         running state (batch norm's statistics)
//   DIR/optimizer/KIND/NAME.npy  optimizer slots ("adam_m/W" -> optimizer/adam_m/W.npy)
// NAME keeps [A-Za-z0-9_.-] and writes every other byte (and a leading '.') as %XX, so any
// tensor name is one plain file name. checkpoint.json is written last: a directory without it
// is an interrupted download. The tensors stream through to disk a chunk at a time, so a
// checkpoint of any size downloads in constant memory; `checkpoint upload DIR` streams the
// same files back, creating a new model (on this server or another).
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <utility>

#include <google/protobuf/util/json_util.h>

#include "clients/cli/npy.h"
#include "clients/cli/session.h"
#include "clients/cli/stall_watchdog.h"
#include "engine/ir/tensor_proto.h"

namespace backflow::cli {
namespace {

namespace fs = std::filesystem;
using v1::CheckpointTensor;

constexpr size_t kChunkBytes = size_t{4} << 20;  // what the server sends at most
constexpr char kHeaderFile[] = "checkpoint.json";

std::string Escape(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool plain = std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out.empty() ? "%" : out;  // "%" alone is no escape, so no name maps to it
}

// Note [Checkpoint directories]: where a tensor's .npy file goes, relative to DIR.
fs::path TensorFile(const CheckpointTensor& entry) {
  switch (entry.slot()) {
    case CheckpointTensor::PARAMETER:
      return fs::path("parameters") / (Escape(entry.name()) + ".npy");
    case CheckpointTensor::STATE:
      return fs::path("state") / (Escape(entry.name()) + ".npy");
    default:
      break;
  }
  const size_t slash = entry.name().find('/');
  if (slash == std::string::npos) return fs::path("optimizer") / (Escape(entry.name()) + ".npy");
  return fs::path("optimizer") / Escape(entry.name().substr(0, slash)) /
         (Escape(entry.name().substr(slash + 1)) + ".npy");
}

StatusOr<std::pair<DType, Shape>> Layout(const CheckpointTensor& entry) {
  BF_ASSIGN_OR_RETURN(const DType dtype,
                      DTypeFromProto(entry.dtype(), "tensor '" + entry.name() + "' dtype"));
  return std::make_pair(dtype, Shape(std::vector<int64_t>(entry.dims().begin(),
                                                          entry.dims().end())));
}

// Writes the tensors' bytes, as they arrive, into one .npy file after another.
class NpyWriter {
 public:
  NpyWriter(fs::path dir, const v1::CheckpointHeader& header) : dir_(std::move(dir)), header_(header) {}

  Status Append(std::string_view bytes) {
    while (true) {
      BF_RETURN_IF_ERROR(OpenNext());  // also creates the files of empty tensors
      if (bytes.empty() || index_ >= header_.tensors_size()) break;
      const auto want = static_cast<uint64_t>(header_.tensors(index_).bytes());
      const size_t take = static_cast<size_t>(std::min<uint64_t>(want - filled_, bytes.size()));
      out_.write(bytes.data(), static_cast<std::streamsize>(take));
      if (!out_) return Error("write");
      filled_ += take;
      bytes.remove_prefix(take);
    }
    if (!bytes.empty()) return DataLossError("the server sent more bytes than its header lists");
    return Status::Ok();
  }

  // Every tensor complete and closed.
  Status Close() {
    BF_RETURN_IF_ERROR(OpenNext());
    if (index_ < header_.tensors_size()) {
      return DataLossError("the stream ended inside tensor '" + header_.tensors(index_).name() +
                           "'");
    }
    return Status::Ok();
  }

 private:
  // Moves past full tensors, opening the next file (header written) when one starts.
  Status OpenNext() {
    while (index_ < header_.tensors_size()) {
      const CheckpointTensor& entry = header_.tensors(index_);
      if (!open_) {
        path_ = dir_ / TensorFile(entry);
        std::error_code ec;
        fs::create_directories(path_.parent_path(), ec);
        if (ec) return Status(StatusCode::kUnavailable, path_.parent_path().string() + ": " + ec.message());
        BF_ASSIGN_OR_RETURN(auto layout, Layout(entry));
        out_.open(path_, std::ios::binary | std::ios::trunc);
        const std::string npy = NpyHeader(layout.first, layout.second);
        out_.write(npy.data(), static_cast<std::streamsize>(npy.size()));
        if (!out_) return Error("create");
        open_ = true;
        filled_ = 0;
      }
      if (filled_ < static_cast<uint64_t>(entry.bytes())) return Status::Ok();
      out_.close();
      if (!out_) return Error("write");
      open_ = false;
      ++index_;
    }
    return Status::Ok();
  }

  Status Error(const char* action) const {
    return Status(StatusCode::kUnavailable,
                  path_.string() + ": cannot " + action + ": " + std::strerror(errno));
  }

  fs::path dir_;
  const v1::CheckpointHeader& header_;
  int index_ = 0;
  bool open_ = false;
  uint64_t filled_ = 0;
  fs::path path_;
  std::ofstream out_;
};

StatusOr<v1::DownloadCheckpointRequest> DownloadRequest(const Args& args) {
  if (args.Has("name") && args.Has("step")) {
    return InvalidArgumentError("give --name NAME or --step N, not both");
  }
  v1::DownloadCheckpointRequest request;
  request.set_model_id(args.operands()[0]);
  if (args.Has("name")) {
    BF_ASSIGN_OR_RETURN(const std::string name, args.NonEmpty("name", ""));
    request.set_name(name);
  }
  if (args.Has("step")) {
    BF_ASSIGN_OR_RETURN(const int64_t step, args.Integer("step", 0, 0));
    request.set_step(step);
  }
  return request;
}

// DIR/checkpoint.json: the header as protobuf JSON (field names as in the .proto).
Status WriteHeader(const fs::path& dir, const v1::CheckpointHeader& header) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(header, &json, options);
  std::ofstream file(dir / kHeaderFile, std::ios::trunc);
  file << json;
  file.close();
  if (!file) {
    return Status(StatusCode::kUnavailable, (dir / kHeaderFile).string() + ": cannot write");
  }
  return Status::Ok();
}

int RunDownload(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "checkpoint download";
  StatusOr<v1::DownloadCheckpointRequest> request = DownloadRequest(args);
  StatusOr<std::string> out = args.NonEmpty("out", "");
  for (const Status& problem : {request.status(), out.status()}) {
    if (!problem.ok()) return UsageError(kCommand, problem.message());
  }
  const fs::path dir(*out);
  std::error_code ec;
  if (fs::exists(dir / kHeaderFile, ec)) {
    return Fail(kCommand, (dir / kHeaderFile).string() +
                              " exists: DIR already holds a checkpoint; choose another --out");
  }
  fs::create_directories(dir, ec);
  if (ec) return Fail(kCommand, dir.string() + ": " + ec.message());
  const std::string& id = request->model_id();
  grpc::ClientContext context;
  StallWatchdog watchdog(&context, session.timeout_seconds());
  auto reader = session.stub().DownloadCheckpoint(&context, *request);
  v1::CheckpointChunk chunk;
  v1::CheckpointHeader header;
  std::optional<NpyWriter> writer;
  Status written = Status::Ok();
  int64_t bytes = 0;
  while (written.ok() && reader->Read(&chunk)) {
    watchdog.Progress();
    if (!writer) {
      if (!chunk.has_header()) {
        written = DataLossError("the server's first message has no header");
        break;
      }
      header = std::move(*chunk.mutable_header());
      writer.emplace(dir, header);
    }
    bytes += static_cast<int64_t>(chunk.data().size());
    written = writer->Append(chunk.data());
  }
  if (!written.ok()) context.TryCancel();
  const grpc::Status status = reader->Finish();
  if (!written.ok()) return Fail(std::string(kCommand) + " " + id, written);
  if (watchdog.fired()) {
    return Fail(std::string(kCommand) + " " + id,
                "no data for " + std::to_string(session.timeout_seconds()) + " s (--timeout)");
  }
  if (!status.ok()) return session.Fail(std::string(kCommand) + " " + id, status);
  if (!writer) return Fail(std::string(kCommand) + " " + id, "the server sent nothing");
  if (Status closed = writer->Close(); !closed.ok()) {
    return Fail(std::string(kCommand) + " " + id, closed);
  }
  if (Status saved = WriteHeader(dir, header); !saved.ok()) return Fail(kCommand, saved);
  std::printf("downloaded %s at step %lld to %s (%d tensors, %lld bytes)\n", id.c_str(),
              static_cast<long long>(header.step()), dir.string().c_str(), header.tensors_size(),
              static_cast<long long>(bytes));
  return kExitOk;
}

StatusOr<v1::CheckpointHeader> ReadHeader(const fs::path& dir) {
  const fs::path path = dir / kHeaderFile;
  std::ifstream in(path);
  if (!in) {
    return NotFoundError(path.string() + ": cannot open (is " + dir.string() +
                         " a directory `checkpoint download` wrote?)");
  }
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v1::CheckpointHeader header;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &header);
  if (!parsed.ok()) {
    return InvalidArgumentError(path.string() + ": " + std::string(parsed.message()));
  }
  return header;
}

// Streams one tensor's .npy data into `send`, checking the file against the header first.
Status SendTensor(const fs::path& dir, const CheckpointTensor& entry, std::string* buffer,
                  const std::function<bool(std::string*)>& send) {
  const fs::path path = dir / TensorFile(entry);
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path.string() + ": cannot open: " + std::strerror(errno));
  std::string prefix(64 << 10, '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(prefix.size()));
  prefix.resize(static_cast<size_t>(in.gcount()));
  StatusOr<NpyLayout> layout = DecodeNpyHeader(prefix);
  if (!layout.ok()) return layout.status().WithPrefix(path.string());
  BF_ASSIGN_OR_RETURN(const auto expected, Layout(entry));
  if (layout->dtype != expected.first || layout->shape != expected.second) {
    return InvalidArgumentError(path.string() + ": holds " + std::string(DTypeName(layout->dtype)) +
                                layout->shape.ToString() + ", " + kHeaderFile + " says " +
                                std::string(DTypeName(expected.first)) +
                                expected.second.ToString());
  }
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || size != layout->data_offset + static_cast<uintmax_t>(entry.bytes())) {
    return InvalidArgumentError(path.string() + ": is not " + std::to_string(entry.bytes()) +
                                " bytes of data after its header");
  }
  in.clear();
  in.seekg(static_cast<std::streamoff>(layout->data_offset));
  auto left = static_cast<uint64_t>(entry.bytes());
  while (left > 0) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(left, kChunkBytes - buffer->size()));
    const size_t at = buffer->size();
    buffer->resize(at + take);
    in.read(buffer->data() + at, static_cast<std::streamsize>(take));
    if (static_cast<size_t>(in.gcount()) != take) {
      return Status(StatusCode::kUnavailable, path.string() + ": cannot read");
    }
    left -= take;
    if (buffer->size() == kChunkBytes && !send(buffer)) return Status::Ok();  // the server ended
  }
  return Status::Ok();
}

int RunUpload(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "checkpoint upload";
  const fs::path dir(args.operands()[0]);
  StatusOr<v1::CheckpointHeader> header = ReadHeader(dir);
  if (!header.ok()) return Fail(kCommand, header.status());
  if (args.Has("name")) header->mutable_model()->set_name(args.Value("name"));
  grpc::ClientContext context;
  StallWatchdog watchdog(&context, session.timeout_seconds());
  v1::ModelInfo info;
  auto writer = session.stub().UploadCheckpoint(&context, &info);
  v1::CheckpointChunk chunk;
  *chunk.mutable_header() = *header;
  bool open = writer->Write(chunk);
  watchdog.Progress();
  chunk.Clear();
  const auto send = [&](std::string* buffer) {
    chunk.set_data(std::move(*buffer));
    open = open && writer->Write(chunk);
    watchdog.Progress();
    buffer->clear();
    return open;
  };
  std::string buffer;
  buffer.reserve(kChunkBytes);
  Status sent = Status::Ok();
  for (int i = 0; i < header->tensors_size() && open && sent.ok(); ++i) {
    sent = SendTensor(dir, header->tensors(i), &buffer, send);
  }
  if (sent.ok() && open && !buffer.empty()) send(&buffer);
  if (!sent.ok()) context.TryCancel();  // nothing is created from a stream cut short
  if (open) writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!sent.ok()) return Fail(kCommand, sent);
  if (watchdog.fired()) {
    return Fail(kCommand,
                "no progress for " + std::to_string(session.timeout_seconds()) + " s (--timeout)");
  }
  if (!status.ok()) return session.Fail(std::string(kCommand) + " " + dir.string(), status);
  std::printf("uploaded %s as model %s at step %lld\n", dir.string().c_str(), info.id().c_str(),
              static_cast<long long>(header->step()));
  return kExitOk;
}

}  // namespace

std::vector<Command> CheckpointTransferCommands() {
  return {
      {.name = "checkpoint download",
       .operands = "ID",
       .summary = "write a checkpoint as .npy files and checkpoint.json",
       .details = "Default: the checkpoint the model is at (save one first for the current\n"
                  "state). DIR gets parameters/NAME.npy, state/NAME.npy,\n"
                  "optimizer/KIND/NAME.npy (other characters of NAME as %XX) and\n"
                  "checkpoint.json, written last. Any size: streamed to disk.\n"
                  "Example: backflow checkpoint download m-1 --out m-1.ckpt\n",
       .flags = {{"out", FlagKind::kValue, "DIR", "the directory to write (required)"},
                 {"name", FlagKind::kValue, "NAME", "the named checkpoint NAME"},
                 {"step", FlagKind::kValue, "N",
                  "the newest checkpoint (named or automatic) taken at step N"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunDownload},
      {.name = "checkpoint upload",
       .operands = "DIR",
       .summary = "create a model from a downloaded checkpoint; print its id",
       .details = "DIR as `checkpoint download` wrote it (the .npy files may be changed,\n"
                  "keeping their dtypes and shapes). The new model starts at the\n"
                  "checkpoint's step with its optimizer state, on this server or another.\n"
                  "Example: backflow --server other:50051 checkpoint upload m-1.ckpt\n",
       .flags = {{"name", FlagKind::kValue, "NAME", "the new model's name (default: the same)"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunUpload},
  };
}

}  // namespace backflow::cli
