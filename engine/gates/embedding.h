// embedding: rows of a float table gathered by integer ids. dy is dL/dy.
//
//   embedding   inputs weight [num, dim] (float), ids (int32 or int64, any shape S)
//               y[s, :] = weight[ids[s], :]                    y: S + [dim]
//               dL/dweight[r, :] = sum over s with ids[s] = r of dy[s, :]   (internal gate
//               embedding_grad; repeated ids sum); ids have no gradient.
//
// Attributes: padding_idx (int, optional): rows gathered for this id still come out of the
// table, but get no gradient (PyTorch's nn.Embedding padding_idx). It must be in [-num, num);
// a negative value counts back from num.
//
// An id outside [0, num) fails the run with InvalidArgument naming the node ("id 7 at index 2
// is not a row of weight [5, 3]").
//
// embedding_grad (internal; inputs ids, dy, weight; attribute padding_idx as normalised) writes
// the zero-filled [num, dim] gradient and adds dy's rows into it in order, so results are
// reproducible. weight is an input only for its shape.
#ifndef BACKFLOW_ENGINE_GATES_EMBEDDING_H_
#define BACKFLOW_ENGINE_GATES_EMBEDDING_H_

namespace backflow {

class GateRegistry;
void RegisterEmbeddingGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_EMBEDDING_H_
