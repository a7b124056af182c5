// Reading the PyTorch fixtures the generate.py scripts write (tests/engine/parity/ and
// tests/engine/onnx/), and comparing the engine's tensors with torch's: shared by parity_test.cc
// and onnx_parity_test.cc.
//
// A fixture tensor is {"dtype": "float64" | "int64", "shape": [...], "values": [row-major]}.
//
// Tolerance: element b of torch's tensor and a of ours agree when
//   |a - b| <= rtol * max(|b|, floor * scale),
// scale being the largest magnitude in the tensor's group (all gradients, all parameters after
// the steps, all running statistics after them; a loss or an output is its own group). Each test
// explains its rtol and floor.
#ifndef BACKFLOW_TESTS_ENGINE_PARITY_TORCH_FIXTURE_H_
#define BACKFLOW_TESTS_ENGINE_PARITY_TORCH_FIXTURE_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <ostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/api/trainer.h"

namespace backflow::torch_fixture {

using nlohmann::json;

// The whole file (binary-safe); empty, with a test failure, when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline json LoadJson(const std::string& path) { return json::parse(ReadFile(path)); }

// A fixture tensor in `dtype` (integer tensors keep int64).
inline Tensor ToTensor(const json& t, DType dtype) {
  const std::vector<int64_t> dims = t["shape"].get<std::vector<int64_t>>();
  const std::vector<double> values = t["values"].get<std::vector<double>>();
  const DType type = t["dtype"] == "int64" ? DType::kInt64 : dtype;
  return Tensor::FromValues(type, Shape(dims), values);
}

inline ParameterMap ToMap(const json& tensors, DType dtype) {
  ParameterMap map;
  for (const auto& [name, t] : tensors.items()) map.emplace(name, ToTensor(t, dtype));
  return map;
}

inline OptimizerConfig ToOptimizer(const json& o) {
  OptimizerConfig config;
  config.kind = o["kind"] == "adam" ? OptimizerConfig::Kind::kAdam : OptimizerConfig::Kind::kSgd;
  config.learning_rate = o["learning_rate"];
  config.momentum = o["momentum"];
  config.weight_decay = o["weight_decay"];
  config.beta1 = o["beta1"];
  config.beta2 = o["beta2"];
  config.epsilon = o["epsilon"];
  return config;
}

inline FeedMap Feeds(const ParameterMap& inputs) {
  FeedMap feeds;
  for (const auto& [name, t] : inputs) feeds[name] = &t;
  return feeds;
}

struct Tolerance {
  double rtol;
  double floor;  // a fraction of the group's largest magnitude
};

inline double MaxAbs(const json& t) {
  double m = 0.0;
  for (double v : t["values"].get<std::vector<double>>()) m = std::max(m, std::abs(v));
  return m;
}

// The worst |a - b| / bound over the tensor (<= 1 passes), checked element by element; `scale`
// is the largest magnitude of the group the tensor belongs to (see the top of the file).
inline double ExpectClose(const std::string& what, const Tensor& actual, const json& expected,
                          Tolerance tol, double scale) {
  const double rtol = tol.rtol, floor = tol.floor;
  const std::vector<double> b = expected["values"].get<std::vector<double>>();
  EXPECT_EQ(actual.shape(), Shape(expected["shape"].get<std::vector<int64_t>>())) << what;
  if (actual.num_elements() != static_cast<int64_t>(b.size())) return INFINITY;
  double worst = 0.0;
  int failures = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double a = actual.at(static_cast<int64_t>(i));
    const double bound = rtol * std::max(std::abs(b[i]), floor * scale);
    const double ratio = bound > 0 ? std::abs(a - b[i]) / bound : (a == b[i] ? 0.0 : INFINITY);
    worst = std::max(worst, ratio);
    if (!(ratio <= 1.0) && ++failures <= 3) {
      ADD_FAILURE() << what << "[" << i << "]: " << a << " vs torch " << b[i] << " (" << ratio
                    << " x the bound " << bound << ")";
    }
  }
  return worst;
}

inline double ExpectCloseScalar(const std::string& what, double actual, double expected,
                                Tolerance tol) {
  return ExpectClose(what, Tensor::Scalar(DType::kFloat64, actual),
                     json{{"shape", json::array()}, {"values", {expected}}}, tol,
                     std::abs(expected));
}

// Every tensor of `expected` (a group: see the top of the file) against the one of that name.
inline double ExpectAllClose(const std::string& what, const ParameterMap& actual,
                             const json& expected, Tolerance tol) {
  double scale = 0.0;
  for (const auto& [name, t] : expected.items()) scale = std::max(scale, MaxAbs(t));
  double worst = 0.0;
  EXPECT_EQ(actual.size(), expected.size()) << what;
  for (const auto& [name, t] : expected.items()) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << what << ": no '" << name << "'";
      continue;
    }
    worst = std::max(worst, ExpectClose(what + " " + name, it->second, t, tol, scale));
  }
  return worst;
}

// One parity case: a fixture, the dtype it runs in, and the tolerance it is held to.
struct Case {
  std::string fixture;
  DType dtype;
  Tolerance tol;
};

inline std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.fixture << "/" << DTypeName(c.dtype);
}

}  // namespace backflow::torch_fixture

#endif  // BACKFLOW_TESTS_ENGINE_PARITY_TORCH_FIXTURE_H_
