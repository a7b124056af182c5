#include "engine/gates/softmax_dnnl.h"

#include <string>
#include <utility>

#include "engine/gates/dnnl_primitive.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace {

using dnnl::memory;

dnnl::algorithm Algorithm(bool log) {
  return log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
}

StatusOr<dnnl::softmax_v2_forward::primitive_desc> ForwardPd(const memory::desc& md, int axis,
                                                             bool log, const std::string& what) {
  return dnnl_rt::Build(what, [&] {
    const dnnl::softmax_v2_forward::desc desc(dnnl::prop_kind::forward_training, Algorithm(log), md,
                                              md, axis);
    return dnnl::softmax_v2_forward::primitive_desc(desc, PrimitiveAttributes(),
                                                    dnnl_rt::CpuEngine());
  });
}

std::string What(const CompileContext& ctx, bool log, const char* direction) {
  return "node '" + std::string(ctx.node) + "': " + (log ? "log_softmax " : "softmax ") + direction;
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> CompileDnnlSoftmax(const CompileContext& ctx, int axis,
                                                     bool log) {
  const std::string what = What(ctx, log, "forward");
  const memory::desc md = dnnl_rt::PlainDesc(ctx.output);
  BF_ASSIGN_OR_RETURN(auto pd, ForwardPd(md, axis, log, what));
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, md}}, {DNNL_ARG_DST, md}, what));
  return std::unique_ptr<Kernel>(
      std::make_unique<DnnlKernel>(std::move(bound), log ? "log_softmax" : "softmax"));
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlSoftmaxGrad(const CompileContext& ctx, int axis,
                                                         bool log) {
  const std::string what = What(ctx, log, "backward");
  const memory::desc md = dnnl_rt::PlainDesc(ctx.output);
  BF_ASSIGN_OR_RETURN(auto fwd_pd, ForwardPd(md, axis, log, what));
  BF_ASSIGN_OR_RETURN(auto pd, dnnl_rt::Build(what, [&] {
                        const dnnl::softmax_v2_backward::desc desc(Algorithm(log), md, md, md,
                                                                   axis);
                        return dnnl::softmax_v2_backward::primitive_desc(
                            desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd_pd);
                      }));
  // The gradient gates' inputs are (y, dy): the primitive's dst and diff_dst, in that order.
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_DST, md}, {DNNL_ARG_DIFF_DST, md}},
                                           {DNNL_ARG_DIFF_SRC, md}, what));
  return std::unique_ptr<Kernel>(std::make_unique<DnnlKernel>(
      std::move(bound), log ? "log_softmax backward" : "softmax backward"));
}

}  // namespace backflow
