// Internal to ImportOnnx: the translation of each ONNX operator (OpTable in onnx_ops_table.cc).
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_OPS_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_OPS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/onnx/onnx_translator.h"

namespace backflow::onnx_import {

// Values known at import time (onnx_ops_fold.cc).
Status ConstantOp(const NodeContext& ctx);
Status IdentityOp(const NodeContext& ctx);
Status ShapeOp(const NodeContext& ctx);
Status CastOp(const NodeContext& ctx);
Status ConstantOfShapeOp(const NodeContext& ctx);
Status RangeOp(const NodeContext& ctx);
Status EqualOp(const NodeContext& ctx);
Status WhereOp(const NodeContext& ctx);

// Elementwise and matrix products (onnx_ops_math.cc).
Status UnaryOp(const NodeContext& ctx);
Status LeakyReluOp(const NodeContext& ctx);
Status BinaryOp(const NodeContext& ctx);
Status PowOp(const NodeContext& ctx);
Status MatMulOp(const NodeContext& ctx);
Status GemmOp(const NodeContext& ctx);

// Convolution, normalisation, pooling (onnx_ops_nn.cc).
Status ConvOp(const NodeContext& ctx);
Status BatchNormOp(const NodeContext& ctx);
Status MaxPoolOp(const NodeContext& ctx);
Status AveragePoolOp(const NodeContext& ctx);
Status GlobalAveragePoolOp(const NodeContext& ctx);
Status PadOp(const NodeContext& ctx);
Status DropoutOp(const NodeContext& ctx);
Status SoftmaxOp(const NodeContext& ctx);
Status ClipOp(const NodeContext& ctx);

// Shapes and reductions (onnx_ops_shape.cc).
Status ReshapeOp(const NodeContext& ctx);
Status FlattenOp(const NodeContext& ctx);
Status TransposeOp(const NodeContext& ctx);
Status SqueezeOp(const NodeContext& ctx);
Status ConcatOp(const NodeContext& ctx);
Status SliceOp(const NodeContext& ctx);
Status GatherOp(const NodeContext& ctx);
Status ReduceOp(const NodeContext& ctx);

// A reshape target for a tensor whose shapes at the two batch sizes are `a` and `b`: static
// dimensions as they are, the one that grows with the batch as -1 (an error if several do).
StatusOr<std::vector<int64_t>> ReshapeTarget(const NodeContext& ctx, const Shape& a,
                                             const Shape& b);
// Emits a reshape of `tensor` to the shapes (a, b) as output `out` of the node.
Status EmitReshapeTo(const NodeContext& ctx, int out, const std::string& tensor, const Shape& a,
                     const Shape& b);

}  // namespace backflow::onnx_import

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_OPS_H_
