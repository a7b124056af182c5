// The float32 kernels of batch_norm and batch_norm_grad_x: oneDNN's batch_normalization_forward
// and batch_normalization_backward (backward_data) on plain [N, C] or [N, C, H, W] tensors. Each
// kernel holds a primitive per mode, since the mode is the run's (KernelContext::info): training
// lets the forward compute the batch's mean and biased variance, inference uses the running ones
// (use_global_stats). The backward gets the statistics as inputs: computed in double in training
// (the reference's BatchStats), the running ones in inference.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/gates/batch_norm_internal.h"
#include "engine/gates/dnnl_primitive.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow::batch_norm {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;

memory ChannelMemory(int64_t c, const float* data) {
  return memory(dnnl_rt::PlainDesc(Shape{c}), dnnl_rt::CpuEngine(), const_cast<float*>(data));
}

normalization_flags Flags(bool affine, bool training) {
  normalization_flags f = normalization_flags::none;
  if (affine) f = f | normalization_flags::use_scale | normalization_flags::use_shift;
  if (!training) f = f | normalization_flags::use_global_stats;
  return f;
}

StatusOr<dnnl::batch_normalization_forward::primitive_desc> ForwardPd(const Shape& x, double eps,
                                                                      normalization_flags flags,
                                                                      dnnl::prop_kind prop,
                                                                      const std::string& what) {
  return dnnl_rt::Build(what, [&] {
    const dnnl::batch_normalization_forward::desc desc(prop, dnnl_rt::PlainDesc(x),
                                                       static_cast<float>(eps), flags);
    return dnnl::batch_normalization_forward::primitive_desc(desc, PrimitiveAttributes(),
                                                             dnnl_rt::CpuEngine());
  });
}

// The primitives of one mode, index 0 inference and 1 training.
class ForwardKernel : public Kernel {
 public:
  ForwardKernel(std::vector<BoundPrimitive> modes, int64_t c, bool affine)
      : modes_(std::move(modes)), c_(c), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  int cores() const override { return cores_; }
  Status Run(KernelContext& ctx) const override {
    dnnl_rt::Args extra;
    std::vector<float> mean(static_cast<size_t>(c_)), var(static_cast<size_t>(c_));
    const bool training = ctx.info.training;
    extra.emplace(DNNL_ARG_MEAN,
                  ChannelMemory(c_, training ? mean.data() : ctx.inputs[1]->data<float>()));
    extra.emplace(DNNL_ARG_VARIANCE,
                  ChannelMemory(c_, training ? var.data() : ctx.inputs[2]->data<float>()));
    if (affine_) {
      extra.emplace(DNNL_ARG_SCALE, ChannelMemory(c_, ctx.inputs[3]->data<float>()));
      extra.emplace(DNNL_ARG_SHIFT, ChannelMemory(c_, ctx.inputs[4]->data<float>()));
    }
    const Tensor* x[] = {ctx.inputs[0]};
    return modes_[training ? 1 : 0].Run(x, *ctx.output, std::move(extra), ctx.threads,
                                        "batch normalization forward");
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  std::vector<BoundPrimitive> modes_;
  int64_t c_;
  bool affine_;
};

class GradXKernel : public Kernel {
 public:
  GradXKernel(std::vector<BoundPrimitive> modes, Dims dims, bool affine)
      : modes_(std::move(modes)), d_(dims), affine_(affine) {}
  bool overwrites_output() const override { return true; }
  int cores() const override { return cores_; }
  Status Run(KernelContext& ctx) const override {
    const bool training = ctx.info.training;
    std::vector<float> mean, var;
    if (training) {
      std::vector<double> m, v;
      BatchStats(d_, ctx.inputs[0]->data<float>(), m, v);
      mean.assign(m.begin(), m.end());
      var.assign(v.begin(), v.end());
    }
    dnnl_rt::Args extra;
    extra.emplace(DNNL_ARG_MEAN,
                  ChannelMemory(d_.c, training ? mean.data() : ctx.inputs[2]->data<float>()));
    extra.emplace(DNNL_ARG_VARIANCE,
                  ChannelMemory(d_.c, training ? var.data() : ctx.inputs[3]->data<float>()));
    // Affine, oneDNN has only the full backward, whose dscale and dshift the gate's own
    // gradient gates compute: they land in scratch.
    std::vector<float> shift(static_cast<size_t>(d_.c));
    std::vector<float> dscale(shift.size()), dshift(shift.size());
    if (affine_) {
      extra.emplace(DNNL_ARG_SCALE, ChannelMemory(d_.c, ctx.inputs[4]->data<float>()));
      extra.emplace(DNNL_ARG_SHIFT, ChannelMemory(d_.c, shift.data()));  // asked for, unread
      extra.emplace(DNNL_ARG_DIFF_SCALE, ChannelMemory(d_.c, dscale.data()));
      extra.emplace(DNNL_ARG_DIFF_SHIFT, ChannelMemory(d_.c, dshift.data()));
    }
    const Tensor* in[] = {ctx.inputs[0], ctx.inputs[1]};
    return modes_[training ? 1 : 0].Run(in, *ctx.output, std::move(extra), ctx.threads,
                                        "batch normalization backward");
  }

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  std::vector<BoundPrimitive> modes_;
  Dims d_;
  bool affine_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const CompileContext& ctx, double eps,
                                                     bool affine) {
  const std::string what = "node '" + std::string(ctx.node) + "': batch normalization forward";
  const Shape& x = ctx.inputs[0];
  const memory::desc md = dnnl_rt::PlainDesc(x);
  std::vector<BoundPrimitive> modes;
  for (bool training : {false, true}) {
    BF_ASSIGN_OR_RETURN(auto pd, ForwardPd(x, eps, Flags(affine, training),
                                           training ? dnnl::prop_kind::forward_training
                                                    : dnnl::prop_kind::forward_inference,
                                           what));
    BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                        BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, md}}, {DNNL_ARG_DST, md}, what));
    modes.push_back(std::move(bound));
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<ForwardKernel>(std::move(modes), x.dim(1), affine));
}

StatusOr<std::unique_ptr<Kernel>> CompileDnnlGradX(const CompileContext& ctx, double eps,
                                                   bool affine) {
  const std::string what = "node '" + std::string(ctx.node) + "': batch normalization backward";
  const Shape& x = ctx.inputs[0];
  const memory::desc md = dnnl_rt::PlainDesc(x);
  std::vector<BoundPrimitive> modes;
  for (bool training : {false, true}) {
    const normalization_flags flags = Flags(affine, training);
    BF_ASSIGN_OR_RETURN(auto fwd,
                        ForwardPd(x, eps, flags, dnnl::prop_kind::forward_training, what));
    BF_ASSIGN_OR_RETURN(auto pd, dnnl_rt::Build(what, [&] {
                          const dnnl::batch_normalization_backward::desc desc(
                              affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data,
                              md, md, static_cast<float>(eps), flags);
                          return dnnl::batch_normalization_backward::primitive_desc(
                              desc, PrimitiveAttributes(), dnnl_rt::CpuEngine(), fwd);
                        }));
    BF_ASSIGN_OR_RETURN(BoundPrimitive bound,
                        BoundPrimitive::Make(pd, {{DNNL_ARG_SRC, md}, {DNNL_ARG_DIFF_DST, md}},
                                             {DNNL_ARG_DIFF_SRC, md}, what));
    modes.push_back(std::move(bound));
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<GradXKernel>(std::move(modes), Dims::Of(x), affine));
}

}  // namespace backflow::batch_norm
