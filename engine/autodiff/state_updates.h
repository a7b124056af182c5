// AppendStateUpdates: the nodes that compute a training step's next running state.
//
// Every forward node whose gate has running state (batch norm) appends, through
// Gate::AppendStateUpdates, the nodes that compute the next value of each state value it reads.
// The trainer fetches them with the step's loss and gradients, so they see the same batch and
// mode, and publishes them with the updated parameters (Note [Running state] in
// engine/api/trainer.h).
#ifndef BACKFLOW_ENGINE_AUTODIFF_STATE_UPDATES_H_
#define BACKFLOW_ENGINE_AUTODIFF_STATE_UPDATES_H_

#include <unordered_map>

#include "engine/core/status.h"
#include "engine/ir/graph.h"

namespace backflow {

// For the nodes [0, forward_nodes) of `graph`: appends the update nodes and returns, for each
// state value that one of them updates, the value id of its next value. InvalidArgument naming
// the node if two nodes update one state, or a gate's update fails.
StatusOr<std::unordered_map<ValueId, ValueId>> AppendStateUpdates(Graph& graph,
                                                                  NodeId forward_nodes);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_AUTODIFF_STATE_UPDATES_H_
