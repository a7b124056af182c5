// The losses over class scores [N, C] with labels [N]: softmax_cross_entropy, svm_hinge and
// accuracy (engine/gates/loss.h).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/gates/loss_internal.h"

namespace backflow::loss_internal {
namespace {

// Scores [N, C] and labels [N].
StatusOr<Shape> ClassRule(const ShapeContext& ctx, const InputDoc (&inputs)[2]) {
  const std::string scores_name(inputs[0].name);
  const std::string labels_name(inputs[1].name);
  const Shape& scores = ctx.inputs[0];
  const Shape& labels = ctx.inputs[1];
  if (scores.rank() != 2) {
    return ctx.Error(scores_name + " must be [N, C], got " + scores.ToString());
  }
  if (scores.dim(1) < 1) {
    return ctx.Error("the class dimension of " + scores_name +
                     " must be known and at least 1, got " + scores.ToString());
  }
  if (labels.rank() != 1 || !ShapesMatch(labels, Shape{scores.dim(0)})) {
    return ctx.Error(labels_name + " must be " + Shape{scores.dim(0)}.ToString() + " to match " +
                     scores_name + " " + scores.ToString() + ", got " + labels.ToString());
  }
  return Shape{};
}

// The labels as class ids: int32 and int64 labels as they are, float labels (of the plan's
// dtype T) only where integral. Every id must be in [0, classes); NaN fails every comparison.
template <typename T>
StatusOr<std::vector<int64_t>> ClassIds(const Tensor& labels, int64_t classes) {
  std::vector<int64_t> ids(static_cast<size_t>(labels.num_elements()));
  const auto bad = [&](const std::string& label, int64_t i) {
    return InvalidArgumentError("label " + label + " at index " + std::to_string(i) +
                                " is not a class id in [0, " + std::to_string(classes) + ")");
  };
  for (int64_t i = 0; i < labels.num_elements(); ++i) {
    if (IsInteger(labels.dtype())) {
      const int64_t id = labels.id(i);
      if (id < 0 || id >= classes) return bad(std::to_string(id), i);
      ids[static_cast<size_t>(i)] = id;
      continue;
    }
    const T l = labels.data<T>()[i];
    if (!(l >= T(0) && l < static_cast<T>(classes) && l == std::floor(l))) return bad(Format(l), i);
    ids[static_cast<size_t>(i)] = static_cast<int64_t>(l);
  }
  return ids;
}

// log sum_j e^(x_j - m) over one row, m = max_j x_j (returned in *m): every exponent is <= 0,
// so nothing overflows, and the largest term is 1, so the sum cannot underflow to 0.
template <typename T>
T ShiftedLogSumExp(const T* x, int64_t c, T* m) {
  *m = *std::max_element(x, x + c);
  T sum = 0;
  for (int64_t j = 0; j < c; ++j) sum += std::exp(x[j] - *m);
  return std::log(sum);
}

constexpr InputDoc kLabels = {
    "labels", "y, [N]: class ids in [0, C), int32, int64 or integral floats; no gradient"};

struct SoftmaxCrossEntropyOp {
  static constexpr const char* kName = "softmax_cross_entropy";
  static constexpr OpText kDoc = {
      "Mean cross-entropy of softmax(logits) against class labels.",
      "L = 1/N sum_i -log softmax(x_i)[y_i]\n"
      "  = 1/N sum_i (log sum_j e^(x_ij - m_i)) - (x_iy_i - m_i),   m_i = max_j x_ij",
      "dL/dx_ij = (p_ij - 1(j = y_i)) / N,   p = softmax(x)"};
  static constexpr InputDoc kInputs[2] = {{"logits", "x, [N, C]; N may be open"}, kLabels};
  static constexpr bool kGrad[2] = {true, false};
  static constexpr bool kDifferentiable = true;
  static constexpr bool kClassIds = true;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& labels, const LossParams&, T* loss) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ClassIds<T>(labels, c));
    const int64_t* l = ids.data();
    Accumulator total = 0;  // Note [Float32 sums accumulate in double]
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      T m;
      const T lse = ShiftedLogSumExp(row, c, &m);
      total += lse - (row[static_cast<int64_t>(l[i])] - m);
    }
    *loss = static_cast<T>(total / Divisor<Accumulator>(n));
    return Status::Ok();
  }
  // The softmax is recomputed here rather than saved by the forward: it costs one exp per
  // logit, and keeps both kernels free of per-run state.
  template <typename T>
  static Status Grad(const Tensor& x, const Tensor& labels, T dy, int, const LossParams&, T* out) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ClassIds<T>(labels, c));
    const int64_t* l = ids.data();
    const T scale = dy / Divisor<T>(n);
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      T m;
      const T lse = ShiftedLogSumExp(row, c, &m);
      const int64_t label = static_cast<int64_t>(l[i]);
      for (int64_t j = 0; j < c; ++j) {
        const T p = std::exp(row[j] - m - lse);
        out[i * c + j] = scale * (j == label ? p - T(1) : p);
      }
    }
    return Status::Ok();
  }
};

struct SvmHingeOp {
  static constexpr const char* kName = "svm_hinge";
  static constexpr OpText kDoc = {
      "Multiclass SVM (hinge) loss, averaged over the batch.",
      "L = 1/N sum_i sum_{j != y_i} max(0, s_ij - s_iy_i + margin)",
      "dL/ds_ij = 1(s_ij - s_iy_i + margin > 0) / N   for j != y_i\n"
      "dL/ds_iy_i = -(the number of such j) / N\n"
      "(at a kink, s_ij - s_iy_i + margin = 0, the subgradient 0 is taken)"};
  static constexpr InputDoc kInputs[2] = {{"scores", "s, [N, C]; N may be open"}, kLabels};
  static constexpr bool kGrad[2] = {true, false};
  static constexpr bool kDifferentiable = true;
  static constexpr bool kClassIds = true;
  static std::vector<AttrSpec> Specs() {
    return {{.name = "margin",
             .type = AttrType::kFloat,
             .default_value = "1",
             .description = "how far the label's score must lead every other score, finite"}};
  }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& s, const Tensor& labels, const LossParams& p, T* loss) {
    const int64_t n = s.shape().dim(0), c = s.shape().dim(1);
    BF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ClassIds<T>(labels, c));
    const int64_t* l = ids.data();
    const T margin = static_cast<T>(p.margin);
    Accumulator total = 0;  // Note [Float32 sums accumulate in double]
    for (int64_t i = 0; i < n; ++i) {
      const T* row = s.data<T>() + i * c;
      const int64_t label = static_cast<int64_t>(l[i]);
      for (int64_t j = 0; j < c; ++j) {
        if (j != label) total += std::max(T(0), row[j] - row[label] + margin);
      }
    }
    *loss = static_cast<T>(total / Divisor<Accumulator>(n));
    return Status::Ok();
  }
  // At a kink (s_j - s_y + margin exactly 0) the subgradient 0 is taken, as max(0, .) is flat
  // from the left.
  template <typename T>
  static Status Grad(const Tensor& s, const Tensor& labels, T dy, int, const LossParams& p,
                     T* out) {
    const int64_t n = s.shape().dim(0), c = s.shape().dim(1);
    BF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ClassIds<T>(labels, c));
    const int64_t* l = ids.data();
    const T margin = static_cast<T>(p.margin);
    const T scale = dy / Divisor<T>(n);
    for (int64_t i = 0; i < n; ++i) {
      const T* row = s.data<T>() + i * c;
      const int64_t label = static_cast<int64_t>(l[i]);
      int64_t active = 0;
      for (int64_t j = 0; j < c; ++j) {
        const bool on = j != label && row[j] - row[label] + margin > T(0);
        out[i * c + j] = on ? scale : T(0);
        active += on ? 1 : 0;
      }
      out[i * c + label] = -static_cast<T>(active) * scale;
    }
    return Status::Ok();
  }
};

struct AccuracyOp {
  static constexpr const char* kName = "accuracy";
  static constexpr OpText kDoc = {
      "Fraction of rows whose highest logit is at the label (a metric: no gradient).",
      "L = 1/N sum_i 1(argmax_j x_ij = y_i)   (ties: the lowest class id wins)", "none"};
  static constexpr InputDoc kInputs[2] = {{"logits", "x, [N, C]; N may be open"}, kLabels};
  static constexpr bool kGrad[2] = {false, false};
  static constexpr bool kDifferentiable = false;
  static constexpr bool kClassIds = true;
  static std::vector<AttrSpec> Specs() { return {}; }
  static StatusOr<Shape> Rule(const ShapeContext& ctx) { return ClassRule(ctx, kInputs); }

  template <typename T>
  static Status Forward(const Tensor& x, const Tensor& labels, const LossParams&, T* loss) {
    const int64_t n = x.shape().dim(0), c = x.shape().dim(1);
    BF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ClassIds<T>(labels, c));
    const int64_t* l = ids.data();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x.data<T>() + i * c;
      // max_element returns the first of equal maxima: ties go to the lowest class id.
      const int64_t argmax = std::max_element(row, row + c) - row;
      correct += argmax == static_cast<int64_t>(l[i]) ? 1 : 0;
    }
    *loss = static_cast<T>(correct) / Divisor<T>(n);
    return Status::Ok();
  }
};

}  // namespace

void RegisterClassLosses(GateRegistry& registry) {
  RegisterLoss<SoftmaxCrossEntropyOp>(registry);
  RegisterLoss<SvmHingeOp>(registry);
  RegisterLoss<AccuracyOp>(registry);
}

}  // namespace backflow::loss_internal
