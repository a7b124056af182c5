// Shared by the storage tests: scratch directories, records with known contents, and small file
// helpers.
#ifndef BACKFLOW_TESTS_SERVER_STORAGE_STORAGE_TEST_UTIL_H_
#define BACKFLOW_TESTS_SERVER_STORAGE_STORAGE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "server/storage/atomic_file.h"

namespace backflow::server::testing {

namespace fs = std::filesystem;

// A fresh directory under the test temporary directory, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir()
      : path_(fs::path(::testing::TempDir()) /
              ("backflow-storage-" + std::to_string(::getpid()) + "-" + RandomSuffix())) {
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// A float32 tensor holding `values` as raw little-endian bytes (the wire format).
inline v1::Tensor FloatTensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  v1::Tensor tensor;
  for (int64_t dim : shape) tensor.add_shape(dim);
  tensor.set_dtype(v1::FLOAT32);
  std::string data(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());  // data() may be null
  tensor.set_data(std::move(data));
  return tensor;
}

inline std::vector<float> FloatValues(const v1::Tensor& tensor) {
  std::vector<float> values(tensor.data().size() / sizeof(float));
  std::memcpy(values.data(), tensor.data().data(), values.size() * sizeof(float));
  return values;
}

inline v1::ModelRecord ModelRecordFor(const std::string& id) {
  v1::ModelRecord record;
  record.set_id(id);
  record.set_created_unix_ms(1700000000123);
  v1::CreateModelRequest* request = record.mutable_request();
  request->set_name("net " + id);
  request->set_seed(42);
  request->mutable_graph()->set_name("linear");
  request->mutable_graph()->set_loss("loss");
  request->mutable_optimizer()->set_kind(v1::OptimizerSpec::ADAM);
  request->mutable_optimizer()->set_learning_rate(0.001);
  return record;
}

// A checkpoint whose values depend on `step`, so two checkpoints never look alike.
// `w` has `w_elements` elements (more makes the file bigger).
inline v1::CheckpointRecord CheckpointAt(int64_t step, int w_elements = 6) {
  v1::CheckpointRecord checkpoint;
  checkpoint.set_step(step);
  checkpoint.set_optimizer_steps(step);
  checkpoint.set_saved_unix_ms(1700000000000 + step);
  std::vector<float> w(w_elements);
  for (int i = 0; i < w_elements; ++i) w[i] = 0.25f * static_cast<float>(i) + step;
  (*checkpoint.mutable_parameters())["w"] = FloatTensor({w_elements}, w);
  (*checkpoint.mutable_parameters())["b"] = FloatTensor({2}, {-1.5f, static_cast<float>(step)});
  (*checkpoint.mutable_optimizer_state())["w/m"] = FloatTensor({2}, {0.5f, 1e-3f * step});
  return checkpoint;
}

inline void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// The sorted names in `dir`.
inline std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace backflow::server::testing

#endif  // BACKFLOW_TESTS_SERVER_STORAGE_STORAGE_TEST_UTIL_H_
