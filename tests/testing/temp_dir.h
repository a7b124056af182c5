// A fresh, empty directory under the system temp dir for one test, removed by the destructor:
// the data directories of in-process and child-process servers, and the clients' files.
#ifndef BACKFLOW_TESTS_TESTING_TEMP_DIR_H_
#define BACKFLOW_TESTS_TESTING_TEMP_DIR_H_

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace backflow::testing {

class TempDir {
 public:
  // The directory is named `prefix` and two random numbers: "backflow-test-36271...".
  explicit TempDir(const std::string& prefix = "backflow-test-") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_TEMP_DIR_H_
