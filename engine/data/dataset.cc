#include "engine/data/dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

namespace backflow {
namespace {

// The compressed file if present (as distributed), else an uncompressed one of the same name.
StatusOr<std::string> FindIdxFile(const std::string& dir, const std::string& base) {
  const std::filesystem::path gz = std::filesystem::path(dir) / (base + ".gz");
  const std::filesystem::path plain = std::filesystem::path(dir) / base;
  std::error_code error;
  if (std::filesystem::exists(gz, error)) return gz.string();
  if (std::filesystem::exists(plain, error)) return plain.string();
  return NotFoundError(gz.string() + ": no such file (nor " + plain.string() +
                       "); Debian's dataset-fashion-mnist package installs it in " +
                       kFashionMnistDir);
}

// SplitMix64's finaliser: spreads (seed, epoch) over the generator's whole seed space, so
// neighbouring seeds or epochs do not start it in related states.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform on [0, bound), by rejection so that no value is favoured.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % bound;
}

}  // namespace

StatusOr<Dataset> DatasetFromIdx(const IdxArray& images, const IdxArray& labels, int num_classes,
                                 const std::string& source) {
  auto error = [&](const std::string& m) { return InvalidArgumentError(source + ": " + m); };
  if (images.dims.size() != 3) {
    return error("images must be [N, H, W], got rank " + std::to_string(images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    return error("labels must be [N], got rank " + std::to_string(labels.dims.size()));
  }
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return error(std::to_string(n) + " images but " + std::to_string(labels.dims[0]) + " labels");
  }
  if (images.data.size() != static_cast<size_t>(n * images.dims[1] * images.dims[2]) ||
      labels.data.size() != static_cast<size_t>(n)) {
    return error("IDX data does not match its dimensions");
  }
  Dataset data;
  data.images = Tensor(DType::kFloat32, Shape{n, 1, images.dims[1], images.dims[2]});
  data.labels = Tensor(DType::kFloat32, Shape{n});
  float* pixels = data.images.data<float>();
  for (size_t i = 0; i < images.data.size(); ++i) {
    pixels[i] = static_cast<float>(images.data[i]) / 255.0f;
  }
  float* ids = data.labels.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = labels.data[static_cast<size_t>(i)];
    if (label >= num_classes) {
      return error("label " + std::to_string(label) + " of sample " + std::to_string(i) +
                   " is not below " + std::to_string(num_classes));
    }
    ids[i] = label;
  }
  return data;
}

StatusOr<Dataset> LoadFashionMnist(const std::string& dir, bool train, int64_t limit) {
  const std::string prefix = train ? "train" : "t10k";
  BF_ASSIGN_OR_RETURN(std::string images_path, FindIdxFile(dir, prefix + "-images-idx3-ubyte"));
  BF_ASSIGN_OR_RETURN(std::string labels_path, FindIdxFile(dir, prefix + "-labels-idx1-ubyte"));
  const IdxReadOptions options{.max_records = limit};
  BF_ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path, options));
  BF_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path, options));
  return DatasetFromIdx(images, labels, kFashionMnistClasses, images_path);
}

StatusOr<BatchIterator> BatchIterator::Create(const Dataset& data, const BatchOptions& options) {
  if (options.batch_size < 1) {
    return InvalidArgumentError("batch size must be at least 1, got " +
                                std::to_string(options.batch_size));
  }
  if (data.images.dtype() != DType::kFloat32 || data.labels.dtype() != DType::kFloat32) {
    return InvalidArgumentError("dataset tensors must be float32");
  }
  const Shape& images = data.images.shape();
  const Shape& labels = data.labels.shape();
  if (labels.rank() != 1 || images.rank() < 1 || images.dim(0) != labels.dim(0)) {
    return InvalidArgumentError("dataset images " + images.ToString() + " and labels " +
                                labels.ToString() + " must be [N, ...] and [N]");
  }
  return BatchIterator(data, options);
}

BatchIterator::BatchIterator(const Dataset& data, const BatchOptions& options)
    : data_(&data), options_(options) {
  const int64_t n = data.size();
  sample_elements_ = n == 0 ? 0 : data.images.num_elements() / n;
  order_ = EpochOrder(0);
}

int64_t BatchIterator::batches_per_epoch() const {
  const int64_t n = data_->size();
  return options_.drop_last ? n / options_.batch_size
                            : (n + options_.batch_size - 1) / options_.batch_size;
}

std::vector<int64_t> BatchIterator::EpochOrder(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(data_->size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (!options_.shuffle) return order;
  std::mt19937_64 rng(Mix(options_.seed ^ Mix(static_cast<uint64_t>(epoch))));
  for (size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[UniformBelow(rng, i)]);
  }
  return order;
}

bool BatchIterator::Next(Tensor* images, Tensor* labels) {
  const int64_t n = data_->size();
  const int64_t left = n - position_;
  const int64_t batch = std::min(left, options_.batch_size);
  if (batch == 0 || (options_.drop_last && batch < options_.batch_size)) {
    ++epoch_;
    position_ = 0;
    order_ = EpochOrder(epoch_);
    return false;
  }
  std::vector<int64_t> dims = data_->images.shape().dims();
  dims[0] = batch;
  if (images->shape().dims() != dims || images->dtype() != DType::kFloat32) {
    *images = Tensor(DType::kFloat32, Shape(std::move(dims)));
  }
  if (labels->shape() != Shape{batch} || labels->dtype() != DType::kFloat32) {
    *labels = Tensor(DType::kFloat32, Shape{batch});
  }
  const size_t row_bytes = static_cast<size_t>(sample_elements_) * sizeof(float);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t sample = order_[static_cast<size_t>(position_ + i)];
    std::memcpy(images->data<float>() + i * sample_elements_,
                data_->images.data<float>() + sample * sample_elements_, row_bytes);
    labels->data<float>()[i] = data_->labels.data<float>()[sample];
  }
  position_ += batch;
  return true;
}

}  // namespace backflow
