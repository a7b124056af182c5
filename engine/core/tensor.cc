#include "engine/core/tensor.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backflow {
namespace {

constexpr size_t kAlignment = 64;

// Note [Buffer cache]
// A training step allocates and frees the same buffer sizes step after step (activations the
// caller fetches, gradients, the next parameter snapshot). glibc gives blocks of 128 KiB and up
// back to the kernel when they are freed (munmap, or trimming a thread's arena), so the next
// step page-faults them in and the kernel zeroes them again: about 90 page faults per MLP
// step, 18% of its CPU time (perf stat, docs/PERFORMANCE.md). So freed blocks of at least
// kMinCached bytes are kept, by exact size, and handed out again. At most the capacity
// (SetBufferCacheCapacity, default 256 MiB) is kept: a block that does not fit pushes out the
// blocks freed longest ago, so sizes no longer in use (a deleted model's, a batch size seen
// once) leave instead of filling the cache for good. ReleaseCachedBuffers empties it. Smaller
// blocks stay with malloc, whose bins already recycle them. Thread-safe: tensors are freed on
// any thread.
constexpr size_t kMinCached = 64 << 10;

class BufferCache {
 public:
  static BufferCache& Global() {
    static BufferCache* cache = new BufferCache();  // never destroyed: tensors outlive main
    return *cache;
  }

  void* Take(size_t bytes) {
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_size_.find(bytes);
      if (it != by_size_.end()) {
        void* p = it->second->second;
        age_.erase(it->second);
        by_size_.erase(it);
        cached_bytes_ -= bytes;
        return p;
      }
    }
    return std::aligned_alloc(kAlignment, bytes);
  }

  void Give(void* p, size_t bytes) {
    if (bytes < kMinCached) {
      std::free(p);
      return;
    }
    std::vector<void*> evicted;  // freed after the lock is released
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > capacity_) {
        evicted.push_back(p);
      } else {
        age_.emplace_front(bytes, p);
        by_size_.emplace(bytes, age_.begin());
        cached_bytes_ += bytes;
        Shrink(capacity_, evicted);
      }
    }
    for (void* block : evicted) std::free(block);
  }

  // Keeps at most `capacity` from now on (freeing the oldest blocks past it), and for now at
  // most `keep` (0: empties the cache).
  void Limit(std::optional<size_t> capacity, size_t keep) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (capacity) capacity_ = *capacity;
      Shrink(std::min(capacity_, keep), evicted);
    }
    for (void* block : evicted) std::free(block);
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_bytes_;
  }

 private:
  using Block = std::pair<size_t, void*>;  // bytes, block

  void Shrink(size_t limit, std::vector<void*>& evicted) {  // REQUIRES(mu_)
    while (cached_bytes_ > limit) {
      const Block oldest = age_.back();
      auto [first, last] = by_size_.equal_range(oldest.first);
      for (auto it = first; it != last; ++it) {
        if (it->second == std::prev(age_.end())) {
          by_size_.erase(it);
          break;
        }
      }
      age_.pop_back();
      cached_bytes_ -= oldest.first;
      evicted.push_back(oldest.second);
    }
  }

  std::mutex mu_;
  std::list<Block> age_;  // GUARDED_BY(mu_); newest first
  std::unordered_multimap<size_t, std::list<Block>::iterator> by_size_;  // GUARDED_BY(mu_)
  size_t cached_bytes_ = 0;                                              // GUARDED_BY(mu_)
  size_t capacity_ = size_t{256} << 20;                                  // GUARDED_BY(mu_)
};

size_t Rounded(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

std::byte* Allocate(size_t rounded) {
  void* p = BufferCache::Global().Take(rounded);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<std::byte*>(p);
}

std::byte* AllocateZeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t rounded = Rounded(bytes);
  std::byte* p = Allocate(rounded);
  std::memset(p, 0, rounded);
  return p;
}

}  // namespace

void SetBufferCacheCapacity(size_t bytes) { BufferCache::Global().Limit(bytes, bytes); }

void ReleaseCachedBuffers() { BufferCache::Global().Limit(std::nullopt, 0); }

size_t CachedBufferBytes() { return BufferCache::Global().cached_bytes(); }

size_t SizeOf(DType dtype) {
  return dtype == DType::kFloat64 || dtype == DType::kInt64 ? 8 : 4;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
  }
  return "unknown";
}

void Tensor::AlignedFree::operator()(std::byte* p) const {
  if (p != nullptr) BufferCache::Global().Give(p, Rounded(bytes));
}

namespace {

// Non-finite floats have every exponent bit set: with the sign cleared, their bits compare
// above the largest finite value's. The block loop only counts such elements (a compare and an
// add per element, which the compiler vectorises even for baseline x86-64); the index is looked
// for only in a block that has one.
template <typename Bits, typename Signed>
int64_t FirstNonFiniteBits(const Bits* bits, int64_t n, Bits magnitude, Signed max_finite) {
  constexpr int64_t kBlock = 1024;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    Signed bad = 0;
    for (int64_t i = start; i < end; ++i) bad += static_cast<Signed>(bits[i] & magnitude) > max_finite;
    if (bad == 0) continue;
    for (int64_t i = start; i < end; ++i) {
      if (static_cast<Signed>(bits[i] & magnitude) > max_finite) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t FirstNonFinite(const float* data, int64_t n) {
  return FirstNonFiniteBits(reinterpret_cast<const uint32_t*>(data), n, uint32_t{0x7fffffff},
                            int32_t{0x7f7fffff});
}

int64_t FirstNonFinite(const double* data, int64_t n) {
  return FirstNonFiniteBits(reinterpret_cast<const uint64_t*>(data), n,
                            uint64_t{0x7fffffffffffffff}, int64_t{0x7fefffffffffffff});
}

int64_t FirstNonFinite(const Tensor& tensor) {
  if (IsInteger(tensor.dtype())) return -1;
  if (tensor.dtype() == DType::kFloat64) {
    return FirstNonFinite(tensor.data<double>(), tensor.num_elements());
  }
  return FirstNonFinite(tensor.data<float>(), tensor.num_elements());
}

ScratchBuffer::ScratchBuffer(size_t bytes)
    : data_(bytes == 0 ? nullptr : Allocate(Rounded(bytes))), bytes_(Rounded(bytes)) {}

ScratchBuffer::~ScratchBuffer() {
  if (data_ != nullptr) BufferCache::Global().Give(data_, bytes_);
}

Tensor::Tensor(DType dtype, Shape shape) : Tensor(dtype, std::move(shape), 0) {}

Tensor::Tensor(DType dtype, Shape shape, size_t min_bytes)
    : dtype_(dtype),
      shape_(std::move(shape)),
      num_elements_(shape_.num_elements()),
      capacity_(std::max(byte_size(), min_bytes)) {
  data_ = {AllocateZeroed(capacity_), AlignedFree{capacity_}};
}

Tensor Tensor::FromValues(DType dtype, Shape shape, std::span<const double> values) {
  Tensor t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.num_elements_ && i < static_cast<int64_t>(values.size()); ++i) {
    const double v = values[static_cast<size_t>(i)];
    switch (dtype) {
      case DType::kFloat32:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::kFloat64:
        t.data<double>()[i] = v;
        break;
      case DType::kInt32:
        t.data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      case DType::kInt64:
        t.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
    }
  }
  return t;
}

Tensor Tensor::Uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = t.shape_.num_elements();
  t.capacity_ = t.byte_size();
  if (t.capacity_ != 0) t.data_ = {Allocate(Rounded(t.capacity_)), AlignedFree{t.capacity_}};
  return t;
}

Tensor Tensor::Scalar(DType dtype, double value) {
  return FromValues(dtype, Shape(), std::span<const double>(&value, 1));
}

Tensor::Tensor(const Tensor& other)
    : dtype_(other.dtype_),
      shape_(other.shape_),
      num_elements_(other.num_elements_),
      capacity_(other.byte_size()) {
  // Every byte is copied (capacity_ == byte_size()), so no zero fill first.
  if (capacity_ != 0) {
    data_ = {Allocate(Rounded(capacity_)), AlignedFree{capacity_}};
    std::memcpy(data_.get(), other.data_.get(), capacity_);
  }
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

double Tensor::at(int64_t i) const {
  switch (dtype_) {
    case DType::kFloat32:
      return static_cast<double>(data<float>()[i]);
    case DType::kFloat64:
      return data<double>()[i];
    case DType::kInt32:
      return static_cast<double>(data<int32_t>()[i]);
    case DType::kInt64:
      return static_cast<double>(data<int64_t>()[i]);
  }
  return 0;
}

int64_t Tensor::id(int64_t i) const {
  if (dtype_ == DType::kInt64) return data<int64_t>()[i];
  if (dtype_ == DType::kInt32) return data<int32_t>()[i];
  return static_cast<int64_t>(at(i));
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> out(static_cast<size_t>(num_elements_));
  for (int64_t i = 0; i < num_elements_; ++i) out[static_cast<size_t>(i)] = at(i);
  return out;
}

Tensor Tensor::CastTo(DType dtype) const {
  if (dtype == dtype_) return *this;
  if (IsInteger(dtype) && IsInteger(dtype_)) {
    Tensor t(dtype, shape_);
    for (int64_t i = 0; i < num_elements_; ++i) {
      if (dtype == DType::kInt64) {
        t.data<int64_t>()[i] = id(i);
      } else {
        t.data<int32_t>()[i] = static_cast<int32_t>(id(i));
      }
    }
    return t;
  }
  return FromValues(dtype, shape_, ToDoubles());
}

void Tensor::Reshape(Shape shape) {
  shape_ = std::move(shape);
  num_elements_ = shape_.num_elements();
}

void Tensor::KeepRows(int64_t rows) {
  shape_.dim(0) = std::min(rows, shape_.dim(0));
  num_elements_ = shape_.num_elements();
}

bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.byte_size() == 0 || std::memcmp(a.raw(), b.raw(), a.byte_size()) == 0);
}

}  // namespace backflow
