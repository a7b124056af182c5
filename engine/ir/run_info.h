// RunInfo: the mode of a run, and what its random gates draw from.
#ifndef BACKFLOW_ENGINE_IR_RUN_INFO_H_
#define BACKFLOW_ENGINE_IR_RUN_INFO_H_

#include <cstdint>

namespace backflow {

// Note [Training and inference mode]
// Every run is in one of two modes. Training mode (TrainStep, Train, ComputeGradients, and
// Evaluate when asked) is what a gradient is taken in: dropout drops, batch norm normalises with
// the batch's own statistics. Inference mode (Infer, and Evaluate when asked) computes what a
// trained model answers: dropout is the identity, batch norm uses its running statistics. Gates
// that do not care ignore the mode. Randomness in training is a pure function of (seed, step,
// node): a kernel that needs random numbers hashes the three (see engine/gates/dropout.h), so a
// step replays bitwise and does not depend on thread scheduling.
struct RunInfo {
  bool training = false;
  uint64_t seed = 0;  // the model's seed (TrainerOptions::seed, EvaluateSpec::seed)
  int64_t step = 0;   // the optimizer step the run computes (the snapshot's step)
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_RUN_INFO_H_
