#include "engine/gates/spatial.h"

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/core/checked.h"

namespace backflow {
namespace {

std::string Join(const std::vector<int64_t>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + std::to_string(values[i]);
  return s + "]";
}

std::string Size(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

// Reads attribute `name` as two ints, each at least `min`; `fallback` if absent.
StatusOr<std::pair<int64_t, int64_t>> ParsePair(const ShapeContext& ctx, std::string_view name,
                                                int64_t min, std::vector<int64_t> fallback) {
  const std::vector<int64_t> v = ctx.attrs.GetInts(name, std::move(fallback));
  if (v.size() != 2 || v[0] < min || v[1] < min) {
    return ctx.Error(std::string(name) + " must be 2 ints, each >= " + std::to_string(min) +
                     ", got " + Join(v));
  }
  return std::pair{v[0], v[1]};
}

// Reads "padding" into `win`: [ph, pw] pads both sides alike, [top, left, bottom, right] each.
Status ParsePadding(const ShapeContext& ctx, reference::Window2d& win) {
  const std::vector<int64_t> p = ctx.attrs.GetInts("padding", {0, 0});
  const bool non_negative = std::all_of(p.begin(), p.end(), [](int64_t v) { return v >= 0; });
  if ((p.size() != 2 && p.size() != 4) || !non_negative) {
    return ctx.Error(
        "padding must be 2 ints [ph, pw] or 4 ints [top, left, bottom, right], each "
        ">= 0, got " +
        Join(p));
  }
  win.pad_top = p[0];
  win.pad_left = p[1];
  win.pad_bottom = p.size() == 4 ? p[2] : p[0];
  win.pad_right = p.size() == 4 ? p[3] : p[1];
  return Status::Ok();
}

std::string PaddingString(const reference::Window2d& win) {
  return Join({win.pad_top, win.pad_left, win.pad_bottom, win.pad_right});
}

// (kernel - 1) * dilation + 1, or nullopt where it does not fit in int64.
std::optional<int64_t> CheckedSpan(int64_t kernel, int64_t dilation) {
  const std::optional<int64_t> gaps = CheckedMul(kernel - 1, dilation);
  return gaps ? CheckedAdd(*gaps, 1) : std::nullopt;
}

// The dilated window and the padded input, each of which must fit in int64 for the output size
// (reference::Window2d::OutSize) to be computed; the window's other arithmetic stays within them.
Status CheckWindowArithmetic(const ShapeContext& ctx, const reference::Window2d& win, int64_t h,
                             int64_t w) {
  if (!CheckedSpan(win.kernel_h, win.dilation_h) || !CheckedSpan(win.kernel_w, win.dilation_w)) {
    return ctx.Error("dilation " + Join({win.dilation_h, win.dilation_w}) + " with kernel " +
                     Size(win.kernel_h, win.kernel_w) + " overflows the window size");
  }
  const std::optional<int64_t> top = CheckedAdd(h, win.pad_top);
  const std::optional<int64_t> left = CheckedAdd(w, win.pad_left);
  if (!top || !left || !CheckedAdd(*top, win.pad_bottom) || !CheckedAdd(*left, win.pad_right)) {
    return ctx.Error("padding " + PaddingString(win) + " on the input " + Size(h, w) +
                     " overflows the padded size");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::pair<int64_t, int64_t>> ParseSize2(const ShapeContext& ctx, std::string_view name) {
  return ParsePair(ctx, name, 1, {});
}

StatusOr<reference::Window2d> ParseConvWindow(const ShapeContext& ctx, int64_t kernel_h,
                                              int64_t kernel_w) {
  reference::Window2d win;
  win.kernel_h = kernel_h;
  win.kernel_w = kernel_w;
  BF_ASSIGN_OR_RETURN(auto stride, ParsePair(ctx, "stride", 1, {1, 1}));
  BF_ASSIGN_OR_RETURN(auto dilation, ParsePair(ctx, "dilation", 1, {1, 1}));
  std::tie(win.stride_h, win.stride_w) = stride;
  std::tie(win.dilation_h, win.dilation_w) = dilation;
  BF_RETURN_IF_ERROR(ParsePadding(ctx, win));
  return win;
}

StatusOr<reference::Window2d> ParsePoolWindow(const ShapeContext& ctx) {
  reference::Window2d win;
  BF_ASSIGN_OR_RETURN(auto kernel, ParsePair(ctx, "kernel", 1, {}));
  BF_ASSIGN_OR_RETURN(auto stride, ParsePair(ctx, "stride", 1, {kernel.first, kernel.second}));
  std::tie(win.kernel_h, win.kernel_w) = kernel;
  std::tie(win.stride_h, win.stride_w) = stride;
  BF_RETURN_IF_ERROR(ParsePadding(ctx, win));
  // Average pooling divides by up to kh * kw taps.
  if (!CheckedMul(win.kernel_h, win.kernel_w)) {
    return ctx.Error("kernel " + Size(win.kernel_h, win.kernel_w) +
                     " overflows the window's tap count");
  }
  if (std::max(win.pad_top, win.pad_bottom) >= win.kernel_h ||
      std::max(win.pad_left, win.pad_right) >= win.kernel_w) {
    return ctx.Error("padding " + PaddingString(win) + " must be smaller than the kernel " +
                     Size(win.kernel_h, win.kernel_w) +
                     " on every side, or a window could hold only padding");
  }
  return win;
}

Attributes ConvWindowAttributes(const reference::Window2d& win) {
  return Attributes{
      {"stride", std::vector<int64_t>{win.stride_h, win.stride_w}},
      {"padding", std::vector<int64_t>{win.pad_top, win.pad_left, win.pad_bottom, win.pad_right}},
      {"dilation", std::vector<int64_t>{win.dilation_h, win.dilation_w}}};
}

Attributes PoolWindowAttributes(const reference::Window2d& win) {
  return Attributes{
      {"kernel", std::vector<int64_t>{win.kernel_h, win.kernel_w}},
      {"stride", std::vector<int64_t>{win.stride_h, win.stride_w}},
      {"padding", std::vector<int64_t>{win.pad_top, win.pad_left, win.pad_bottom, win.pad_right}}};
}

std::string KernelLabel(std::string_view node, std::string_view what) {
  return "node '" + std::string(node) + "' (" + std::string(what) + ")";
}

Status CheckNchw(const ShapeContext& ctx, const Shape& shape, std::string_view what) {
  bool ok = shape.rank() == 4 && (shape.dim(0) > 0 || shape.dim(0) == kBatchDim);
  for (int i = 1; ok && i < 4; ++i) ok = shape.dim(i) > 0;
  if (ok) return Status::Ok();
  return ctx.Error(std::string(what) + " must be [N, C, H, W] with C, H, W > 0, got " +
                   shape.ToString());
}

Status CheckFixedShape(const ShapeContext& ctx, const Shape& shape, int rank,
                       std::string_view what) {
  bool ok = shape.rank() == rank;
  for (int i = 0; ok && i < rank; ++i) ok = shape.dim(i) > 0;
  if (ok) return Status::Ok();
  return ctx.Error(std::string(what) + " must have rank " + std::to_string(rank) +
                   " and positive dimensions, got " + shape.ToString());
}

Status CheckWindowFits(const ShapeContext& ctx, const reference::Window2d& win, int64_t h,
                       int64_t w) {
  BF_RETURN_IF_ERROR(CheckWindowArithmetic(ctx, win, h, w));
  const int64_t padded_h = h + win.pad_top + win.pad_bottom;
  const int64_t padded_w = w + win.pad_left + win.pad_right;
  if (win.span_h() <= padded_h && win.span_w() <= padded_w) return Status::Ok();
  const bool dilated = win.dilation_h > 1 || win.dilation_w > 1;
  return ctx.Error("kernel " + Size(win.kernel_h, win.kernel_w) +
                   (dilated ? " (spanning " + Size(win.span_h(), win.span_w()) + " dilated)" : "") +
                   " is larger than the padded input " + Size(padded_h, padded_w) +
                   ", so the output would have no elements");
}

void ClampStrides(reference::Window2d& win, int64_t h, int64_t w) {
  win.stride_h = std::min(win.stride_h, h + win.pad_top + win.pad_bottom);
  win.stride_w = std::min(win.stride_w, w + win.pad_left + win.pad_right);
}

}  // namespace backflow
