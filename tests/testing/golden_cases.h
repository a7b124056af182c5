// The worked examples of ../shared/seeds/GOLDEN.md, one table for every test that checks them
// (the engine, Evaluate, the server over the wire, the CLI). The circuits are the graph files
// models/seeds/FILE.pbtxt.
#ifndef BACKFLOW_TESTS_TESTING_GOLDEN_CASES_H_
#define BACKFLOW_TESTS_TESTING_GOLDEN_CASES_H_

#include <cmath>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace backflow::testing {

struct GoldenCase {
  std::string file;  // models/seeds/FILE.pbtxt
  std::map<std::string, double> inputs;  // placeholders; parameters come from their initializers
  std::string loss;  // the graph's loss, which is also its output
  double output;  // the loss's value
  std::map<std::string, double> gradients;  // d(loss)/d(name), placeholders and parameters
};

inline std::ostream& operator<<(std::ostream& os, const GoldenCase& c) { return os << c.file; }

inline const std::vector<GoldenCase>& GoldenCases() {
  static const auto* cases = new std::vector<GoldenCase>{
      {"add_mul", {{"x", -2}, {"y", 5}, {"z", -4}}, "f", -12, {{"x", -4}, {"y", -4}, {"z", 3}}},
      {"routing",
       {{"x", 3}, {"y", -4}, {"z", 2}, {"w", -1}},
       "f",
       -20,
       {{"x", -8}, {"y", 6}, {"z", 2}, {"w", 0}}},
      {"sigmoid_neuron_gates",
       {{"x0", -1}, {"x1", -2}},
       "f",
       0.7310585786,
       {{"w0", -0.1966119332},
        {"w1", -0.3932238665},
        {"w2", 0.1966119332},
        {"x0", 0.3932238665},
        {"x1", -0.5898357997}}},
      {"sigmoid_neuron_fused",
       {{"x0", -1}, {"x1", -2}},
       "f",
       0.7310585786,
       {{"w0", -0.1966119332},
        {"w1", -0.3932238665},
        {"w2", 0.1966119332},
        {"x0", 0.3932238665},
        {"x1", -0.5898357997}}},
      {"staged",
       {{"x", 3}, {"y", -4}},
       "f",
       1.5456448841,
       {{"x", 2.0595697956}, {"y", 1.5922327515}}},
      {"inverse_square", {{"x", 2}}, "y", 0.25, {{"x", -0.25}}},
      {"two_paths", {{"x", 2}}, "y", 0.5, {{"x", -0.25}}},
  };
  return *cases;
}

// |a - e| / |e|, or |a| when the expected value is exactly zero.
inline double RelativeError(double actual, double expected) {
  return expected == 0 ? std::abs(actual) : std::abs(actual - expected) / std::abs(expected);
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_GOLDEN_CASES_H_
