#include "engine/gates/op_reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gates/builtin.h"

namespace backflow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "line 12: file has 'x', the registry gives 'y'": where two texts first differ.
std::string FirstDifference(const std::string& file, const std::string& generated) {
  const std::vector<std::string> a = Lines(file);
  const std::vector<std::string> b = Lines(generated);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string left = i < a.size() ? "'" + a[i] + "'" : "(end of file)";
    const std::string right = i < b.size() ? "'" + b[i] + "'" : "(end of output)";
    if (left != right) {
      return "line " + std::to_string(i + 1) + ": docs/ops.md has " + left +
             ", the registry gives " + right;
    }
  }
  return "the texts differ only in line endings";
}

TEST(OpReferenceTest, DocsOpsMdIsCurrent) {
  const std::string path = std::string(BACKFLOW_SOURCE_DIR) + "/docs/ops.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << path << "; generate it with\n  " << kOpReferenceCommand;
  std::stringstream file;
  file << in.rdbuf();
  const std::string generated = OpReferenceMarkdown(BuiltinGates());
  EXPECT_TRUE(file.str() == generated)
      << "docs/ops.md is stale: a gate's doc() or attr_specs() changed since it was generated.\n"
      << FirstDifference(file.str(), generated) << "\nRegenerate it (from the source root) with\n  "
      << kOpReferenceCommand;
}

// A documented gate with every kind of input and attribute the generator renders.
class DocumentedGate : public Gate {
 public:
  Arity arity() const override { return {1, 2}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {
        {.name = "size", .type = AttrType::kInts, .required = true, .description = "the size"},
        {.name = "scale", .type = AttrType::kFloat, .default_value = "0.5", .description = "a | b"},
        {.name = "mode", .type = AttrType::kString, .description = "absent: the input's"}};
  }
  OpDoc doc() const override {
    return {.summary = "Does a thing.",
            .inputs = {{"x", "any shape"}, {"bias", "x's shape"}},
            .output = "x's shape",
            .forward = "y = x * scale\n  + bias",
            .gradient = "dL/dx = dy * scale"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext&) const override {
    return UnimplementedError("test gate");
  }
};

class VariadicGate : public DocumentedGate {
 public:
  Arity arity() const override { return {1, Arity::kVariadic}; }
  std::vector<AttrSpec> attr_specs() const override { return {}; }
  OpDoc doc() const override {
    return {.summary = "Joins.",
            .inputs = {{"x1, ..., xn", "one shape"}},
            .output = "that shape",
            .forward = "y = x1 + ... + xn",
            .gradient = "none"};
  }
};

class UndocumentedGate : public DocumentedGate {
 public:
  OpDoc doc() const override { return {}; }
};

class InternalGate : public DocumentedGate {
 public:
  bool internal() const override { return true; }
};

GateRegistry TestRegistry() {
  GateRegistry registry;
  EXPECT_TRUE(registry.Register("zeta", std::make_unique<DocumentedGate>()).ok());
  EXPECT_TRUE(registry.Register("alpha", std::make_unique<VariadicGate>()).ok());
  EXPECT_TRUE(registry.Register("mystery", std::make_unique<UndocumentedGate>()).ok());
  EXPECT_TRUE(registry.Register("hidden_grad", std::make_unique<InternalGate>()).ok());
  return registry;
}

TEST(OpReferenceTest, ListsPublicOpsSortedByName) {
  const std::string md = OpReferenceMarkdown(TestRegistry());
  EXPECT_THAT(md, HasSubstr("| [alpha](#alpha) | Joins. |\n| [mystery](#mystery) |  |\n"
                            "| [zeta](#zeta) | Does a thing. |\n"));
  EXPECT_LT(md.find("## alpha"), md.find("## mystery"));
  EXPECT_LT(md.find("## mystery"), md.find("## zeta"));
  EXPECT_THAT(md, Not(HasSubstr("hidden_grad")));
  EXPECT_THAT(md, HasSubstr(kOpReferenceCommand));
}

TEST(OpReferenceTest, RendersInputsAttributesAndFormulas) {
  const std::string md = OpReferenceMarkdown(TestRegistry());
  EXPECT_THAT(md, HasSubstr("## zeta\n\nDoes a thing.\n\nInputs (1 to 2):\n\n"
                            "| input | description |\n|---|---|\n"
                            "| `x` | any shape |\n| `bias` (optional) | x's shape |\n"));
  EXPECT_THAT(md, HasSubstr("| `size` | ints | required | the size |\n"
                            "| `scale` | float | `0.5` | a \\| b |\n"
                            "| `mode` | string | optional | absent: the input's |\n"));
  EXPECT_THAT(md, HasSubstr("Output: x's shape\n\nForward:\n\n```\ny = x * scale\n  + bias\n```\n\n"
                            "Gradient:\n\n```\ndL/dx = dy * scale\n```\n"));
}

TEST(OpReferenceTest, RendersVariadicAndUndocumentedOps) {
  const std::string md = OpReferenceMarkdown(TestRegistry());
  EXPECT_THAT(md, HasSubstr("Inputs (1 or more):\n\n| input | description |\n|---|---|\n"
                            "| `x1, ..., xn` (repeated) | one shape |\n\nAttributes: none.\n"));
  EXPECT_THAT(md, HasSubstr("## mystery\n\nNot documented yet.\n"));
}

TEST(OpReferenceTest, EndsWithOneNewline) {
  const std::string md = OpReferenceMarkdown(BuiltinGates());
  ASSERT_GE(md.size(), 2u);
  EXPECT_EQ(md.back(), '\n');
  EXPECT_NE(md[md.size() - 2], '\n');
}

}  // namespace
}  // namespace backflow
