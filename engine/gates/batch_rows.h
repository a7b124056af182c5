// Rules of Gate::BatchRows that gates of several families share (Note [Independent rows] in
// engine/ir/rows.h). Each answers kNone when every input is kNone, kEach when the gate keeps each
// row of the batch to itself, and kMixed otherwise.
#ifndef BACKFLOW_ENGINE_GATES_BATCH_ROWS_H_
#define BACKFLOW_ENGINE_GATES_BATCH_ROWS_H_

#include <cstddef>

#include "engine/ir/rows.h"

namespace backflow {

// For a gate whose output row r is computed from row r of input `i` alone (a sum over later
// axes, an embedding lookup): kEach if input i is kEach, it and the output have the batch on
// axis 0 (their ranks may differ), and every other input is kNone.
Rows RowsOfInput(const RowsContext& ctx, size_t i);

// For gates that view x's elements in another shape (reshape, flatten): a row keeps its own
// elements only if the batch stays on axis 0 and x's other dimensions, all known, multiply to
// what the output's do. [N, 4] viewed as [-1, 2] has 2N rows, though its shape says N.
Rows ReshapedRows(const RowsContext& ctx);

// transpose: the batch must stay on axis 0 (perm[0] = 0; an empty perm reverses the axes).
Rows TransposedRows(const RowsContext& ctx);

// concat: every input has the batch on axis 0, and they are joined along a later axis.
Rows ConcatenatedRows(const RowsContext& ctx);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BATCH_ROWS_H_
