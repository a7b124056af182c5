// Progress of `backflow train` on stderr: on a terminal, one line redrawn in place
//   epoch 1/2 [#########...........] 412/937  loss 0.5123  2210 samples/s  ETA 0:14
// and otherwise (a log file, a test) a plain line every tenth of an epoch, so logs stay short.
// Not thread-safe: call from the thread that reads the answers.
#ifndef BACKFLOW_CLIENTS_CLI_PROGRESS_H_
#define BACKFLOW_CLIENTS_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace backflow::cli {

class Progress {
 public:
  // `interactive`: draw the bar (use isatty(fileno(out))).
  Progress(std::FILE* out, bool interactive, int64_t epochs)
      : out_(out), interactive_(interactive), epochs_(epochs) {}

  // `epoch` counts from 1.
  void StartEpoch(int64_t epoch, int64_t steps, int64_t batch_size);
  // After each answer: `done` steps of this epoch so far, their mean loss.
  void Update(int64_t done, double mean_loss);
  // Clears the bar (the caller prints the epoch's summary).
  void EndEpoch();

  // "1:05", "12:03:09".
  static std::string FormatDuration(double seconds);

 private:
  std::string Line(int64_t done, double mean_loss) const;

  std::FILE* out_;
  bool interactive_;
  int64_t epochs_;
  int64_t epoch_ = 0;
  int64_t steps_ = 0;
  int64_t batch_size_ = 0;
  int64_t next_report_ = 0;  // plain mode: the step of the next line
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_PROGRESS_H_
