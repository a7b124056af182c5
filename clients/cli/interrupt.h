// Ctrl-C during `backflow train`: the first SIGINT asks the run to stop at the next batch (the
// Train stream ends cleanly, the model is checkpointed and kept); a second one ends the process
// at once, as SIGINT's default action would.
#ifndef BACKFLOW_CLIENTS_CLI_INTERRUPT_H_
#define BACKFLOW_CLIENTS_CLI_INTERRUPT_H_

namespace backflow::cli {

inline constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as shells report it

// Installs the handler for its lifetime and restores the previous one after.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

// True once SIGINT arrived inside an InterruptScope.
bool Interrupted();

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_INTERRUPT_H_
