// Dataset: labelled samples in memory, and BatchIterator, which deals them out in batches.
//
// LoadFashionMnist reads Zalando's Fashion-MNIST (70000 28x28 grey images of ten kinds of
// clothing) from its IDX files, as Debian's dataset-fashion-mnist package installs them.
//
// BatchIterator is deterministic by construction: the order of epoch e depends only on (seed, e),
// drawn with std::mt19937_64 (whose output the standard fixes) and a Fisher-Yates shuffle written
// out here (std::shuffle's use of the generator is implementation-defined), so two iterators with
// the same seed deal the same batches on any platform, and a run can be replayed from any epoch.
//
// Thread safety: a Dataset is plain data (share it as const). A BatchIterator is not
// synchronised: use one per thread.
#ifndef BACKFLOW_ENGINE_DATA_DATASET_H_
#define BACKFLOW_ENGINE_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/data/idx.h"

namespace backflow {

struct Dataset {
  Tensor images;  // [N, ...] float32; Fashion-MNIST: [N, 1, 28, 28] scaled to [0, 1]
  Tensor labels;  // [N] float32 class ids 0, 1, ..., as softmax_cross_entropy reads them

  int64_t size() const { return labels.shape().rank() == 1 ? labels.shape().dim(0) : 0; }
};

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;

// Turns an IDX image file ([N, H, W] bytes) and label file ([N] bytes) into a Dataset of
// [N, 1, H, W] pixels / 255 and [N] labels. InvalidArgument naming `source` if the ranks or
// counts disagree or a label is not below `num_classes`.
StatusOr<Dataset> DatasetFromIdx(const IdxArray& images, const IdxArray& labels, int num_classes,
                                 const std::string& source);

// Loads the training set (60000 samples; train-*-ubyte[.gz]) or the test set (10000; t10k-*) from
// `dir`, keeping the first `limit` samples if limit >= 0 (the rest of the files is not read).
// NotFound naming the missing file (and the package that provides it); the errors of ReadIdx and
// DatasetFromIdx otherwise.
StatusOr<Dataset> LoadFashionMnist(const std::string& dir = kFashionMnistDir, bool train = true,
                                   int64_t limit = -1);

struct BatchOptions {
  int64_t batch_size = 64;
  uint64_t seed = 0;
  bool shuffle = true;  // false: every epoch deals the samples in their stored order
  // True: an epoch deals only full batches (the last N % batch_size samples of its order are
  // skipped that epoch). False: the epoch ends with one smaller batch of the remainder.
  bool drop_last = true;
};

class BatchIterator {
 public:
  // Borrows `data`, which must outlive the iterator. InvalidArgument if batch_size < 1, the
  // tensors are not float32, or images and labels disagree on N.
  static StatusOr<BatchIterator> Create(const Dataset& data, const BatchOptions& options);

  // Fills the next batch of the current epoch: images [B, ...] and labels [B], reusing the
  // tensors' storage when they already have that shape. Returns false, leaving them untouched,
  // when the epoch is exhausted; the call after that starts the next epoch.
  bool Next(Tensor* images, Tensor* labels);

  // The epoch the next batch comes from (0 first).
  int64_t epoch() const { return epoch_; }
  int64_t batches_per_epoch() const;
  // The sample order of `epoch`: a permutation of 0..N-1 (the identity without shuffling).
  std::vector<int64_t> EpochOrder(int64_t epoch) const;

 private:
  BatchIterator(const Dataset& data, const BatchOptions& options);

  const Dataset* data_;
  BatchOptions options_;
  int64_t sample_elements_ = 0;  // floats per sample in data_->images
  int64_t epoch_ = 0;
  int64_t position_ = 0;        // samples of order_ dealt so far
  std::vector<int64_t> order_;  // of epoch_
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_DATA_DATASET_H_
