// conv2d_backward_bias: dL/db of conv2d, the sum of dy over batch and space.
//
// A gate of its own, rather than sum(dy, axes [0, 2, 3]), because dy usually arrives in a
// oneDNN blocked layout from the gates around it; a oneDNN reduction reads that layout directly,
// where the generic sum would need dy reordered to plain first.
#include <optional>
#include <string>
#include <vector>

#include "engine/gates/conv_internal.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/spatial.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::conv_internal {
namespace {

// float64: db[o] = sum over n, h, w of dy[n, o, h, w], in that order.
std::unique_ptr<Kernel> ReferenceBias(const Shape& dy) {
  return std::make_unique<ReferenceLoopKernel>(
      [n = dy.dim(0), o = dy.dim(1), hw = dy.dim(2) * dy.dim(3)](
          std::span<const Tensor* const> in, Tensor& db) {
        const double* g = in[0]->data<double>();
        double* out = db.data<double>();
        for (int64_t c = 0; c < o; ++c) out[c] = 0;
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t c = 0; c < o; ++c) {
            const double* plane = g + (b * o + c) * hw;
            for (int64_t i = 0; i < hw; ++i) out[c] += plane[i];
          }
        }
      });
}

// The layout of an activation [N, C, H, W] that the direct kernel below reads: plain, or one
// inner block of `block` channels (nChw8c, nChw16c: what oneDNN's convolutions choose).
struct ChannelBlocking {
  int64_t block = 1;
  int64_t strides[4] = {0, 0, 0, 0};  // of n, c / block, h, w, in elements
};

std::optional<ChannelBlocking> DirectBlocking(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked || d.offset0 != 0) return std::nullopt;
  const auto& b = d.format_desc.blocking;
  ChannelBlocking out;
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    out.block = b.inner_blks[0];
  } else if (b.inner_nblks != 0) {
    return std::nullopt;
  }
  for (int i = 0; i < 4; ++i) out.strides[i] = b.strides[i];
  return out;
}

// db[c] = sum of dy[n, c, h, w], read straight from a plain or channel-blocked buffer; each
// channel accumulates in double, in a fixed order, so the result is reproducible.
class BlockedBiasKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  BlockedBiasKernel(const Shape& dy, ChannelBlocking blocking) : dy_(dy), b_(blocking) {}
  Status Run(KernelContext& ctx) const override {
    const float* g = ctx.inputs[0]->data<float>();
    const int64_t n = dy_.dim(0), c = dy_.dim(1), h = dy_.dim(2), w = dy_.dim(3);
    const int64_t blocks = (c + b_.block - 1) / b_.block;
    std::vector<double> acc(static_cast<size_t>(blocks * b_.block), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t cb = 0; cb < blocks; ++cb) {
        double* lane = acc.data() + cb * b_.block;
        for (int64_t y = 0; y < h; ++y) {
          for (int64_t x = 0; x < w; ++x) {
            const float* p = g + i * b_.strides[0] + cb * b_.strides[1] + y * b_.strides[2] +
                             x * b_.strides[3];
            for (int64_t j = 0; j < b_.block; ++j) lane[j] += p[j];
          }
        }
      }
    }
    float* out = ctx.output->data<float>();
    for (int64_t k = 0; k < c; ++k) out[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
    return Status::Ok();
  }

 private:
  Shape dy_;
  ChannelBlocking b_;
};

// oneDNN's reduction: for layouts the direct kernel does not read (it has only a slow
// reference implementation in this oneDNN, so it is the fallback, not the rule).
StatusOr<std::unique_ptr<Kernel>> CompileDnnlBias(const CompileContext& ctx) {
  constexpr std::string_view kOp = "conv2d backward bias";
  const std::string what = KernelLabel(ctx.node, kOp);
  const Shape& dy_shape = ctx.inputs[0];
  const dnnl::memory::desc dy = dnnl_rt::DescOf(ctx.input_layout(0), dy_shape);
  const dnnl::memory::desc db = dnnl_rt::PlainDesc(Shape{1, dy_shape.dim(1), 1, 1});
  BF_ASSIGN_OR_RETURN(auto pd, dnnl_rt::Build(what, [&] {
                        const dnnl::reduction::desc desc(dnnl::algorithm::reduction_sum, dy, db,
                                                         0.f, 0.f);
                        return dnnl::reduction::primitive_desc(desc, PrimitiveAttributes(),
                                                               dnnl_rt::CpuEngine());
                      }));
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, dy}}, {DNNL_ARG_DST, db}, what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(std::move(bound), std::string(kOp)));
}

// Internal: input dy [N, O, H, W]; output [O].
class Conv2dBackwardBiasGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  bool accepts_layout(int input) const override { return true; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(CheckNchw(ctx, ctx.inputs[0], "dy"));
    return Shape{ctx.inputs[0].dim(1)};
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    if (ctx.dtype == DType::kFloat32) {
      const dnnl::memory::desc dy = dnnl_rt::DescOf(ctx.input_layout(0), ctx.inputs[0]);
      if (std::optional<ChannelBlocking> b = DirectBlocking(dy)) {
        return std::unique_ptr<Kernel>(std::make_unique<BlockedBiasKernel>(ctx.inputs[0], *b));
      }
      return CompileDnnlBias(ctx);
    }
    return ReferenceBias(ctx.inputs[0]);
  }
};

}  // namespace

std::unique_ptr<Gate> MakeConv2dBackwardBiasGate() {
  return std::make_unique<Conv2dBackwardBiasGate>();
}

}  // namespace backflow::conv_internal
