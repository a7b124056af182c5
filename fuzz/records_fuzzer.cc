// Fuzz target: the data directory's records, read as a restarting server reads them. The input
// is one model's files:
//   u8 mode | u32 LE length N | model.pb (N bytes) | a checkpoint (the rest)
// mode bit 0: the model.pb bytes are a payload, framed here (Note [Atomic files] in
// server/storage/checkpoint_store.h) so mutations reach the parser past the checksum; clear,
// they are the file as it lies on disk. Bit 1: there is a checkpoint. Bit 2: it is the
// checkpoint.pb of a server before checkpoint history, its bytes a CheckpointRecord framed here;
// clear, they are a checkpoint file (Note [Checkpoint files]) at
// checkpoints/000000000001.auto.bfck, as it lies on disk or, with bit 3, with every record's
// CRC-32 recomputed here, so mutations reach the manifest's parser and the tensors' checks. The
// files are written to DATA_DIR/models/fuzz-model/, and then CheckpointStore::LoadAll,
// Model::Create and Model::RestoreCheckpoint run as Server::Start runs them: any bytes must give a
// loaded model or a problem report, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_env.h"
#include "fuzz/fuzz_limits.h"
#include "server/model.h"
#include "server/storage/checkpoint_store.h"
#include "server/work_queue.h"

namespace {

namespace fs = std::filesystem;
using backflow::server::CheckpointStore;

constexpr char kModelId[] = "fuzz-model";

struct RecordsEnv {
  RecordsEnv() : pool(1) {
    auto opened = CheckpointStore::Open(dir.path());
    backflow::fuzz::CheckSetup(opened.status(), "CheckpointStore::Open");
    store = std::move(*opened);
  }
  backflow::fuzz::ScratchDir dir;  // declared first, destroyed last
  backflow::server::ComputePool pool;
  std::unique_ptr<CheckpointStore> store;
};

RecordsEnv& Env() {
  static RecordsEnv* env = new RecordsEnv();  // never destroyed: models may outlive a run
  return *env;
}

void WriteFile(const fs::path& path, const std::string& bytes, bool frame) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string contents = frame ? backflow::server::FrameRecord(bytes) : bytes;
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

// `file` with the CRC-32 of each record that fits in it recomputed (record headers: u32 type,
// u64 length, u32 CRC-32, after the 8-byte file header).
std::string WithChecksums(std::string file) {
  size_t offset = 8;
  while (offset + 16 <= file.size()) {
    uint64_t length = 0;
    std::memcpy(&length, file.data() + offset + 4, sizeof(length));
    if (length > file.size() - offset - 16) break;
    const uint32_t crc =
        backflow::server::Crc32(std::string_view(file).substr(offset + 16, length));
    std::memcpy(file.data() + offset + 12, &crc, sizeof(crc));
    offset += 16 + length;
  }
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const uint8_t mode = data[0];
  uint32_t model_size = 0;
  std::memcpy(&model_size, data + 1, sizeof(model_size));
  const size_t rest = size - 5;
  if (model_size > rest) model_size = static_cast<uint32_t>(rest);
  const std::string model_bytes(reinterpret_cast<const char*>(data + 5), model_size);
  const std::string checkpoint_bytes(reinterpret_cast<const char*>(data + 5 + model_size),
                                     rest - model_size);

  RecordsEnv& env = Env();
  const fs::path dir = fs::path(env.dir.path()) / "models" / kModelId;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  WriteFile(dir / "model.pb", model_bytes, (mode & 1) != 0);
  if ((mode & 2) != 0 && (mode & 4) != 0) {
    WriteFile(dir / "checkpoint.pb", checkpoint_bytes, /*frame=*/true);
  } else if ((mode & 2) != 0) {
    fs::create_directories(dir / "checkpoints", ec);
    WriteFile(dir / "checkpoints" / "000000000001.auto.bfck",
              (mode & 8) != 0 ? WithChecksums(checkpoint_bytes) : checkpoint_bytes,
              /*frame=*/false);
  }

  std::vector<std::string> problems;
  for (backflow::server::StoredModel& stored : env.store->LoadAll(&problems)) {
    backflow::StatusOr<std::shared_ptr<backflow::server::Model>> model =
        backflow::server::Model::Create(std::move(stored.record), backflow::fuzz::Limits(),
                                        backflow::fuzz::kMaxTensorElements, &env.pool);
    if (model.ok() && stored.checkpoint &&
        (*model)->RestoreCheckpoint(*stored.checkpoint, backflow::fuzz::kMaxTensorElements).ok()) {
      (void)(*model)->TakeCheckpoint();  // what the next save writes back
    }
  }
  return 0;
}
