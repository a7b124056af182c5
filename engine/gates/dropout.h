// Dropout: in training mode, zeroes each element with probability p and scales the survivors by
// 1 / (1 - p) (inverted dropout, as torch.nn.Dropout); in inference mode, the identity.
//
// Note [Dropout masks are a function of seed, step and node]
// The mask is not drawn from a generator that carries state between runs: element i of node n's
// mask in the run at optimizer step s of a model with seed k is kept iff
//   Uniform(Mix(Mix(k ^ Mix(s ^ Fnv1a(n))) + i * golden)) >= p,
// where Mix is SplitMix64's finaliser and Uniform takes the top 53 bits as a double in [0, 1).
// So a step replays bitwise (the same checkpoint and batch give the same mask, on any number of
// threads), two dropout nodes draw independent masks, and the backward gate recomputes the mask
// from the forward node's name instead of keeping it in memory.
#ifndef BACKFLOW_ENGINE_GATES_DROPOUT_H_
#define BACKFLOW_ENGINE_GATES_DROPOUT_H_

#include <cstdint>
#include <string_view>

#include "engine/ir/gate_registry.h"
#include "engine/ir/run_info.h"

namespace backflow {

// The per-node stream key of Note [Dropout masks are a function of seed, step and node].
uint64_t DropoutKey(const RunInfo& info, std::string_view node);
// True if element `index` survives under `key` with drop probability p.
bool DropoutKeeps(uint64_t key, int64_t index, double p);

void RegisterDropoutGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_DROPOUT_H_
