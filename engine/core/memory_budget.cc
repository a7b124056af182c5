#include "engine/core/memory_budget.h"

#include <malloc.h>

#include <cstdio>

#include "engine/core/tensor.h"

namespace backflow {

MemoryBudget::Hold& MemoryBudget::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
  }
  return *this;
}

void MemoryBudget::Hold::Release() {
  if (budget_ == nullptr) return;
  budget_->used_.fetch_sub(bytes_, std::memory_order_relaxed);
  budget_ = nullptr;
}

StatusOr<MemoryBudget::Hold> MemoryBudget::Reserve(int64_t bytes, std::string_view what) {
  if (bytes < 0) bytes = 0;
  int64_t used = used_.load(std::memory_order_relaxed);
  while (true) {
    if (capacity_ > 0 && (bytes > capacity_ || used > capacity_ - bytes)) {
      const int64_t free = used < capacity_ ? capacity_ - used : 0;
      return ResourceExhaustedError(std::string(what) + " needs " + std::to_string(bytes) +
                                    " bytes (" + ByteSize(bytes) + "), but only " +
                                    ByteSize(free) + " of the memory ceiling of " +
                                    ByteSize(capacity_) + " are free (" + ByteSize(used) +
                                    " in use)");
    }
    if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed)) break;
  }
  return Hold(this, bytes);
}

MemoryBudget::Hold MemoryBudget::Force(int64_t bytes) {
  if (bytes < 0) bytes = 0;
  used_.fetch_add(bytes, std::memory_order_relaxed);
  return Hold(this, bytes);
}

std::string ByteSize(int64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.2f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

void ConfigureMalloc() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

void ReturnFreeMemory() {
  ReleaseCachedBuffers();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace backflow
