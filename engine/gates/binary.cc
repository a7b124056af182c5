#include "engine/gates/binary.h"

#include <cmath>
#include <string_view>

#include "engine/gates/broadcast.h"
#include "engine/gates/gradient_ops.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

// An op's entry in the op reference (docs/ops.md): the table in binary.h, one op at a time.
struct OpText {
  std::string_view summary;
  std::string_view forward;
  std::string_view gradient;
};

// Each op: the forward function and the local derivatives with respect to a and b, given the
// forward output y. kSignB is set for ops whose dL/da = dy and dL/db = kSignB * dy, whose
// backward then needs no gradient kernel at all.
struct AddOp {
  static constexpr const char* kName = "add";
  static constexpr int kSignB = 1;
  static constexpr OpText kDoc = {"Elementwise sum, with NumPy broadcasting.", "y = a + b",
                                  "dL/da = dy\ndL/db = dy"};
  template <typename T> static T Fwd(T a, T b) { return a + b; }
  template <typename T> static T Da(T, T, T) { return 1; }
  template <typename T> static T Db(T, T, T) { return 1; }
};
struct SubOp {
  static constexpr const char* kName = "sub";
  static constexpr int kSignB = -1;
  static constexpr OpText kDoc = {"Elementwise difference, with NumPy broadcasting.", "y = a - b",
                                  "dL/da = dy\ndL/db = -dy"};
  template <typename T> static T Fwd(T a, T b) { return a - b; }
  template <typename T> static T Da(T, T, T) { return 1; }
  template <typename T> static T Db(T, T, T) { return -1; }
};
struct MulOp {
  static constexpr const char* kName = "mul";
  static constexpr int kSignB = 0;
  static constexpr OpText kDoc = {"Elementwise product, with NumPy broadcasting.", "y = a * b",
                                  "dL/da = dy * b\ndL/db = dy * a"};
  template <typename T> static T Fwd(T a, T b) { return a * b; }
  template <typename T> static T Da(T, T b, T) { return b; }
  template <typename T> static T Db(T a, T, T) { return a; }
};
struct DivOp {
  static constexpr const char* kName = "div";
  static constexpr int kSignB = 0;
  static constexpr OpText kDoc = {"Elementwise quotient, with NumPy broadcasting.", "y = a / b",
                                  "dL/da = dy / b\ndL/db = -dy * a / b^2"};
  template <typename T> static T Fwd(T a, T b) { return a / b; }
  template <typename T> static T Da(T, T b, T) { return T(1) / b; }
  template <typename T> static T Db(T, T b, T y) { return -y / b; }
};
struct MaxOp {
  static constexpr const char* kName = "max";
  static constexpr int kSignB = 0;
  static constexpr OpText kDoc = {"Elementwise maximum, with NumPy broadcasting.", "y = max(a, b)",
                                  "dL/da = dy * 1(a >= b)\ndL/db = dy * 1(b > a)\n"
                                  "(a tie sends the whole gradient to a)"};
  template <typename T> static T Fwd(T a, T b) { return a >= b ? a : b; }
  template <typename T> static T Da(T a, T b, T) { return a >= b ? T(1) : T(0); }
  template <typename T> static T Db(T a, T b, T) { return b > a ? T(1) : T(0); }
};
struct MinOp {
  static constexpr const char* kName = "min";
  static constexpr int kSignB = 0;
  static constexpr OpText kDoc = {"Elementwise minimum, with NumPy broadcasting.", "y = min(a, b)",
                                  "dL/da = dy * 1(a <= b)\ndL/db = dy * 1(b < a)\n"
                                  "(a tie sends the whole gradient to a)"};
  template <typename T> static T Fwd(T a, T b) { return a <= b ? a : b; }
  template <typename T> static T Da(T a, T b, T) { return a <= b ? T(1) : T(0); }
  template <typename T> static T Db(T a, T b, T) { return b < a ? T(1) : T(0); }
};
struct PowOp {
  static constexpr const char* kName = "pow";
  static constexpr int kSignB = 0;
  static constexpr OpText kDoc = {"Elementwise power a^b, with NumPy broadcasting.", "y = a ^ b",
                                  "dL/da = dy * b * a^(b - 1)\n"
                                  "dL/db = dy * ln(a) * y   where a > 0, else 0"};
  template <typename T> static T Fwd(T a, T b) { return std::pow(a, b); }
  template <typename T> static T Da(T a, T b, T) { return b * std::pow(a, b - T(1)); }
  template <typename T> static T Db(T a, T, T y) { return a > T(0) ? std::log(a) * y : T(0); }
};

StatusOr<Shape> BroadcastRule(const ShapeContext& ctx) {
  Shape out;
  if (!BroadcastShapes(ctx.inputs[0], ctx.inputs[1], &out)) {
    return ctx.Error("shapes " + ctx.inputs[0].ToString() + " and " + ctx.inputs[1].ToString() +
                     " do not broadcast");
  }
  return out;
}

template <typename Op>
struct ForwardKernel {
  template <typename T>
  class K : public Kernel {
   public:
    bool overwrites_output() const override { return true; }
    Status Run(KernelContext& ctx) const override {
      const Tensor& a = *ctx.inputs[0];
      const Tensor& b = *ctx.inputs[1];
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* py = ctx.output->data<T>();
      ForEachBroadcast(ctx.output->shape(), a.shape(), b.shape(),
                       [&](int64_t i, int64_t ia, int64_t ib) { py[i] = Op::Fwd(pa[ia], pb[ib]); });
      return Status::Ok();
    }
  };
};

// dy * d(op)/d(input wrt), at the output's (broadcast) shape. Inputs: a, b, y, dy.
template <typename Op>
struct GradKernel {
  template <typename T>
  class K : public Kernel {
   public:
    bool overwrites_output() const override { return true; }
    explicit K(int wrt) : wrt_(wrt) {}
    Status Run(KernelContext& ctx) const override {
      const Tensor& a = *ctx.inputs[0];
      const Tensor& b = *ctx.inputs[1];
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      const T* py = ctx.inputs[2]->data<T>();
      const T* pdy = ctx.inputs[3]->data<T>();
      T* out = ctx.output->data<T>();
      if (wrt_ == 0) {
        ForEachBroadcast(ctx.output->shape(), a.shape(), b.shape(),
                         [&](int64_t i, int64_t ia, int64_t ib) {
                           out[i] = pdy[i] * Op::Da(pa[ia], pb[ib], py[i]);
                         });
      } else {
        ForEachBroadcast(ctx.output->shape(), a.shape(), b.shape(),
                         [&](int64_t i, int64_t ia, int64_t ib) {
                           out[i] = pdy[i] * Op::Db(pa[ia], pb[ib], py[i]);
                         });
      }
      return Status::Ok();
    }

   private:
    int wrt_;
  };
};

// Internal: "<op>_grad" with attribute wrt (0: a, 1: b); inputs a, b, y, dy.
template <typename Op>
class BinaryGradGate : public Gate {
 public:
  Arity arity() const override { return {4, 4}; }
  std::vector<AttrSpec> attr_specs() const override { return {{"wrt", AttrType::kInt, true}}; }
  bool internal() const override { return true; }
  bool differentiable() const override { return false; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    return ctx.inputs[2];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<GradKernel<Op>::template K>(ctx.dtype,
                                                      static_cast<int>(ctx.attrs.GetInt("wrt", 0)));
  }
};

// The inputs and output every binary op shares.
template <typename Op>
OpDoc BinaryDoc() {
  return {.summary = Op::kDoc.summary,
          .inputs = {{"a",
                      "any shape that broadcasts with b (NumPy rules); where a was broadcast, "
                      "dL/da is summed back to a's shape"},
                     {"b", "any shape that broadcasts with a; likewise for dL/db"}},
          .output = "the broadcast shape of a and b",
          .forward = Op::kDoc.forward,
          .gradient = Op::kDoc.gradient};
}

template <typename Op>
class BinaryGate : public Gate {
 public:
  Arity arity() const override { return {2, 2}; }
  OpDoc doc() const override { return BinaryDoc<Op>(); }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return BroadcastRule(ctx); }
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<ForwardKernel<Op>::template K>(ctx.dtype);
  }
  Status Backward(BackwardContext& ctx) const override {
    for (int i = 0; i < 2; ++i) {
      if (!ctx.needs_grad(i)) continue;
      ValueId grad;
      if (Op::kSignB != 0 && (i == 0 || Op::kSignB > 0)) {
        grad = ctx.output_grad();
      } else if (Op::kSignB != 0) {
        BF_ASSIGN_OR_RETURN(grad, ctx.Emit("neg", {ctx.output_grad()}));
      } else {
        BF_ASSIGN_OR_RETURN(grad, ctx.Emit(std::string(Op::kName) + "_grad",
                                           {ctx.input(0), ctx.input(1), ctx.output(),
                                            ctx.output_grad()},
                                           Attributes{{"wrt", int64_t{i}}}));
      }
      BF_ASSIGN_OR_RETURN(grad, SumToShapeOf(ctx, grad, ctx.input(i)));
      ctx.SetGrad(i, grad);
    }
    return Status::Ok();
  }
};

template <typename Op>
void RegisterBinary(GateRegistry& registry) {
  (void)registry.Register(Op::kName, std::make_unique<BinaryGate<Op>>());
  if (Op::kSignB == 0) {
    (void)registry.Register(std::string(Op::kName) + "_grad",
                            std::make_unique<BinaryGradGate<Op>>());
  }
}

}  // namespace

void RegisterBinaryGates(GateRegistry& registry) {
  RegisterBinary<AddOp>(registry);
  RegisterBinary<SubOp>(registry);
  RegisterBinary<MulOp>(registry);
  RegisterBinary<DivOp>(registry);
  RegisterBinary<MaxOp>(registry);
  RegisterBinary<MinOp>(registry);
  RegisterBinary<PowOp>(registry);
}

}  // namespace backflow
