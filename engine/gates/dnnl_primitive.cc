#include "engine/gates/dnnl_primitive.h"

#include <optional>
#include <string>
#include <utility>

namespace backflow {

dnnl::primitive_attr PrimitiveAttributes() {
  dnnl::primitive_attr attr;
  // The library-managed scratchpad is shared by every execution of a primitive; ours is
  // allocated per run, so one compiled plan can run on several threads at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

BoundPrimitive::Binding BoundPrimitive::Bind(const dnnl::primitive_desc& pd, const TensorArg& t,
                                             bool is_output) {
  Binding b;
  b.arg = t.arg;
  b.tensor_md = t.md;
  b.primitive_md = pd.query_md(dnnl::query::exec_arg_md, t.arg);
  if (b.primitive_md == b.tensor_md) return b;
  const dnnl::engine& engine = dnnl_rt::CpuEngine();
  const dnnl::memory::desc& from = is_output ? b.primitive_md : b.tensor_md;
  const dnnl::memory::desc& to = is_output ? b.tensor_md : b.primitive_md;
  dnnl::reorder::primitive_desc reorder_pd(engine, from, engine, to, PrimitiveAttributes());
  b.reorder = Step{dnnl::reorder(reorder_pd), reorder_pd.scratchpad_desc()};
  return b;
}

StatusOr<BoundPrimitive> BoundPrimitive::Make(const dnnl::primitive_desc& pd,
                                              std::vector<TensorArg> inputs, TensorArg output,
                                              std::string_view what) {
  return dnnl_rt::Build(what, [&] {
    BoundPrimitive bound;
    bound.primitive_ = Step{dnnl::primitive(pd), pd.scratchpad_desc()};
    for (const TensorArg& t : inputs) bound.inputs_.push_back(Bind(pd, t, /*is_output=*/false));
    bound.output_ = Bind(pd, output, /*is_output=*/true);
    return bound;
  });
}

int BoundPrimitive::num_reorders() const {
  int n = output_.reorder ? 1 : 0;
  for (const Binding& b : inputs_) n += b.reorder ? 1 : 0;
  return n;
}

Status BoundPrimitive::RunStep(const Step& step, dnnl_rt::Args args, int threads,
                               std::string_view what) {
  std::optional<ScratchBuffer> scratchpad;
  if (step.scratchpad_md.get_size() > 0) {
    scratchpad.emplace(step.scratchpad_md.get_size());
    args[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(step.scratchpad_md, dnnl_rt::CpuEngine(), scratchpad->data());
  }
  return dnnl_rt::Execute(step.primitive, args, threads, what);
}

Status BoundPrimitive::Run(std::span<const Tensor* const> inputs, Tensor& output,
                           dnnl_rt::Args extra, int threads, std::string_view what) const {
  if (inputs.size() != inputs_.size()) {
    return InternalError(std::string(what) + ": expected " + std::to_string(inputs_.size()) +
                         " inputs, got " + std::to_string(inputs.size()));
  }
  try {
    const dnnl::engine& engine = dnnl_rt::CpuEngine();
    dnnl_rt::Args args = std::move(extra);
    // The reorder buffers, alive until the primitive has run (Execute waits for it).
    std::vector<ScratchBuffer> buffers;
    buffers.reserve(inputs_.size() + 1);
    auto scratch_memory = [&](const dnnl::memory::desc& md) {
      buffers.emplace_back(md.get_size());
      return dnnl::memory(md, engine, buffers.back().data());
    };
    for (size_t k = 0; k < inputs_.size(); ++k) {
      const Binding& b = inputs_[k];
      // oneDNN's handles are not const-qualified; it only reads a primitive's inputs.
      dnnl::memory tensor_mem(b.tensor_md, engine, const_cast<std::byte*>(inputs[k]->raw()));
      if (!b.reorder) {
        args[b.arg] = tensor_mem;
        continue;
      }
      dnnl::memory scratch = scratch_memory(b.primitive_md);
      BF_RETURN_IF_ERROR(RunStep(*b.reorder, {{DNNL_ARG_FROM, tensor_mem}, {DNNL_ARG_TO, scratch}},
                                 threads, what));
      args[b.arg] = scratch;
    }
    dnnl::memory out_mem(output_.tensor_md, engine, output.raw());
    dnnl::memory result = output_.reorder ? scratch_memory(output_.primitive_md) : out_mem;
    args[output_.arg] = result;
    BF_RETURN_IF_ERROR(RunStep(primitive_, std::move(args), threads, what));
    if (!output_.reorder) return Status::Ok();
    return RunStep(*output_.reorder, {{DNNL_ARG_FROM, result}, {DNNL_ARG_TO, out_mem}}, threads,
                   what);
  } catch (const dnnl::error& e) {
    return InternalError(std::string(what) + ": oneDNN: " + e.what());
  }
}

}  // namespace backflow
