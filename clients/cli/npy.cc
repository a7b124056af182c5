#include "clients/cli/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

namespace backflow::cli {
namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr size_t kAlignment = 64;  // numpy.lib.format.ARRAY_ALIGN
// numpy leaves room in the header for the first axis to grow to this many digits.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr int64_t kMaxElements = int64_t{1} << 40;

std::string ShapeTuple(const Shape& shape) {
  std::string text = "(";
  for (int i = 0; i < shape.rank(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape.dim(i));
  }
  if (shape.rank() == 1) text += ",";
  return text + ")";
}

// The fields of a header dict that matter; the parser leaves absent ones empty.
struct Header {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<int64_t>> shape;
};

// Reads the Python dict literal numpy writes: string keys; values that are strings, True/False
// or tuples of integers.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  StatusOr<Header> Parse() {
    Header header;
    if (!Consume('{')) return Error("expected '{'");
    while (!Consume('}')) {
      std::optional<std::string> key = String();
      if (!key || !Consume(':')) return Error("expected 'key':");
      if (*key == "descr") {
        header.descr = String();
        if (!header.descr) return Error("'descr' is not a string");
      } else if (*key == "fortran_order") {
        if (ConsumeWord("True")) {
          header.fortran_order = true;
        } else if (ConsumeWord("False")) {
          header.fortran_order = false;
        } else {
          return Error("'fortran_order' is not True or False");
        }
      } else if (*key == "shape") {
        header.shape = Tuple();
        if (!header.shape) return Error("'shape' is not a tuple of integers");
      } else {
        return Error("unexpected key '" + *key + "'");
      }
      if (!Consume(',') && !Peek('}')) return Error("expected ',' or '}'");
    }
    return header;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool Consume(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }
  bool ConsumeWord(std::string_view word) {
    SkipSpace();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  std::optional<std::string> String() {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return std::nullopt;
    const size_t end = text_.find(text_[pos_], pos_ + 1);
    if (end == std::string_view::npos) return std::nullopt;
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  std::optional<std::vector<int64_t>> Tuple() {
    std::vector<int64_t> dims;
    if (!Consume('(')) return std::nullopt;
    while (!Consume(')')) {
      SkipSpace();
      size_t digits = 0;
      int64_t dim = 0;
      for (; pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]));
           ++pos_, ++digits) {
        if (dim > kMaxElements) return std::nullopt;
        dim = dim * 10 + (text_[pos_] - '0');
      }
      if (digits == 0) return std::nullopt;
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 longs
      dims.push_back(dim);
      if (!Consume(',') && !Peek(')')) return std::nullopt;
    }
    return dims;
  }
  Status Error(const std::string& what) const {
    return InvalidArgumentError("bad .npy header at byte " + std::to_string(pos_) + ": " + what +
                                " in \"" + std::string(text_) + "\"");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

uint32_t LittleEndian(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

std::string_view NpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
  }
  return "<f4";
}

// Checks the header's fields and returns the layout they describe.
StatusOr<std::pair<DType, Shape>> LayoutForHeader(const Header& header) {
  if (!header.descr || !header.fortran_order || !header.shape) {
    return InvalidArgumentError("the .npy header lacks 'descr', 'fortran_order' or 'shape'");
  }
  DType dtype;
  if (*header.descr == "<f4") {
    dtype = DType::kFloat32;
  } else if (*header.descr == "<f8") {
    dtype = DType::kFloat64;
  } else if (*header.descr == "<i4") {
    dtype = DType::kInt32;
  } else if (*header.descr == "<i8") {
    dtype = DType::kInt64;
  } else {
    return InvalidArgumentError("dtype '" + *header.descr +
                                "' is not supported: backflow reads float32 ('<f4'), float64 "
                                "('<f8'), int32 ('<i4') and int64 ('<i8'); convert with "
                                "a.astype(np.float32)");
  }
  if (*header.fortran_order) {
    return InvalidArgumentError(
        "Fortran-ordered arrays are not supported: save np.ascontiguousarray(a)");
  }
  int64_t elements = 1;
  for (int64_t dim : *header.shape) {
    if (dim != 0 && elements > kMaxElements / dim) {
      return InvalidArgumentError("shape " + ShapeTuple(Shape(*header.shape)) + " is too large");
    }
    elements *= dim;
  }
  return std::make_pair(dtype, Shape(*header.shape));
}

}  // namespace

std::string NpyHeader(DType dtype, const Shape& shape) {
  std::string dict = "{'descr': '";
  dict += NpyDescr(dtype);
  dict += "', 'fortran_order': False, 'shape': " + ShapeTuple(shape) + ", }";
  if (shape.rank() > 0) {
    dict.append(kGrowthAxisMaxDigits - std::to_string(shape.dim(0)).size(), ' ');
  }
  // Magic, version and the header length (2 bytes in version 1.0), then the dict and '\n'.
  const size_t unpadded = kMagic.size() + 2 + 2 + dict.size() + 1;
  dict.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  dict += '\n';
  std::string bytes(kMagic);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(dict.size() & 0xff);
  bytes += static_cast<char>(dict.size() >> 8);
  bytes += dict;
  return bytes;
}

std::string EncodeNpy(const Tensor& tensor) {
  std::string bytes = NpyHeader(tensor.dtype(), tensor.shape());
  bytes.append(reinterpret_cast<const char*>(tensor.raw()), tensor.byte_size());
  return bytes;
}

StatusOr<NpyLayout> DecodeNpyHeader(std::string_view bytes) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) {
    return InvalidArgumentError("not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  const int minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3) {
    return InvalidArgumentError("unsupported .npy format version " + std::to_string(major) + "." +
                                std::to_string(minor));
  }
  const size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) return InvalidArgumentError("truncated .npy header");
  const size_t header_length = LittleEndian(bytes.substr(8, length_bytes));
  const size_t data_start = 8 + length_bytes + header_length;
  if (bytes.size() < data_start) return InvalidArgumentError("truncated .npy header");
  HeaderParser parser(bytes.substr(8 + length_bytes, header_length));
  BF_ASSIGN_OR_RETURN(Header header, parser.Parse());
  BF_ASSIGN_OR_RETURN(auto layout, LayoutForHeader(header));
  return NpyLayout{layout.first, std::move(layout.second), data_start};
}

StatusOr<Tensor> DecodeNpy(std::string_view bytes) {
  BF_ASSIGN_OR_RETURN(const NpyLayout layout, DecodeNpyHeader(bytes));
  Tensor tensor(layout.dtype, layout.shape);
  const size_t data_start = layout.data_offset;
  const size_t data_size = bytes.size() - data_start;
  if (data_size != tensor.byte_size()) {
    return InvalidArgumentError("shape " + ShapeTuple(tensor.shape()) + " needs " +
                                std::to_string(tensor.byte_size()) + " bytes of data, found " +
                                std::to_string(data_size));
  }
  if (data_size > 0) std::memcpy(tensor.raw(), bytes.data() + data_start, data_size);
  return tensor;
}

Status WriteNpy(const std::string& path, const Tensor& tensor) {
  const std::string bytes = EncodeNpy(tensor);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return InternalError(path + ": cannot write: " + std::strerror(errno));
  return Status::Ok();
}

StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return InternalError(path + ": cannot read: " + std::strerror(errno));
  StatusOr<Tensor> tensor = DecodeNpy(contents.str());
  if (!tensor.ok()) return tensor.status().WithPrefix(path);
  return tensor;
}

}  // namespace backflow::cli
