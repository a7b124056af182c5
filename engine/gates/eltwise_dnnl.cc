#include "engine/gates/eltwise_dnnl.h"

#include <string>
#include <vector>

#include "engine/gates/dnnl_primitive.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace {

using dnnl::memory;

StatusOr<dnnl::eltwise_forward::primitive_desc> ForwardPd(const memory::desc& src,
                                                          const EltwiseSpec& spec,
                                                          const std::string& what) {
  return dnnl_rt::Build(what, [&] {
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, spec.forward, src,
                                           spec.alpha, 0.f);
    return dnnl::eltwise_forward::primitive_desc(desc, PrimitiveAttributes(),
                                                 dnnl_rt::CpuEngine());
  });
}

// The gradient kernel reads two of the gate's three inputs (x or y, and dy).
class EltwiseGradKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  EltwiseGradKernel(BoundPrimitive primitive, int data_input, LayoutPtr layout)
      : primitive_(std::move(primitive)), data_input_(data_input), layout_(std::move(layout)) {}
  // The team of the plan node it was compiled for (Note [Team size per primitive]).
  int cores() const override { return cores_; }
  LayoutPtr output_layout() const override { return layout_; }
  Status Run(KernelContext& ctx) const override {
    const Tensor* inputs[2] = {ctx.inputs[static_cast<size_t>(data_input_)], ctx.inputs[2]};
    return primitive_.Run(inputs, *ctx.output, {}, ctx.threads, "eltwise backward");
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  BoundPrimitive primitive_;
  int data_input_;
  LayoutPtr layout_;
};

}  // namespace

bool UseDnnlEltwise(const CompileContext& ctx) {
  if (ctx.dtype != DType::kFloat32) return false;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (ctx.input_layout(i)) return true;  // a blocked input only oneDNN can read
  }
  return ctx.output.num_elements() >= kEltwiseMinElements;
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlEltwise(const CompileContext& ctx,
                                                     const EltwiseSpec& spec) {
  const std::string what = "node '" + std::string(ctx.node) + "': eltwise forward";
  const memory::desc src = dnnl_rt::DescOf(ctx.input_layout(0), ctx.inputs[0]);
  BF_ASSIGN_OR_RETURN(auto pd, ForwardPd(src, spec, what));
  const memory::desc dst = OutputDesc(ctx, pd.dst_desc());
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, src}}, {DNNL_ARG_DST, dst}, what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(
      std::move(bound), "eltwise forward", dnnl_rt::LayoutOf(dst, ctx.output)));
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlEltwiseGrad(const CompileContext& ctx,
                                                         const EltwiseSpec& spec) {
  const std::string what = "node '" + std::string(ctx.node) + "': eltwise backward";
  const int data_input = spec.backward_reads_dst ? 1 : 0;
  // The primitive works in the layout of the forward data (x or y); dy joins it (by a reorder
  // only if the two differ).
  const memory::desc data =
      dnnl_rt::DescOf(ctx.input_layout(static_cast<size_t>(data_input)), ctx.output);
  const memory::desc dy = dnnl_rt::DescOf(ctx.input_layout(2), ctx.output);
  BF_ASSIGN_OR_RETURN(auto fwd_pd, ForwardPd(data, spec, what));
  BF_ASSIGN_OR_RETURN(auto pd, dnnl_rt::Build(what, [&] {
                        const dnnl::eltwise_backward::desc desc(spec.backward, data, data,
                                                                spec.alpha, 0.f);
                        return dnnl::eltwise_backward::primitive_desc(
                            desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd_pd);
                      }));
  const memory::desc dx = OutputDesc(ctx, pd.diff_src_desc());
  const int data_arg = spec.backward_reads_dst ? DNNL_ARG_DST : DNNL_ARG_SRC;
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{data_arg, data}, {DNNL_ARG_DIFF_DST, dy}},
                                           {DNNL_ARG_DIFF_SRC, dx}, what));
  return std::unique_ptr<Kernel>(std::make_unique<EltwiseGradKernel>(
      std::move(bound), data_input, dnnl_rt::LayoutOf(dx, ctx.output)));
}

}  // namespace backflow
