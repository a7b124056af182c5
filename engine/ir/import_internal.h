// Pieces of ImportGraph (engine/ir/import.h) shared between its source files. Not a public API.
#ifndef BACKFLOW_ENGINE_IR_IMPORT_INTERNAL_H_
#define BACKFLOW_ENGINE_IR_IMPORT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backflow/v1/graph.pb.h"
#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/ir/attributes.h"
#include "engine/ir/graph.h"

namespace backflow::import_internal {

// "'name'", with names too long to be useful in a message cut short: error messages echo what
// clients sent, and a megabyte-long undefined input name should not come back whole.
std::string Quote(std::string_view name);

// The proto Initializer oneof as an InitializerSpec for a parameter of `shape`. `where` names
// the parameter in messages. Unset means zeros; a glorot gain of 0 means 1.
StatusOr<InitializerSpec> ConvertInitializer(const backflow::v1::Initializer& init,
                                             const std::string& where, const Shape& shape,
                                             int64_t max_elements);

// The node's attributes, converted in name order (so the first fault reported does not depend
// on the proto map's iteration order). Types are checked against the gate later, by AddNode.
StatusOr<Attributes> ConvertAttributes(const backflow::v1::Node& node, const std::string& where,
                                       size_t max_name_length);

}  // namespace backflow::import_internal

#endif  // BACKFLOW_ENGINE_IR_IMPORT_INTERNAL_H_
