#include "engine/gates/matmul_kernel.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace {

using reference::MatMulDims;

// Note [oneDNN matmul layouts]
// - Operands are described, never copied. A transposed operand is the executor's row-major
//   tensor under a descriptor of its logical dimensions with swapped strides: tag ba for a
//   [K, M] array read as [M, K], acb for the batched [B, K, M]. oneDNN's matmul reads these in
//   place, so transposes in the backward cost nothing.
// - Plain tags, not format_tag::any: the executor's tensors are row-major, and a blocked layout
//   chosen by oneDNN would need a reorder on every run, which matmul (unlike convolution) does
//   not repay.
// - linear's bias is a [1, out] descriptor that the primitive broadcasts over the rows: one
//   primitive, no separate add.
// - Scratchpad mode is user. A plan's kernel runs on whichever TBB worker reaches the node, and
//   on several at once for concurrent runs. oneDNN's library-managed scratchpad (Debian builds
//   DNNL_ENABLE_CONCURRENT_EXEC=OFF) is shared per thread and ties a primitive to the thread
//   that created it; with a scratchpad allocated per run, any thread may execute it at any time.
// Offset in matrices of the operand with batch dimensions `dims` (broadcast to `out`) for
// product `index` of `out` (row-major).
int64_t BatchOffset(const std::vector<int64_t>& out, const std::vector<int64_t>& dims,
                    int64_t index) {
  int64_t offset = 0, stride = 1;
  for (size_t i = out.size(); i-- > 0;) {
    const int64_t at = index % out[i];
    index /= out[i];
    if (dims[i] != 1) offset += at * stride;
    stride *= dims[i];
  }
  return offset;
}

// float64 (and degenerate sizes in float32): the reference loops. Inputs a, b[, bias].
template <typename T>
class ReferenceKernel : public Kernel {
 public:
  ReferenceKernel(ProductDims dims, bool bias) : dims_(std::move(dims)), bias_(bias) {}
  Status Run(KernelContext& ctx) const override {
    const T* a = ctx.inputs[0]->data<T>();
    const T* b = ctx.inputs[1]->data<T>();
    T* y = ctx.output->data<T>();
    const MatMulDims& d = dims_.mm;
    if (bias_) {
      reference::Linear(d.m, d.k, d.n, a, b, ctx.inputs[2]->data<T>(), y);
      return Status::Ok();
    }
    if (dims_.a_batch == dims_.out_batch && dims_.b_batch == dims_.out_batch) {
      reference::MatMul(d, a, b, y);
      return Status::Ok();
    }
    MatMulDims one = d;
    one.batch = 1;
    for (int64_t i = 0; i < d.batch; ++i) {
      const T* ai = a + BatchOffset(dims_.out_batch, dims_.a_batch, i) * d.m * d.k;
      const T* bi = b + BatchOffset(dims_.out_batch, dims_.b_batch, i) * d.k * d.n;
      reference::MatMul(one, ai, bi, y + i * d.m * d.n);
    }
    return Status::Ok();
  }

 private:
  ProductDims dims_;
  bool bias_;
};

// A [..., rows, cols] operand with batch dimensions `batch` (1 where it broadcasts), stored
// row-major, or with its last two dimensions swapped if transposed.
dnnl::memory::desc OperandDesc(const std::vector<int64_t>& batch, int64_t rows, int64_t cols,
                               bool transposed) {
  dnnl::memory::dims dims(batch.begin(), batch.end());
  dims.push_back(rows);
  dims.push_back(cols);
  const size_t r = dims.size();
  dnnl::memory::dims strides(r);
  strides[r - 1] = transposed ? rows : 1;
  strides[r - 2] = transposed ? 1 : cols;
  int64_t s = rows * cols;
  for (size_t i = r - 2; i-- > 0;) {
    strides[i] = s;
    s *= dims[i];
  }
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

// float32: one oneDNN matmul primitive for the plan's shapes. Inputs a, b[, bias].
class DnnlMatMulKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  static StatusOr<std::unique_ptr<Kernel>> Create(std::string_view node, const ProductDims& p,
                                                  bool bias);
  // The team of the plan node it was compiled for (Note [Team size per primitive]).
  int cores() const override { return cores_; }
  Status Run(KernelContext& ctx) const override;

 private:
  const int cores_ = dnnl_rt::CompileTeam();
  DnnlMatMulKernel() = default;

  dnnl::matmul primitive_;
  dnnl::memory::desc src_md_, weights_md_, bias_md_, dst_md_, scratchpad_md_;
  bool bias_ = false;
};

StatusOr<std::unique_ptr<Kernel>> DnnlMatMulKernel::Create(std::string_view node,
                                                           const ProductDims& p, bool bias) {
  std::unique_ptr<DnnlMatMulKernel> k(new DnnlMatMulKernel());
  const MatMulDims& d = p.mm;
  k->bias_ = bias;
  k->src_md_ = OperandDesc(p.a_batch, d.m, d.k, d.transpose_a);
  k->weights_md_ = OperandDesc(p.b_batch, d.k, d.n, d.transpose_b);
  k->dst_md_ = OperandDesc(p.out_batch, d.m, d.n, false);
  if (bias) k->bias_md_ = OperandDesc({}, 1, d.n, false);
  BF_ASSIGN_OR_RETURN(
      dnnl::matmul::primitive_desc pd, dnnl_rt::Build("node '" + std::string(node) + "'", [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const dnnl::matmul::desc desc =
            bias ? dnnl::matmul::desc(k->src_md_, k->weights_md_, k->bias_md_, k->dst_md_)
                 : dnnl::matmul::desc(k->src_md_, k->weights_md_, k->dst_md_);
        return dnnl::matmul::primitive_desc(desc, attr, dnnl_rt::CpuEngine());
      }));
  k->scratchpad_md_ = pd.scratchpad_desc();
  k->primitive_ = dnnl::matmul(pd);
  return std::unique_ptr<Kernel>(std::move(k));
}

Status DnnlMatMulKernel::Run(KernelContext& ctx) const {
  const dnnl::engine& engine = dnnl_rt::CpuEngine();
  // oneDNN takes handles as void*; it only reads the source, weights and bias.
  auto bind = [&](const dnnl::memory::desc& md, const Tensor& t) {
    return dnnl::memory(md, engine, const_cast<std::byte*>(t.raw()));
  };
  dnnl_rt::Args args;
  std::optional<ScratchBuffer> scratchpad;  // alive until Execute has waited for the primitive
  try {
    args.emplace(DNNL_ARG_SRC, bind(src_md_, *ctx.inputs[0]));
    args.emplace(DNNL_ARG_WEIGHTS, bind(weights_md_, *ctx.inputs[1]));
    if (bias_) args.emplace(DNNL_ARG_BIAS, bind(bias_md_, *ctx.inputs[2]));
    args.emplace(DNNL_ARG_DST, dnnl::memory(dst_md_, engine, ctx.output->raw()));
    if (scratchpad_md_.get_size() > 0) {
      scratchpad.emplace(scratchpad_md_.get_size());
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad_md_, engine, scratchpad->data()));
    }
  } catch (const dnnl::error& e) {
    return InternalError(std::string("matmul: binding memory: oneDNN: ") + e.what());
  }
  return dnnl_rt::Execute(primitive_, args, ctx.threads, "matmul");
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> CompileProduct(const CompileContext& ctx, ProductDims p,
                                                 bool bias) {
  const MatMulDims& d = p.mm;
  // Empty problems (reachable through constants only) are left to the plain loops, which define
  // K = 0 as zeros (or the bias) without asking what oneDNN makes of zero-sized descriptors.
  const bool empty = d.batch == 0 || d.m == 0 || d.n == 0 || d.k == 0;
  if (ctx.dtype == DType::kFloat32 && !empty) {
    return DnnlMatMulKernel::Create(ctx.node, p, bias);
  }
  return MakeTypedKernel<ReferenceKernel>(ctx.dtype, std::move(p), bias);
}

}  // namespace backflow
