// How each value of a graph depends on the rows of the batch, in inference mode.
//
// Note [Independent rows]
// In most models row i of an inference output depends only on row i of the batched inputs: a
// convolution, a matrix product with a weight, batch norm on its running statistics, a softmax
// over the classes all compute each sample on its own. Then rows may be stacked (dynamic
// batching, server/batcher.h), and a batch may be padded with extra rows whose outputs are
// dropped (Note [Batch-size buckets] in engine/exec/program.h), without changing any row's
// answer beyond rounding. A loss, a reduction over the batch axis, a transpose that moves it, or
// batch norm in training mode mixes rows, and then neither is allowed.
//
// Each gate states its rule (Gate::BatchRows); the default says that a gate fed from the batch
// mixes its rows, so a gate without a rule is never padded. The analysis is one pass over the graph
// in node order, on the graph's shapes (kBatchDim stands for the open batch): a value is kEach only
// if its axis 0 is the batch.
#ifndef BACKFLOW_ENGINE_IR_ROWS_H_
#define BACKFLOW_ENGINE_IR_ROWS_H_

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/shape.h"
#include "engine/ir/attributes.h"

namespace backflow {

class Graph;

enum class Rows : uint8_t {
  kNone,   // the same for every row: parameters, constants, fixed-shape placeholders, and what
           // only they feed
  kEach,   // axis 0 is the batch, and row i depends only on row i of the batched placeholders
  kMixed,  // anything else
};

struct RowsContext {
  std::span<const Rows> inputs;
  std::span<const Shape> input_shapes;  // the graph's: kBatchDim where the batch is open
  const Shape& output;
  const Attributes& attrs;

  // kNone if every input is kNone (any gate may answer this first).
  bool AllNone() const;
  // True if input i is kEach with the batch on the output's axis 0 (same rank, both axis 0
  // kBatchDim).
  bool RowsAligned(size_t i) const;
  // The rule of elementwise gates with broadcasting (add, mul, relu, ...): kEach if every kEach
  // input is RowsAligned and no kNone input of the output's rank has an axis 0 other than 1
  // (it would meet the batch); kNone if all are kNone; else kMixed.
  Rows Elementwise() const;
  // The rule of gates that compute each sample of input 0 with weights in the other inputs
  // (conv2d, linear, pooling, batch norm in inference): kEach if input 0 is RowsAligned and the
  // others are kNone; kNone if all are kNone; else kMixed.
  Rows FirstInputRows() const;
  // A normalised axis attribute (negative counts from the end), or -1 if out of range.
  int Axis(std::string_view name, int64_t fallback, int rank) const;
};

// One entry per value of `graph`. Placeholders whose axis 0 is kBatchDim are kEach.
std::vector<Rows> InferenceRows(const Graph& graph);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_ROWS_H_
