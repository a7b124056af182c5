#include "engine/optim/initializers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/api/import.h"

namespace backflow {
namespace {

using Kind = InitializerSpec::Kind;

Value Param(std::string name, Shape shape, InitializerSpec init) {
  return Value{.name = std::move(name),
               .kind = ValueKind::kParameter,
               .shape = std::move(shape),
               .init = std::move(init)};
}

Tensor MustInit(const Value& param, uint64_t seed = 42, DType dtype = DType::kFloat32) {
  StatusOr<Tensor> tensor = InitializeParameter(param, dtype, seed);
  EXPECT_TRUE(tensor.ok()) << tensor.status().ToString();
  return tensor.ok() ? *tensor : Tensor();
}

struct Moments {
  double mean = 0;
  double stddev = 0;
  double min = 0;
  double max = 0;
};

Moments MomentsOf(const Tensor& t) {
  const std::vector<double> v = t.ToDoubles();
  Moments m{.min = v[0], .max = v[0]};
  for (double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.stddev += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(m.stddev / static_cast<double>(v.size()));
  return m;
}

TEST(InitializersTest, SameSeedAndNameGiveBitwiseTheSameValues) {
  const InitializerSpec normal{.kind = Kind::kNormal, .a = 0, .b = 1};
  const Tensor a = MustInit(Param("w", Shape({17, 5}), normal), 7);
  const Tensor b = MustInit(Param("w", Shape({17, 5}), normal), 7);
  EXPECT_TRUE(BitwiseEqual(a, b));
  EXPECT_FALSE(BitwiseEqual(a, MustInit(Param("v", Shape({17, 5}), normal), 7)));
  EXPECT_FALSE(BitwiseEqual(a, MustInit(Param("w", Shape({17, 5}), normal), 8)));
}

// Pins the generator and the hash of (seed, name): changing either would silently change every
// model created from a seed. Uniform draws use no libm function, so these hold on any platform.
TEST(InitializersTest, UniformDrawsAreStableAcrossVersions) {
  const Tensor t = MustInit(Param("w", Shape({3}), {.kind = Kind::kUniform, .a = 0, .b = 1}), 42,
                            DType::kFloat64);
  EXPECT_EQ(t.ToDoubles(),
            (std::vector<double>{0x1.29f0da09a6c9p-4, 0x1.dd58860c37a12p-2, 0x1.f185f5602fe33p-1}));
}

TEST(InitializersTest, AParameterDoesNotDependOnTheOthers) {
  const char* kOne = R"(parameters { name: "w" shape: [4, 3] init { glorot {} } })";
  const char* kTwo = R"(
      parameters { name: "v" shape: [100] init { normal { stddev: 1 } } }
      parameters { name: "w" shape: [4, 3] init { glorot {} } })";
  StatusOr<Graph> one = ImportGraph(*ParseGraphText(kOne));
  StatusOr<Graph> two = ImportGraph(*ParseGraphText(kTwo));
  ASSERT_TRUE(one.ok() && two.ok());
  auto values_one = InitializeParameters(*one, DType::kFloat32, 3);
  auto values_two = InitializeParameters(*two, DType::kFloat32, 3);
  ASSERT_TRUE(values_one.ok() && values_two.ok());
  EXPECT_EQ(values_one->size(), 1u);
  EXPECT_EQ(values_two->size(), 2u);
  EXPECT_TRUE(BitwiseEqual(values_one->at("w"), values_two->at("w")));
}

TEST(InitializersTest, ZerosAndConstantAreExact) {
  const Tensor zeros = MustInit(Param("z", Shape({3, 2}), {}));
  EXPECT_EQ(zeros.ToDoubles(), std::vector<double>(6, 0.0));
  const Tensor fill =
      MustInit(Param("c", Shape({4}), {.kind = Kind::kConstant, .a = 0.25}), 1, DType::kFloat64);
  EXPECT_EQ(fill.dtype(), DType::kFloat64);
  EXPECT_EQ(fill.ToDoubles(), std::vector<double>(4, 0.25));
}

TEST(InitializersTest, UniformStaysWithinBoundsAndFillsThem) {
  const Tensor t = MustInit(Param("u", Shape({100000}), {.kind = Kind::kUniform, .a = -2, .b = 3}));
  const Moments m = MomentsOf(t);
  EXPECT_GE(m.min, -2.0);
  EXPECT_LE(m.max, 3.0);
  EXPECT_LT(m.min, -1.99);
  EXPECT_GT(m.max, 2.99);
  EXPECT_NEAR(m.mean, 0.5, 0.02);
  EXPECT_NEAR(m.stddev, 5 / std::sqrt(12.0), 0.02);
}

TEST(InitializersTest, NormalHasTheRequestedMoments) {
  const Tensor t = MustInit(Param("n", Shape({200000}), {.kind = Kind::kNormal, .a = 1, .b = 2}));
  const Moments m = MomentsOf(t);
  EXPECT_NEAR(m.mean, 1.0, 0.02);
  EXPECT_NEAR(m.stddev, 2.0, 0.02 * 2.0);
}

TEST(InitializersTest, ComputeFansFollowsTheProtoComment) {
  EXPECT_EQ(ComputeFans(Shape({300, 200})).in, 300);
  EXPECT_EQ(ComputeFans(Shape({300, 200})).out, 200);
  EXPECT_EQ(ComputeFans(Shape({64, 32, 3, 3})).in, 32 * 9);
  EXPECT_EQ(ComputeFans(Shape({64, 32, 3, 3})).out, 64 * 9);
  EXPECT_EQ(ComputeFans(Shape({7})).in, 7);
  EXPECT_EQ(ComputeFans(Shape({2, 3, 4})).out, 24);
  EXPECT_EQ(ComputeFans(Shape()).in, 1);
}

TEST(InitializersTest, GlorotUniformAndNormal) {
  const double limit = std::sqrt(6.0 / 500.0);
  const Moments u =
      MomentsOf(MustInit(Param("g", Shape({300, 200}), {.kind = Kind::kGlorot, .a = 1})));
  EXPECT_GE(u.min, -limit);
  EXPECT_LE(u.max, limit);
  EXPECT_NEAR(u.mean, 0, 0.02 * limit);
  EXPECT_NEAR(u.stddev, limit / std::sqrt(3.0), 0.02 * limit / std::sqrt(3.0));

  const double stddev = 2 * std::sqrt(2.0 / 500.0);  // gain 2
  const Moments n = MomentsOf(
      MustInit(Param("g", Shape({300, 200}), {.kind = Kind::kGlorot, .a = 2, .normal = true})));
  EXPECT_NEAR(n.mean, 0, 0.02 * stddev);
  EXPECT_NEAR(n.stddev, stddev, 0.02 * stddev);
}

TEST(InitializersTest, HeUniformAndNormalUseFanIn) {
  const Shape conv({64, 32, 3, 3});  // fan_in = 288
  const double limit = std::sqrt(6.0 / 288.0);
  const Moments u = MomentsOf(MustInit(Param("k", conv, {.kind = Kind::kHe})));
  EXPECT_GE(u.min, -limit);
  EXPECT_LE(u.max, limit);
  EXPECT_NEAR(u.stddev, limit / std::sqrt(3.0), 0.02 * limit / std::sqrt(3.0));

  const double stddev = std::sqrt(2.0 / 288.0);
  const Moments n = MomentsOf(MustInit(Param("k", conv, {.kind = Kind::kHe, .normal = true})));
  EXPECT_NEAR(n.mean, 0, 0.02 * stddev);
  EXPECT_NEAR(n.stddev, stddev, 0.02 * stddev);
}

TEST(InitializersTest, ExplicitValueIsCopiedExactly) {
  const std::vector<double> values = {0.1, -7.5, 1e-30};
  auto value =
      std::make_shared<const Tensor>(Tensor::FromValues(DType::kFloat32, Shape({3}), values));
  const Value param = Param("v", Shape({3}), {.kind = Kind::kValue, .value = value});
  EXPECT_TRUE(BitwiseEqual(MustInit(param), *value));
  const Tensor wide = MustInit(param, 0, DType::kFloat64);
  EXPECT_EQ(wide.dtype(), DType::kFloat64);
  EXPECT_EQ(wide.ToDoubles(), value->ToDoubles());
}

TEST(InitializersTest, RejectsWhatIsNotAnInitializableParameter) {
  Value placeholder = Param("x", Shape({2}), {});
  placeholder.kind = ValueKind::kPlaceholder;
  EXPECT_EQ(InitializeParameter(placeholder, DType::kFloat32, 0).status().code(),
            StatusCode::kInvalidArgument);
  const StatusOr<Tensor> open =
      InitializeParameter(Param("w", Shape({kBatchDim, 2}), {}), DType::kFloat32, 0);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("parameter 'w'"), std::string::npos);
  const StatusOr<Tensor> no_value =
      InitializeParameter(Param("w", Shape({2}), {.kind = Kind::kValue}), DType::kFloat32, 0);
  EXPECT_EQ(no_value.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace backflow
