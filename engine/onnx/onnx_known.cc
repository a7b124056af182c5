#include "engine/onnx/onnx_known.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "engine/core/checked.h"

namespace backflow::onnx_import {
namespace {

// Known values are shapes and scalars; anything bigger is not folded.
constexpr int64_t kMaxKnownElements = int64_t{1} << 20;

StatusOr<std::vector<int64_t>> BroadcastDims(const NodeContext& ctx, const std::vector<int64_t>& x,
                                             const std::vector<int64_t>& y) {
  const size_t rank = std::max(x.size(), y.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t dx = i < rank - x.size() ? 1 : x[i - (rank - x.size())];
    const int64_t dy = i < rank - y.size() ? 1 : y[i - (rank - y.size())];
    if (dx != dy && dx != 1 && dy != 1) return ctx.Error("operand shapes do not broadcast");
    out[i] = dx == 1 ? dy : dx;
  }
  return out;
}

// Index into a tensor of `dims` broadcast to `out` for the flat output index i.
int64_t SourceIndex(const std::vector<int64_t>& dims, const std::vector<int64_t>& out, int64_t i) {
  int64_t index = 0, stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    const int64_t coord = i % out[k];
    i /= out[k];
    const size_t offset = out.size() - dims.size();
    if (k >= offset) {
      const int64_t d = dims[k - offset];
      index += (d == 1 ? 0 : coord) * stride;
      stride *= d;
    }
  }
  return index;
}

// The element count of `dims`; past kMaxKnownElements (or int64) when it does not fit.
int64_t Count(const std::vector<int64_t>& dims) {
  return CheckedProduct(dims).value_or(std::numeric_limits<int64_t>::max());
}

// "x OP y" for the overflow error.
std::string IntOpText(KnownOp op, int64_t x, int64_t y) {
  const char* name = op == KnownOp::kAdd   ? " + "
                     : op == KnownOp::kSub ? " - "
                     : op == KnownOp::kMul ? " * "
                     : op == KnownOp::kDiv ? " / "
                                           : " ^ ";
  return std::to_string(x) + name + std::to_string(y);
}

StatusOr<int64_t> IntOp(const NodeContext& ctx, KnownOp op, int64_t x, int64_t y) {
  std::optional<int64_t> r;
  switch (op) {
    case KnownOp::kAdd:
      r = CheckedAdd(x, y);
      break;
    case KnownOp::kSub:
      r = CheckedSub(x, y);
      break;
    case KnownOp::kMul:
      r = CheckedMul(x, y);
      break;
    case KnownOp::kDiv:
      if (y == 0) return ctx.Error("integer division by zero");
      if (y != -1 || x != std::numeric_limits<int64_t>::min()) r = x / y;
      break;
    case KnownOp::kEqual: return int64_t{x == y};
    case KnownOp::kMax: return std::max(x, y);
    case KnownOp::kMin: return std::min(x, y);
    case KnownOp::kPow: {
      const double p = std::pow(static_cast<double>(x), static_cast<double>(y));
      if (p >= -0x1p63 && p < 0x1p63) r = static_cast<int64_t>(p);  // false for NaN
      break;
    }
  }
  if (!r) return ctx.Error("integer " + IntOpText(op, x, y) + " overflows int64");
  return *r;
}

// True if y divides x exactly (y != 0); INT64_MIN % -1 is not evaluated.
bool DividesExactly(int64_t x, int64_t y) { return y == -1 || x % y == 0; }

double FloatOp(KnownOp op, double x, double y) {
  switch (op) {
    case KnownOp::kAdd: return x + y;
    case KnownOp::kSub: return x - y;
    case KnownOp::kMul: return x * y;
    case KnownOp::kDiv: return x / y;
    case KnownOp::kEqual: return x == y ? 1.0 : 0.0;
    case KnownOp::kMax: return std::max(x, y);
    case KnownOp::kMin: return std::min(x, y);
    case KnownOp::kPow: return std::pow(x, y);
  }
  return 0.0;
}

std::vector<double> AsFloats(const Known& k) {
  return k.is_float ? k.f : std::vector<double>(k.a.begin(), k.a.end());
}

}  // namespace

StatusOr<Known> KnownBinary(const NodeContext& ctx, KnownOp op, const Known& x, const Known& y) {
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> dims, BroadcastDims(ctx, x.shape, y.shape));
  const int64_t n = Count(dims);
  if (n > kMaxKnownElements) return ctx.Error("the folded value is too large");
  if (x.is_float || y.is_float) {
    if (x.batch_dependent() || y.batch_dependent()) {
      return ctx.Error("float arithmetic on a value computed from the batch size");
    }
    const std::vector<double> fx = AsFloats(x), fy = AsFloats(y);
    std::vector<double> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      out[static_cast<size_t>(i)] = FloatOp(op, fx[static_cast<size_t>(SourceIndex(x.shape, dims, i))],
                                            fy[static_cast<size_t>(SourceIndex(y.shape, dims, i))]);
    }
    Known k = Known::Floats(std::move(out), dims);
    if (op == KnownOp::kEqual) k = Known::Ints(std::vector<int64_t>(k.f.begin(), k.f.end()), dims);
    return k;
  }
  Known k = Known::Ints(std::vector<int64_t>(static_cast<size_t>(n)), dims);
  for (int64_t i = 0; i < n; ++i) {
    const size_t ix = static_cast<size_t>(SourceIndex(x.shape, dims, i));
    const size_t iy = static_cast<size_t>(SourceIndex(y.shape, dims, i));
    const bool dependent = x.a[ix] != x.b[ix] || y.a[iy] != y.b[iy];
    if (dependent && op == KnownOp::kDiv &&
        (y.a[iy] == 0 || y.b[iy] == 0 || !DividesExactly(x.a[ix], y.a[iy]) ||
         !DividesExactly(x.b[ix], y.b[iy]))) {
      return ctx.Error("a value computed from the batch size is divided inexactly, so it would "
                       "hold for some batch sizes only");
    }
    BF_ASSIGN_OR_RETURN(k.a[static_cast<size_t>(i)], IntOp(ctx, op, x.a[ix], y.a[iy]));
    BF_ASSIGN_OR_RETURN(k.b[static_cast<size_t>(i)], IntOp(ctx, op, x.b[ix], y.b[iy]));
  }
  return k;
}

StatusOr<Known> KnownWhere(const NodeContext& ctx, const Known& c, const Known& x, const Known& y) {
  if (c.batch_dependent()) return ctx.Error("a condition computed from the batch size");
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> d1, BroadcastDims(ctx, c.shape, x.shape));
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> dims, BroadcastDims(ctx, d1, y.shape));
  const int64_t n = Count(dims);
  if (n > kMaxKnownElements) return ctx.Error("the folded value is too large");
  const std::vector<int64_t> cond = c.is_float ? std::vector<int64_t>(c.f.begin(), c.f.end()) : c.a;
  Known k = x.is_float ? Known::Floats(std::vector<double>(static_cast<size_t>(n)), dims)
                       : Known::Ints(std::vector<int64_t>(static_cast<size_t>(n)), dims);
  for (int64_t i = 0; i < n; ++i) {
    const bool take_x = cond[static_cast<size_t>(SourceIndex(c.shape, dims, i))] != 0;
    const Known& src = take_x ? x : y;
    const size_t j = static_cast<size_t>(SourceIndex(src.shape, dims, i));
    if (k.is_float) {
      k.f[static_cast<size_t>(i)] = src.is_float ? src.f[j] : static_cast<double>(src.a[j]);
    } else {
      k.a[static_cast<size_t>(i)] = src.a[j];
      k.b[static_cast<size_t>(i)] = src.b[j];
    }
  }
  return k;
}

StatusOr<int64_t> Axis(const NodeContext& ctx, int64_t axis, int64_t rank, std::string_view what) {
  if (axis < -rank || axis >= rank) {
    return ctx.Error(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

StatusOr<Known> KnownGather(const NodeContext& ctx, const Known& data, const Known& indices,
                            int64_t axis) {
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  BF_ASSIGN_OR_RETURN(axis, Axis(ctx, axis, rank, "axis"));
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> idx, StaticInts(ctx, indices, "indices"));
  const int64_t dim = data.shape[static_cast<size_t>(axis)];
  // Products of dimensions of a value with elements are at most its size; an empty value's
  // dimensions may multiply past int64 on either side of the axis, and it gathers nothing.
  const std::span<const int64_t> shape(data.shape);
  const size_t at = static_cast<size_t>(axis);
  const std::optional<int64_t> outer_count = CheckedProduct(shape.first(at));
  const std::optional<int64_t> inner_count = CheckedProduct(shape.subspan(at + 1));
  const bool empty = data.size() == 0;
  const int64_t outer = empty ? std::min<int64_t>(outer_count.value_or(1), 1) : *outer_count;
  const int64_t inner = empty ? 0 : *inner_count;
  std::vector<int64_t> dims(data.shape.begin(), data.shape.begin() + axis);
  dims.insert(dims.end(), indices.shape.begin(), indices.shape.end());
  dims.insert(dims.end(), data.shape.begin() + axis + 1, data.shape.end());
  Known k = data;
  k.shape = dims;
  k.a.clear(), k.b.clear(), k.f.clear();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j : idx) {
      if (j < -dim || j >= dim) return ctx.Error("index " + std::to_string(j) + " is out of range");
      const int64_t row = j < 0 ? j + dim : j;
      for (int64_t e = 0; e < inner; ++e) {
        const size_t from = static_cast<size_t>((o * dim + row) * inner + e);
        if (data.is_float) {
          k.f.push_back(data.f[from]);
        } else {
          k.a.push_back(data.a[from]);
          k.b.push_back(data.b[from]);
        }
      }
    }
  }
  return k;
}

StatusOr<Known> KnownConcat(const NodeContext& ctx, const std::vector<Known>& parts, int64_t axis) {
  for (const Known& p : parts) {
    if (p.shape.size() != 1) return ctx.Error("only 1-D known values are concatenated at import");
  }
  Known k = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    const Known& p = parts[i];
    if (p.is_float != k.is_float) return ctx.Error("inputs of different element types");
    k.a.insert(k.a.end(), p.a.begin(), p.a.end());
    k.b.insert(k.b.end(), p.b.begin(), p.b.end());
    k.f.insert(k.f.end(), p.f.begin(), p.f.end());
  }
  k.shape = {k.size()};
  return k;
}

StatusOr<Known> KnownSlice(const NodeContext& ctx, const Known& data, int64_t start, int64_t end,
                           int64_t step) {
  if (data.shape.size() != 1) return ctx.Error("only 1-D known values are sliced at import");
  if (step == 0) return ctx.Error("a slice step of 0");
  const int64_t n = data.shape[0];
  auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
    if (v < 0) v += n;
    return std::clamp(v, lo, hi);
  };
  Known k = data;
  k.a.clear(), k.b.clear(), k.f.clear();
  const int64_t s = step > 0 ? clamp(start, 0, n) : clamp(start, -1, n - 1);
  const int64_t e = step > 0 ? clamp(end, 0, n) : clamp(end, -1, n - 1);
  for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
    if (data.is_float) {
      k.f.push_back(data.f[static_cast<size_t>(i)]);
    } else {
      k.a.push_back(data.a[static_cast<size_t>(i)]);
      k.b.push_back(data.b[static_cast<size_t>(i)]);
    }
  }
  k.shape = {k.size()};
  return k;
}

StatusOr<std::vector<int64_t>> StaticInts(const NodeContext& ctx, const Known& k,
                                          std::string_view what) {
  if (k.is_float) return ctx.Error(std::string(what) + " must be integers");
  if (k.batch_dependent()) {
    return ctx.Error(std::string(what) + " depends on the batch size here, which backflow "
                     "cannot fold");
  }
  return k.a;
}

StatusOr<double> ScalarFloat(const NodeContext& ctx, const Known& k, std::string_view what) {
  if (k.size() != 1) return ctx.Error(std::string(what) + " must be a single value");
  if (k.batch_dependent()) return ctx.Error(std::string(what) + " depends on the batch size");
  return k.is_float ? k.f[0] : static_cast<double>(k.a[0]);
}

}  // namespace backflow::onnx_import
