#include "clients/cli/data_file.h"

#include <zip.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>

#include "clients/cli/npy.h"
#include "clients/cli/onnx_args.h"

namespace backflow::cli {
namespace {

constexpr zip_uint64_t kMaxArrayBytes = zip_uint64_t{8} << 30;  // one array of a .npz
constexpr std::string_view kLabelNames[] = {"label", "labels", "y", "target", "class"};

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// `tensor` (any of the four dtypes) as float32.
Tensor ToFloat32(const Tensor& tensor) {
  if (tensor.dtype() == DType::kFloat32) return tensor;
  Tensor result(DType::kFloat32, tensor.shape());
  float* out = result.data<float>();
  const int64_t n = tensor.num_elements();
  for (int64_t i = 0; i < n; ++i) {
    switch (tensor.dtype()) {
      case DType::kFloat64:
        out[i] = static_cast<float>(tensor.data<double>()[i]);
        break;
      case DType::kInt32:
        out[i] = static_cast<float>(tensor.data<int32_t>()[i]);
        break;
      case DType::kInt64:
        out[i] = static_cast<float>(tensor.data<int64_t>()[i]);
        break;
      case DType::kFloat32:
        break;
    }
  }
  return result;
}

// The first `rows` samples of `tensor` ([N, ...], rows <= N).
Tensor FirstRows(const Tensor& tensor, int64_t rows) {
  std::vector<int64_t> dims(tensor.shape().dims().begin(), tensor.shape().dims().end());
  const size_t bytes = tensor.byte_size() / static_cast<size_t>(std::max<int64_t>(dims[0], 1)) *
                       static_cast<size_t>(rows);
  dims[0] = rows;
  Tensor result(tensor.dtype(), Shape(dims));
  if (bytes > 0) std::memcpy(result.raw(), tensor.raw(), bytes);
  return result;
}

std::string ArrayNames(const std::vector<std::pair<std::string, Tensor>>& arrays) {
  std::string names;
  for (const auto& [name, tensor] : arrays) {
    names += (names.empty() ? "" : ", ") + name + " " + tensor.shape().ToString();
  }
  return names.empty() ? "none" : names;
}

StatusOr<Dataset> DatasetFromArrays(const std::vector<std::pair<std::string, Tensor>>& arrays) {
  const std::string usage =
      ": train needs two arrays, the features [N, ...] and the labels [N], as "
      "np.savez(FILE, x=x, labels=labels) writes them";
  if (arrays.size() != 2) return InvalidArgumentError("holds " + ArrayNames(arrays) + usage);
  int label = -1;
  for (int i = 0; i < 2; ++i) {
    if (arrays[i].first == "labels" || arrays[i].first == "y") label = i;
  }
  if (label < 0) {
    const bool first = arrays[0].second.shape().rank() == 1;
    const bool second = arrays[1].second.shape().rank() == 1;
    if (first == second) {
      return InvalidArgumentError("holds " + ArrayNames(arrays) +
                                  ": name the labels array 'labels' or 'y'" + usage.substr(1));
    }
    label = first ? 0 : 1;
  }
  const Tensor& labels = arrays[label].second;
  const Tensor& features = arrays[1 - label].second;
  if (labels.shape().rank() != 1 || features.shape().rank() < 1 ||
      features.shape().dim(0) != labels.shape().dim(0) || labels.shape().dim(0) == 0) {
    return InvalidArgumentError("holds " + ArrayNames(arrays) + usage + " (N equal, at least 1)");
  }
  return Dataset{.images = ToFloat32(features), .labels = ToFloat32(labels)};
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    fields.push_back(Trim(line.substr(start, comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

bool ParseNumber(std::string_view field, double* value) {
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), *value);
  return error == std::errc() && end == field.data() + field.size() && !field.empty();
}

StatusOr<size_t> LabelColumn(const std::vector<std::string_view>& header, size_t columns,
                             const std::string& wanted) {
  if (!wanted.empty()) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == wanted) return i;
    }
    size_t index = 0;
    const auto [end, error] = std::from_chars(wanted.data(), wanted.data() + wanted.size(), index);
    if (error == std::errc() && end == wanted.data() + wanted.size() && index < columns) {
      return index;
    }
    return InvalidArgumentError("no label column '" + wanted + "' (" + std::to_string(columns) +
                                " columns" + (header.empty() ? ", no header" : "") + ")");
  }
  for (size_t i = 0; i < header.size(); ++i) {
    for (std::string_view name : kLabelNames) {
      if (header[i] == name) return i;
    }
  }
  return columns - 1;
}

// A Dataset of `rows` x `columns` row-major `values`: column `label` the labels, the rest the
// features.
Dataset SplitLabels(const std::vector<double>& values, size_t rows, size_t columns, size_t label) {
  const auto n = static_cast<int64_t>(rows), width = static_cast<int64_t>(columns - 1);
  Dataset data{.images = Tensor(DType::kFloat32, Shape({n, width})),
               .labels = Tensor(DType::kFloat32, Shape({n}))};
  float* features = data.images.data<float>();
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns; ++c) {
      const auto value = static_cast<float>(values[r * columns + c]);
      if (c == label) {
        data.labels.data<float>()[r] = value;
      } else {
        *features++ = value;
      }
    }
  }
  return data;
}

}  // namespace

bool IsDataFile(std::string_view path) { return EndsWith(path, ".npz") || EndsWith(path, ".csv"); }

StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path) {
  int code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY, &code),
                                                         zip_discard);
  if (archive == nullptr) {
    if (code == ZIP_ER_NOENT) return NotFoundError(path + ": no such file");
    return InvalidArgumentError(path + ": not a .npz archive (" + ZipErrorText(code) + ")");
  }
  std::vector<std::pair<std::string, Tensor>> arrays;
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0 ||
        (stat.valid & (ZIP_STAT_NAME | ZIP_STAT_SIZE)) != (ZIP_STAT_NAME | ZIP_STAT_SIZE)) {
      return InvalidArgumentError(path + ": damaged entry " + std::to_string(i));
    }
    std::string name = stat.name;
    if (stat.size > kMaxArrayBytes) {
      return InvalidArgumentError(path + ": " + name + " holds " + std::to_string(stat.size) +
                                  " bytes, over the 8 GiB this reader takes");
    }
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0), zip_fclose);
    std::string bytes(stat.size, '\0');
    if (file == nullptr ||
        zip_fread(file.get(), bytes.data(), stat.size) != static_cast<zip_int64_t>(stat.size)) {
      return InvalidArgumentError(path + ": cannot read " + name + " (" +
                                  zip_strerror(archive.get()) + ")");
    }
    StatusOr<Tensor> tensor = DecodeNpy(bytes);
    if (!tensor.ok()) return tensor.status().WithPrefix(path + ": " + name);
    if (EndsWith(name, ".npy")) name.resize(name.size() - 4);
    arrays.emplace_back(std::move(name), std::move(*tensor));
  }
  return arrays;
}

StatusOr<Dataset> DatasetFromCsv(std::string_view text, const std::string& label_column,
                                 const std::string& source) {
  std::vector<std::string_view> header;
  std::vector<double> values;
  size_t columns = 0, line_number = 0, rows = 0;
  auto error = [&](const std::string& what) {
    return InvalidArgumentError(source + " line " + std::to_string(line_number) + ": " + what);
  };
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = Trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty()) continue;
    std::vector<std::string_view> fields = SplitFields(line);
    if (columns == 0) {
      columns = fields.size();
      double unused;
      if (!std::all_of(fields.begin(), fields.end(),
                       [&](std::string_view f) { return ParseNumber(f, &unused); })) {
        header = std::move(fields);
        continue;
      }
    }
    if (fields.size() != columns) {
      return error(std::to_string(fields.size()) + " fields, expected " + std::to_string(columns));
    }
    for (size_t c = 0; c < columns; ++c) {
      double value = 0;
      if (!ParseNumber(fields[c], &value) || !std::isfinite(value)) {
        const std::string column = header.empty() ? std::to_string(c) : std::string(header[c]);
        return error("column " + column + ": '" + std::string(fields[c].substr(0, 32)) +
                     "' is not a finite number");
      }
      values.push_back(value);
    }
    ++rows;
  }
  if (rows == 0 || columns < 2) {
    return InvalidArgumentError(source +
                                ": needs at least one row of two or more columns "
                                "(features, then a label column)");
  }
  StatusOr<size_t> label_or = LabelColumn(header, columns, label_column);
  if (!label_or.ok()) return label_or.status().WithPrefix(source);
  const size_t label = *label_or;
  return SplitLabels(values, rows, columns, label);
}

StatusOr<Dataset> LoadDataFile(const std::string& path, const DataFileOptions& options) {
  Dataset data;
  if (EndsWith(path, ".npz")) {
    BF_ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
    StatusOr<Dataset> from_arrays = DatasetFromArrays(arrays);
    if (!from_arrays.ok()) return from_arrays.status().WithPrefix(path);
    data = std::move(*from_arrays);
  } else {
    BF_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
    BF_ASSIGN_OR_RETURN(data, DatasetFromCsv(text, options.label_column, path));
  }
  if (options.limit >= 0 && options.limit < data.size()) {
    data.images = FirstRows(data.images, options.limit);
    data.labels = FirstRows(data.labels, options.limit);
  }
  return data;
}

}  // namespace backflow::cli
