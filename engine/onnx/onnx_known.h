// Internal to ImportOnnx: arithmetic on values known at import time (Known, in
// onnx_translator.h), at both batch sizes of Note [Two batch sizes].
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_KNOWN_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_KNOWN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/onnx/onnx_translator.h"

namespace backflow::onnx_import {

enum class KnownOp { kAdd, kSub, kMul, kDiv, kEqual, kPow, kMax, kMin };

// Elementwise with NumPy broadcasting. Integer results stay integers; integer Div truncates
// toward zero and must be exact where a value depends on the batch.
StatusOr<Known> KnownBinary(const NodeContext& ctx, KnownOp op, const Known& x, const Known& y);
StatusOr<Known> KnownWhere(const NodeContext& ctx, const Known& c, const Known& x, const Known& y);
// Gather along `axis` (indices may be negative).
StatusOr<Known> KnownGather(const NodeContext& ctx, const Known& data, const Known& indices,
                            int64_t axis);
StatusOr<Known> KnownConcat(const NodeContext& ctx, const std::vector<Known>& parts, int64_t axis);
// Slice of a 1-D value.
StatusOr<Known> KnownSlice(const NodeContext& ctx, const Known& data, int64_t start, int64_t end,
                           int64_t step);
// The value's elements as integers that do not depend on the batch (`what` names it).
StatusOr<std::vector<int64_t>> StaticInts(const NodeContext& ctx, const Known& k,
                                          std::string_view what);
// A scalar (or one-element) float.
StatusOr<double> ScalarFloat(const NodeContext& ctx, const Known& k, std::string_view what);
// Normalises a possibly negative axis against `rank`.
StatusOr<int64_t> Axis(const NodeContext& ctx, int64_t axis, int64_t rank, std::string_view what);

}  // namespace backflow::onnx_import

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_KNOWN_H_
