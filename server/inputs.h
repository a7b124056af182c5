// What a model's inputs must be: the batch of TrainStep and ComputeGradients, the inputs of
// Infer. Decoded with the checks of server/convert.h, then checked against the graph.
#ifndef BACKFLOW_SERVER_INPUTS_H_
#define BACKFLOW_SERVER_INPUTS_H_

#include <string>
#include <string_view>
#include <vector>

#include "engine/ir/graph.h"
#include "server/convert.h"

namespace backflow::server {

// InvalidArgument naming the tensor unless every input is a placeholder of `graph`: the model
// supplies its parameters itself, and nothing else can be fed.
Status CheckFeeds(const Graph& graph, const TensorMap& inputs, std::string_view what);

// DecodeTensors (size-limited, finite, of `dtype`, or an integer placeholder's own dtype)
// followed by CheckFeeds.
StatusOr<TensorMap> DecodeInputs(const WireTensorMap& wire, const Graph& graph, DType dtype,
                                 int64_t max_elements, std::string_view what);

// The placeholders `value` depends on (in no particular order).
std::vector<std::string> PlaceholdersNeeded(const Graph& graph, ValueId value);

// Infer's default outputs: the graph's outputs that `inputs` determine (so a model with a loss
// serves predictions from images alone). InvalidArgument, naming an output and the input it
// lacks, if there are none.
StatusOr<std::vector<std::string>> DefaultOutputs(const Graph& graph, const TensorMap& inputs);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INPUTS_H_
