#include "engine/gates/matmul.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/saturating.h"
#include "engine/gates/reference/dense.h"
#include "engine/ir/gate_registry.h"
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

// Reads a 0/1 flag attribute.
StatusOr<bool> ReadFlag(const ShapeContext& ctx, std::string_view name) {
  const int64_t value = ctx.attrs.GetInt(name, 0);
  if (value != 0 && value != 1) {
    return ctx.Error(std::string(name) + " must be 0 or 1, got " + std::to_string(value));
  }
  return value == 1;
}

// "[N, 784] x [785, 256]", with the transposes named when set.
std::string Operands(const Shape& a, const Shape& b, bool ta, bool tb) {
  std::string s = a.ToString() + " x " + b.ToString();
  if (ta && tb) return s + " (both transposed)";
  if (ta || tb) return s + (ta ? " (a transposed)" : " (b transposed)");
  return s;
}

StatusOr<Shape> MatMulRule(const ShapeContext& ctx) {
  BF_ASSIGN_OR_RETURN(const bool ta, ReadFlag(ctx, "transpose_a"));
  BF_ASSIGN_OR_RETURN(const bool tb, ReadFlag(ctx, "transpose_b"));
  const Shape& a = ctx.inputs[0];
  const Shape& b = ctx.inputs[1];
  const int r = a.rank();
  if ((r != 2 && r != 3) || b.rank() != r) {
    return ctx.Error("matmul takes two 2-D or two 3-D operands, got " + Operands(a, b, ta, tb));
  }
  const int64_t m = a.dim(ta ? r - 1 : r - 2);
  const int64_t ka = a.dim(ta ? r - 2 : r - 1);
  const int64_t kb = b.dim(tb ? r - 1 : r - 2);
  const int64_t n = b.dim(tb ? r - 2 : r - 1);
  if (ka != kb) return ctx.Error("inner dimensions differ: " + Operands(a, b, ta, tb));
  if (r == 3 && a.dim(0) != b.dim(0)) {
    return ctx.Error("batch dimensions differ: " + Operands(a, b, ta, tb));
  }
  return r == 3 ? Shape{a.dim(0), m, n} : Shape{m, n};
}

StatusOr<Shape> LinearRule(const ShapeContext& ctx) {
  const Shape& x = ctx.inputs[0];
  const Shape& w = ctx.inputs[1];
  if (x.rank() != 2 || w.rank() != 2) {
    return ctx.Error("linear takes x [rows, in] and w [in, out], got " + Operands(x, w, 0, 0));
  }
  if (x.dim(1) != w.dim(0)) return ctx.Error("inner dimensions differ: " + Operands(x, w, 0, 0));
  if (ctx.inputs.size() == 3 && ctx.inputs[2] != Shape{w.dim(1)}) {
    return ctx.Error("bias has shape " + ctx.inputs[2].ToString() + ", expected " +
                     Shape{w.dim(1)}.ToString() + " for w " + w.ToString());
  }
  return Shape{x.dim(0), w.dim(1)};
}

// The sizes of a matmul node with concrete shapes (its shape rule has passed on them).
MatMulDims MatMulDimsOf(const CompileContext& ctx) {
  const Shape& a = ctx.inputs[0];
  const int r = a.rank();
  MatMulDims d;
  d.transpose_a = ctx.attrs.GetInt("transpose_a", 0) == 1;
  d.transpose_b = ctx.attrs.GetInt("transpose_b", 0) == 1;
  d.batch = r == 3 ? a.dim(0) : 1;
  d.m = ctx.output.dim(r - 2);
  d.n = ctx.output.dim(r - 1);
  d.k = a.dim(d.transpose_a ? r - 2 : r - 1);
  return d;
}

// float64 (and degenerate sizes in float32): the reference loops. Inputs a, b[, bias].
template <typename T>
class ReferenceKernel : public Kernel {
 public:
  ReferenceKernel(MatMulDims dims, bool bias) : dims_(dims), bias_(bias) {}
  Status Run(KernelContext& ctx) const override {
    const T* a = ctx.inputs[0]->data<T>();
    const T* b = ctx.inputs[1]->data<T>();
    T* y = ctx.output->data<T>();
    if (bias_) {
      reference::Linear(dims_.m, dims_.k, dims_.n, a, b, ctx.inputs[2]->data<T>(), y);
    } else {
      reference::MatMul(dims_, a, b, y);
    }
    return Status::Ok();
  }

 private:
  MatMulDims dims_;
  bool bias_;
};

// A [rows, cols] operand (or [batch, rows, cols] when rank is 3), stored transposed if asked.
dnnl::memory::desc OperandDesc(int rank, int64_t batch, int64_t rows, int64_t cols,
                               bool transposed) {
  using tag = dnnl::memory::format_tag;
  const auto f32 = dnnl::memory::data_type::f32;
  if (rank == 2) return dnnl::memory::desc({rows, cols}, f32, transposed ? tag::ba : tag::ab);
  return dnnl::memory::desc({batch, rows, cols}, f32, transposed ? tag::acb : tag::abc);
}

// float32: one oneDNN matmul primitive for the plan's shapes. Inputs a, b[, bias].
class DnnlMatMulKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  static StatusOr<std::unique_ptr<Kernel>> Create(std::string_view node, int rank,
                                                  const MatMulDims& d, bool bias);
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

StatusOr<std::unique_ptr<Kernel>> DnnlMatMulKernel::Create(std::string_view node, int rank,
                                                           const MatMulDims& d, bool bias) {
  std::unique_ptr<DnnlMatMulKernel> k(new DnnlMatMulKernel());
  k->bias_ = bias;
  k->src_md_ = OperandDesc(rank, d.batch, d.m, d.k, d.transpose_a);
  k->weights_md_ = OperandDesc(rank, d.batch, d.k, d.n, d.transpose_b);
  k->dst_md_ = OperandDesc(rank, d.batch, d.m, d.n, false);
  if (bias) k->bias_md_ = OperandDesc(2, 1, 1, d.n, false);
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

StatusOr<std::unique_ptr<Kernel>> CompileProduct(const CompileContext& ctx, int rank,
                                                 const MatMulDims& d, bool bias) {
  // Empty problems (reachable through constants only) are left to the plain loops, which define
  // K = 0 as zeros (or the bias) without asking what oneDNN makes of zero-sized descriptors.
  const bool empty = d.batch == 0 || d.m == 0 || d.n == 0 || d.k == 0;
  if (ctx.dtype == DType::kFloat32 && !empty) {
    return DnnlMatMulKernel::Create(ctx.node, rank, d, bias);
  }
  return MakeTypedKernel<ReferenceKernel>(ctx.dtype, d, bias);
}

AttrSpec TransposeSpec(std::string_view name, std::string_view description) {
  return {.name = name, .type = AttrType::kInt, .default_value = "0", .description = description};
}

class MatMulGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {TransposeSpec("transpose_a", "1: op(a) is a with its last two dimensions swapped"),
            TransposeSpec("transpose_b", "1: op(b) is b with its last two dimensions swapped")};
  }
  OpDoc doc() const override {
    return {
        .summary = "Matrix product, or a batch of them (one per leading index).",
        .inputs = {{"a", "op(a) is [M, K], or [B, M, K]"}, {"b", "op(b) is [K, N], or [B, K, N]"}},
        .output = "[M, N], or [B, M, N]",
        .forward = "y = op(a) op(b)",
        .gradient =
            "dL/da = dy op(b)^T   (transpose_a = 0)\n"
            "dL/da = op(b) dy^T   (transpose_a = 1)\n"
            "dL/db = op(a)^T dy   (transpose_b = 0)\n"
            "dL/db = dy^T op(a)   (transpose_b = 1)"};
  }
  bool compute_bound() const override { return true; }
  // 2 * out * K, K being a's last dimension (its next-to-last when transposed).
  int64_t Flops(const FlopsContext& ctx) const override {
    const Shape& a = ctx.inputs[0];
    const int64_t out = FlopsContext::Elements(ctx.output);
    if (a.rank() < 2) return out;
    const bool transpose_a = ctx.attrs.GetInt("transpose_a", 0) == 1;
    return SaturatingMul(2, SaturatingMul(out, a.dim(transpose_a ? a.rank() - 2 : a.rank() - 1)));
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return MatMulRule(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return CompileProduct(ctx, ctx.inputs[0].rank(), MatMulDimsOf(ctx), /*bias=*/false);
  }
  Status Backward(BackwardContext& ctx) const override;
};

Attributes Transposes(bool ta, bool tb) {
  return Attributes{{"transpose_a", int64_t{ta ? 1 : 0}}, {"transpose_b", int64_t{tb ? 1 : 0}}};
}

// The table in matmul.h: each gradient is one matmul of dy with the other operand, transposed
// so that the product comes out in the stored (not the logical) layout of the input.
Status MatMulGate::Backward(BackwardContext& ctx) const {
  const bool ta = ctx.node().attrs.GetInt("transpose_a", 0) == 1;
  const bool tb = ctx.node().attrs.GetInt("transpose_b", 0) == 1;
  const ValueId a = ctx.input(0);
  const ValueId b = ctx.input(1);
  const ValueId dy = ctx.output_grad();
  if (ctx.needs_grad(0)) {
    BF_ASSIGN_OR_RETURN(ValueId da, ta ? ctx.Emit("matmul", {b, dy}, Transposes(tb, true))
                                       : ctx.Emit("matmul", {dy, b}, Transposes(false, !tb)));
    ctx.SetGrad(0, da);
  }
  if (ctx.needs_grad(1)) {
    BF_ASSIGN_OR_RETURN(ValueId db, tb ? ctx.Emit("matmul", {dy, a}, Transposes(true, ta))
                                       : ctx.Emit("matmul", {a, dy}, Transposes(!ta, false)));
    ctx.SetGrad(1, db);
  }
  return Status::Ok();
}

class LinearGate : public Gate {
 public:
  Arity arity() const override { return {2, 3}; }
  OpDoc doc() const override {
    return {
        .summary = "Fully connected layer: x times w, plus a bias per output.",
        .inputs = {{"x", "[rows, in]; rows may be the open N"}, {"w", "[in, out]"}, {"b", "[out]"}},
        .output = "[rows, out]",
        .forward = "y = x w + b   (b added to every row)",
        .gradient = "dL/dx = dy w^T\ndL/dw = x^T dy\ndL/db = dy summed over rows"};
  }
  bool compute_bound() const override { return true; }
  // 2 * out * in, plus out for the bias (x is [rows, in]).
  int64_t Flops(const FlopsContext& ctx) const override {
    const Shape& x = ctx.inputs[0];
    const int64_t out = FlopsContext::Elements(ctx.output);
    const int64_t in = x.rank() > 0 ? x.dim(x.rank() - 1) : 1;
    const int64_t bias = ctx.inputs.size() > 2 ? out : 0;
    return SaturatingAdd(SaturatingMul(2, SaturatingMul(out, in)), bias);
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return LinearRule(ctx); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    const MatMulDims d{.batch = 1,
                       .m = ctx.inputs[0].dim(0),
                       .k = ctx.inputs[0].dim(1),
                       .n = ctx.inputs[1].dim(1)};
    return CompileProduct(ctx, 2, d, /*bias=*/ctx.inputs.size() == 3);
  }
  Status Backward(BackwardContext& ctx) const override {
    const ValueId dy = ctx.output_grad();
    if (ctx.needs_grad(0)) {
      BF_ASSIGN_OR_RETURN(ValueId dx,
                          ctx.Emit("matmul", {dy, ctx.input(1)}, Transposes(false, true)));
      ctx.SetGrad(0, dx);
    }
    if (ctx.needs_grad(1)) {
      BF_ASSIGN_OR_RETURN(ValueId dw,
                          ctx.Emit("matmul", {ctx.input(0), dy}, Transposes(true, false)));
      ctx.SetGrad(1, dw);
    }
    if (ctx.node().inputs.size() == 3 && ctx.needs_grad(2)) {
      BF_ASSIGN_OR_RETURN(ValueId db,
                          ctx.Emit("sum", {dy}, Attributes{{"axes", std::vector<int64_t>{0}}}));
      ctx.SetGrad(2, db);
    }
    return Status::Ok();
  }
};

}  // namespace

void RegisterMatMulGates(GateRegistry& registry) {
  (void)registry.Register("matmul", std::make_unique<MatMulGate>());
  (void)registry.Register("linear", std::make_unique<LinearGate>());
}

}  // namespace backflow
