// float32 average pooling on the reference loops, for the windows oneDNN would divide otherwise
// than PyTorch (pool_internal.h, DnnlAvgDivisorDiffers). The gates accept oneDNN layouts on
// their activation input, so a blocked x (forward) or dy (backward) is first reordered to plain.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "engine/gates/pool_internal.h"
#include "engine/gates/spatial.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::pool_internal {
namespace {

using reference::Pool2dShape;

// Reorders a tensor from a oneDNN layout to plain row-major.
class ToPlain {
 public:
  ToPlain(const dnnl::memory::desc& from, const dnnl::memory::desc& to) : from_(from), to_(to) {
    const dnnl::engine& engine = dnnl_rt::CpuEngine();
    const dnnl::reorder::primitive_desc pd(engine, from, engine, to, PrimitiveAttributes());
    reorder_ = dnnl::reorder(pd);
    scratchpad_md_ = pd.scratchpad_desc();
  }
  Status Run(const Tensor& in, Tensor& out, int threads, std::string_view what) const {
    const dnnl::engine& engine = dnnl_rt::CpuEngine();
    // oneDNN's handles are not const-qualified; a reorder only reads its source.
    dnnl_rt::Args args = {
        {DNNL_ARG_FROM, dnnl::memory(from_, engine, const_cast<std::byte*>(in.raw()))},
        {DNNL_ARG_TO, dnnl::memory(to_, engine, out.raw())}};
    std::optional<ScratchBuffer> scratchpad;
    if (scratchpad_md_.get_size() > 0) {
      scratchpad.emplace(scratchpad_md_.get_size());
      args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratchpad_md_, engine, scratchpad->data());
    }
    return dnnl_rt::Execute(reorder_, args, threads, what);
  }

 private:
  dnnl::memory::desc from_;
  dnnl::memory::desc to_;
  dnnl::reorder reorder_;
  dnnl::memory::desc scratchpad_md_;
};

class FloatAvgReferenceKernel : public Kernel {
 public:
  FloatAvgReferenceKernel(Pool2dShape s, bool backward, std::optional<ToPlain> to_plain,
                          Shape input_shape, std::string what)
      : s_(s),
        backward_(backward),
        to_plain_(std::move(to_plain)),
        input_shape_(std::move(input_shape)),
        what_(std::move(what)) {}
  bool overwrites_output() const override { return true; }  // the backward zero-fills dx first
  Status Run(KernelContext& ctx) const override {
    const Tensor* in = ctx.inputs[0];
    std::optional<Tensor> plain;
    if (to_plain_) {
      plain.emplace(DType::kFloat32, input_shape_);
      BF_RETURN_IF_ERROR(to_plain_->Run(*in, *plain, ctx.threads, what_));
      in = &*plain;
    }
    if (backward_) {
      reference::AvgPool2dBackward<float>(s_, in->data<float>(), ctx.output->data<float>());
    } else {
      reference::AvgPool2dForward<float>(s_, in->data<float>(), ctx.output->data<float>());
    }
    return Status::Ok();
  }

 private:
  Pool2dShape s_;
  bool backward_;
  std::optional<ToPlain> to_plain_;  // set if the input is not plain
  Shape input_shape_;
  std::string what_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> CompileFloatAvgReference(const Pool2dShape& s, bool backward,
                                                           const CompileContext& ctx) {
  const std::string what =
      KernelLabel(ctx.node, backward ? "avg_pool2d backward" : "avg_pool2d forward");
  const Shape input = backward ? OutputShape(s) : InputShape(s);
  std::optional<ToPlain> to_plain;
  if (LayoutPtr layout = ctx.input_layout(0)) {
    BF_RETURN_IF_ERROR(dnnl_rt::Build(what, [&] {
                         to_plain.emplace(dnnl_rt::DescOf(layout, input),
                                          dnnl_rt::PlainDesc(input));
                         return 0;
                       }).status());
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<FloatAvgReferenceKernel>(s, backward, std::move(to_plain), input, what));
}

}  // namespace backflow::pool_internal
