// The float32 kernels of layer_norm and layer_norm_grad_x: oneDNN's layer_normalization_forward
// and _backward on x viewed as [outer, n]. oneDNN normalises as torch does: biased variance,
// epsilon inside the square root. The backward gets the statistics as inputs; they are computed
// here in double, as the reference does.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/gates/dnnl_primitive.h"
#include "engine/gates/layer_norm_internal.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::layer_norm {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;

// A plain float32 vector of n elements over `data` (which oneDNN reads or writes, per argument).
memory VectorMemory(int64_t n, const float* data) {
  return memory(dnnl_rt::PlainDesc(Shape{n}), dnnl_rt::CpuEngine(), const_cast<float*>(data));
}

normalization_flags Flags(bool scale, bool shift) {
  normalization_flags f = normalization_flags::none;
  if (scale) f = f | normalization_flags::use_scale;
  if (shift) f = f | normalization_flags::use_shift;
  return f;
}

StatusOr<dnnl::layer_normalization_forward::primitive_desc> ForwardPd(const memory::desc& md,
                                                                      double eps,
                                                                      normalization_flags flags,
                                                                      dnnl::prop_kind prop,
                                                                      const std::string& what) {
  return dnnl_rt::Build(what, [&] {
    const dnnl::layer_normalization_forward::desc desc(prop, md, static_cast<float>(eps), flags);
    return dnnl::layer_normalization_forward::primitive_desc(desc, PrimitiveAttributes(),
                                                             dnnl_rt::CpuEngine());
  });
}

class ForwardKernel : public Kernel {
 public:
  ForwardKernel(BoundPrimitive primitive, Groups groups, bool affine)
      : primitive_(std::move(primitive)), g_(groups), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  int cores() const override { return cores_; }
  Status Run(KernelContext& ctx) const override {
    dnnl_rt::Args extra;
    if (affine_) {
      extra.emplace(DNNL_ARG_SCALE, VectorMemory(g_.n, ctx.inputs[1]->data<float>()));
      extra.emplace(DNNL_ARG_SHIFT, VectorMemory(g_.n, ctx.inputs[2]->data<float>()));
    }
    const Tensor* x[] = {ctx.inputs[0]};
    return primitive_.Run(x, *ctx.output, std::move(extra), ctx.threads,
                          "layer normalization forward");
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  BoundPrimitive primitive_;
  Groups g_;
  bool affine_;
};

class GradXKernel : public Kernel {
 public:
  GradXKernel(BoundPrimitive primitive, Groups groups, bool affine)
      : primitive_(std::move(primitive)), g_(groups), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  int cores() const override { return cores_; }
  Status Run(KernelContext& ctx) const override {
    const float* x = ctx.inputs[0]->data<float>();
    std::vector<float> mean(static_cast<size_t>(g_.outer)), var(mean.size());
    for (int64_t o = 0; o < g_.outer; ++o) {
      double m = 0, v = 0;
      GroupMoments(x + o * g_.n, g_.n, m, v);
      mean[static_cast<size_t>(o)] = static_cast<float>(m);
      var[static_cast<size_t>(o)] = static_cast<float>(v);
    }
    dnnl_rt::Args extra;
    extra.emplace(DNNL_ARG_MEAN, VectorMemory(g_.outer, mean.data()));
    extra.emplace(DNNL_ARG_VARIANCE, VectorMemory(g_.outer, var.data()));
    // Affine, oneDNN has only the full backward, whose dscale the gate's own gradient gate
    // computes: it lands in scratch.
    std::vector<float> dscale(affine_ ? static_cast<size_t>(g_.n) : 0);
    if (affine_) {
      extra.emplace(DNNL_ARG_SCALE, VectorMemory(g_.n, ctx.inputs[2]->data<float>()));
      extra.emplace(DNNL_ARG_DIFF_SCALE, VectorMemory(g_.n, dscale.data()));
    }
    const Tensor* in[] = {ctx.inputs[0], ctx.inputs[1]};
    return primitive_.Run(in, *ctx.output, std::move(extra), ctx.threads,
                          "layer normalization backward");
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  BoundPrimitive primitive_;
  Groups g_;
  bool affine_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const CompileContext& ctx, Groups groups,
                                                     double eps, bool affine) {
  const std::string what = "node '" + std::string(ctx.node) + "': layer normalization forward";
  const memory::desc md = dnnl_rt::PlainDesc(Shape{groups.outer, groups.n});
  // Inference: the primitive computes the statistics itself and does not write them out.
  BF_ASSIGN_OR_RETURN(
      auto pd, ForwardPd(md, eps, Flags(affine, affine), dnnl::prop_kind::forward_inference, what));
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, md}}, {DNNL_ARG_DST, md}, what));
  return std::unique_ptr<Kernel>(std::make_unique<ForwardKernel>(std::move(bound), groups, affine));
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlGradX(const CompileContext& ctx, Groups groups,
                                                   double eps, bool affine) {
  const std::string what = "node '" + std::string(ctx.node) + "': layer normalization backward";
  const memory::desc md = dnnl_rt::PlainDesc(Shape{groups.outer, groups.n});
  // The shift does not reach dx, so neither primitive is told of it.
  const normalization_flags flags = Flags(affine, false);
  BF_ASSIGN_OR_RETURN(auto fwd, ForwardPd(md, eps, flags, dnnl::prop_kind::forward_training, what));
  BF_ASSIGN_OR_RETURN(auto pd, dnnl_rt::Build(what, [&] {
                        const dnnl::layer_normalization_backward::desc desc(
                            affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, md,
                            md, static_cast<float>(eps), flags);
                        return dnnl::layer_normalization_backward::primitive_desc(
                            desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd);
                      }));
  BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                      BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, md}, {DNNL_ARG_DIFF_DST, md}},
                                           {DNNL_ARG_DIFF_SRC, md}, what));
  return std::unique_ptr<Kernel>(std::make_unique<GradXKernel>(std::move(bound), groups, affine));
}

}  // namespace backflow::layer_norm
