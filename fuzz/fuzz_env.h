// What the server-side fuzz targets share: a scratch data directory (on /dev/shm when there is
// one, so fsync costs nothing) that lives as long as the process, and a one-thread ComputePool.
#ifndef BACKFLOW_FUZZ_FUZZ_ENV_H_
#define BACKFLOW_FUZZ_FUZZ_ENV_H_

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/core/status.h"

namespace backflow::fuzz {

// A fresh directory, removed again by the destructor.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    std::filesystem::path base = "/dev/shm";
    if (!std::filesystem::is_directory(base, ec)) base = std::filesystem::temp_directory_path();
    std::string pattern = (base / "backflow-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Aborts (a finding for the fuzzer) with `what` when a setup step that cannot depend on the input
// fails.
inline void CheckSetup(const Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "fuzz setup: %s: %s\n", what, status.ToString().c_str());
    std::abort();
  }
}

}  // namespace backflow::fuzz

#endif  // BACKFLOW_FUZZ_FUZZ_ENV_H_
