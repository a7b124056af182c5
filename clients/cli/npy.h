// NumPy's .npy format (numpy.lib.format), for the float tensors the CLI reads and writes.
//
// Writing produces exactly the bytes numpy.save writes for a C-ordered float32 ('<f4') or
// float64 ('<f8') array (numpy 1.24): format version 1.0, the header dict
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" followed by numpy's spare space
// for growing the first axis, padded with spaces and a final '\n' so the data starts at a
// multiple of 64 bytes, then the elements little-endian.
//
// Reading accepts version 1.0, 2.0 and 3.0 headers with descr '<f4' or '<f8' and
// fortran_order False, the dict keys in any order and any spacing. Everything else — other dtypes,
// Fortran order, object arrays, a short or long data section — is InvalidArgument with a message
// that says what was found and what would do.
#ifndef BACKFLOW_CLIENTS_CLI_NPY_H_
#define BACKFLOW_CLIENTS_CLI_NPY_H_

#include <string>
#include <string_view>

#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow::cli {

// The .npy file contents for `tensor`.
std::string EncodeNpy(const Tensor& tensor);
// The tensor stored in .npy file contents.
StatusOr<Tensor> DecodeNpy(std::string_view bytes);

// The header of a .npy file (everything before the data) for an array of `dtype` and `shape`:
// EncodeNpy's bytes without the elements, for writing an array piece by piece.
std::string NpyHeader(DType dtype, const Shape& shape);
// What a .npy header says, checked as DecodeNpy checks it, and where the data starts.
struct NpyLayout {
  DType dtype;
  Shape shape;
  size_t data_offset;
};
// `bytes` is the start of a file, holding at least its header.
StatusOr<NpyLayout> DecodeNpyHeader(std::string_view bytes);

// File versions: errors are prefixed with the path ("w.npy: dtype '<i8' is not supported ...").
Status WriteNpy(const std::string& path, const Tensor& tensor);
StatusOr<Tensor> ReadNpy(const std::string& path);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_NPY_H_
