#include "clients/cli/progress.h"

#include <algorithm>

namespace backflow::cli {
namespace {

constexpr int kBarWidth = 24;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

}  // namespace

void Progress::StartEpoch(int64_t epoch, int64_t steps, int64_t batch_size) {
  epoch_ = epoch;
  steps_ = steps;
  batch_size_ = batch_size;
  next_report_ = std::max<int64_t>(1, (steps + 9) / 10);
  start_ = std::chrono::steady_clock::now();
  drawn_ = false;
}

void Progress::Update(int64_t done, double mean_loss) {
  const auto now = std::chrono::steady_clock::now();
  if (interactive_) {
    if (drawn_ && done < steps_ && now - last_draw_ < kRedrawInterval) return;
    std::fprintf(out_, "\r%s\x1b[K", Line(done, mean_loss).c_str());
    std::fflush(out_);
    last_draw_ = now;
    drawn_ = true;
    return;
  }
  if (done < next_report_ && done < steps_) return;
  std::fprintf(out_, "%s\n", Line(done, mean_loss).c_str());
  std::fflush(out_);
  while (next_report_ <= done) next_report_ += std::max<int64_t>(1, (steps_ + 9) / 10);
}

void Progress::EndEpoch() {
  if (interactive_ && drawn_) std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
}

std::string Progress::Line(int64_t done, double mean_loss) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done * batch_size_) / elapsed : 0;
  const double eta = done > 0 ? elapsed * static_cast<double>(steps_ - done) / done : 0;
  char text[256];
  if (interactive_) {
    std::string bar(kBarWidth, '.');
    const int64_t filled = steps_ > 0 ? done * kBarWidth / steps_ : 0;
    std::fill_n(bar.begin(), filled, '#');
    std::snprintf(text, sizeof text,
                  "epoch %lld/%lld [%s] %lld/%lld  loss %.4f  %.0f samples/s  ETA %s",
                  static_cast<long long>(epoch_), static_cast<long long>(epochs_), bar.c_str(),
                  static_cast<long long>(done), static_cast<long long>(steps_), mean_loss, rate,
                  FormatDuration(eta).c_str());
  } else {
    std::snprintf(text, sizeof text,
                  "epoch %lld/%lld: step %lld/%lld (%lld%%), loss %.4f, %.0f samples/s, ETA %s",
                  static_cast<long long>(epoch_), static_cast<long long>(epochs_),
                  static_cast<long long>(done), static_cast<long long>(steps_),
                  static_cast<long long>(steps_ > 0 ? done * 100 / steps_ : 100), mean_loss, rate,
                  FormatDuration(eta).c_str());
  }
  return text;
}

std::string Progress::FormatDuration(double seconds) {
  const int64_t total = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return text;
}

}  // namespace backflow::cli
