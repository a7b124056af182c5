// layer_norm(x, weight?, bias?): normalisation over the trailing axes of x, as
// torch.nn.functional.layer_norm. The normalised axes are the last k of x: k is the rank of weight
// when weight is given, else the int attribute "normalized_ndim" (default 1). weight and bias come
// together or not at all, each of the shape of those k axes. Per group (one index of the leading
// axes), with n the group's element count, mean m and biased variance v over the group:
//
//   xhat = (x - m) / sigma, sigma = sqrt(v + epsilon)    y = xhat * weight + bias
//   g = dy * weight; means over the group, sums over the leading axes:
//   dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma
//   dL/dweight = sum(dy * xhat)                          dL/dbias = sum(dy)
//
// float32 runs layer_norm and layer_norm_grad_x on oneDNN's layer_normalization primitives (x
// viewed as [rows, features], layer_norm_internal.h); float64, and the weight and bias gradients,
// on reference loops accumulating in double (Note [Float32 sums accumulate in double]). The gradients are the internal gates "layer_norm_grad_x" (x, dy, weight?),
// "layer_norm_grad_weight" (x, dy) and "layer_norm_grad_bias" (x, dy), attributes
// normalized_ndim and epsilon.
#ifndef BACKFLOW_ENGINE_GATES_LAYER_NORM_H_
#define BACKFLOW_ENGINE_GATES_LAYER_NORM_H_

namespace backflow {

class GateRegistry;
void RegisterLayerNormGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_LAYER_NORM_H_
