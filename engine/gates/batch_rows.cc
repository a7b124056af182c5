#include "engine/gates/batch_rows.h"

#include <optional>
#include <span>
#include <vector>

#include "engine/core/checked.h"

namespace backflow {
namespace {

bool BatchOnAxis0(const Shape& s) { return s.rank() > 0 && s.dim(0) == kBatchDim; }

// The elements of one row of `s` (the product of its dimensions after axis 0), or nullopt if
// one of them is open or the product overflows.
std::optional<int64_t> RowElements(const Shape& s) {
  const std::span<const int64_t> rest = std::span<const int64_t>(s.dims()).subspan(1);
  for (int64_t d : rest) {
    if (d == kBatchDim) return std::nullopt;
  }
  return CheckedProduct(rest);
}

}  // namespace

Rows RowsOfInput(const RowsContext& ctx, size_t i) {
  if (ctx.AllNone()) return Rows::kNone;
  for (size_t k = 0; k < ctx.inputs.size(); ++k) {
    if (ctx.inputs[k] != (k == i ? Rows::kEach : Rows::kNone)) return Rows::kMixed;
  }
  return BatchOnAxis0(ctx.input_shapes[i]) && BatchOnAxis0(ctx.output) ? Rows::kEach : Rows::kMixed;
}

Rows ReshapedRows(const RowsContext& ctx) {
  const Rows rows = RowsOfInput(ctx, 0);
  if (rows != Rows::kEach) return rows;
  const std::optional<int64_t> in = RowElements(ctx.input_shapes[0]);
  const std::optional<int64_t> out = RowElements(ctx.output);
  return in && out && *in == *out ? Rows::kEach : Rows::kMixed;
}

Rows TransposedRows(const RowsContext& ctx) {
  if (ctx.AllNone()) return Rows::kNone;
  const std::vector<int64_t> perm = ctx.attrs.GetInts("perm");
  const int64_t first = perm.empty() ? ctx.output.rank() - 1 : perm[0];
  return first == 0 && ctx.RowsAligned(0) ? Rows::kEach : Rows::kMixed;
}

Rows ConcatenatedRows(const RowsContext& ctx) {
  if (ctx.AllNone()) return Rows::kNone;
  if (ctx.Axis("axis", 0, ctx.output.rank()) < 1) return Rows::kMixed;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (!ctx.RowsAligned(i)) return Rows::kMixed;
  }
  return Rows::kEach;
}

}  // namespace backflow
