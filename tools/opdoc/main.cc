// backflow-opdoc: prints the op reference (docs/ops.md) for the built-in gates.
//
//   build/bin/backflow-opdoc > docs/ops.md
//
// ctest's op_reference test fails while the committed file differs from this output.
#include <iostream>

#include "engine/gates/builtin.h"
#include "engine/gates/op_reference.h"

int main(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "usage: backflow-opdoc > docs/ops.md\n"
              << "Prints the op reference for the built-in gates as Markdown.\n";
    return 2;
  }
  std::cout << backflow::OpReferenceMarkdown(backflow::BuiltinGates());
  return std::cout.good() ? 0 : 1;
}
