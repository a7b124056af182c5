// How far computed values are from those they should equal, as one number per tensor: the
// data-parallel tests compare a job's parameters and gradients with one process's this way.
#ifndef BACKFLOW_TESTS_TESTING_RELATIVE_DIFFERENCE_H_
#define BACKFLOW_TESTS_TESTING_RELATIVE_DIFFERENCE_H_

#include <cmath>
#include <cstddef>
#include <vector>

namespace backflow::testing {

// ||a - b|| / ||b|| in the L2 norm over the elements (||a - b|| when b is all zeros). Element by
// element, float32 rounding moves a tensor's smallest elements by more: Adam's update of an
// element whose gradient is near 0 is about the gradient's sign.
inline double RelativeL2Difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  if (a.size() != b.size()) return INFINITY;
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_RELATIVE_DIFFERENCE_H_
