#ifndef BACKFLOW_ENGINE_GATES_REDUCE_H_
#define BACKFLOW_ENGINE_GATES_REDUCE_H_

namespace backflow {

class GateRegistry;

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_REDUCE_H_
