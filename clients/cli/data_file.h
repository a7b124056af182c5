// A user's own training data for `backflow train --data FILE`: NumPy .npz archives and CSV.
//
// .npz (numpy.savez or savez_compressed; read with Debian's libzip): two arrays, the features
// [N, ...] and the labels [N]. The labels are the array named "labels" or "y", else the only
// array of rank 1; the features are the other one. Arrays are float32, float64, int32 or int64
// (.npy's '<f4', '<f8', '<i4', '<i8'); both become float32, as the IDX reader's data.
//
// CSV: one sample a line, fields separated by commas, numbers only (a first line with anything
// else is the header). The label column is `label_column` (a header name or a 0-based index),
// by default the column named label, labels, y, target or class, else the last one; the other
// columns are the features [N, F]. Blank lines are skipped.
//
// Errors are InvalidArgument (NotFound for a missing file) prefixed with the path, naming the
// line, column or array at fault and what would do.
#ifndef BACKFLOW_CLIENTS_CLI_DATA_FILE_H_
#define BACKFLOW_CLIENTS_CLI_DATA_FILE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/data/dataset.h"

namespace backflow::cli {

// True if `path` names a file this module reads (it ends with .npz or .csv).
bool IsDataFile(std::string_view path);

struct DataFileOptions {
  std::string label_column;  // CSV only; "" picks it as the header comment says
  int64_t limit = -1;        // keep the first `limit` samples (-1: all)
};

StatusOr<Dataset> LoadDataFile(const std::string& path, const DataFileOptions& options = {});

// The arrays of a .npz archive in archive order, named without their ".npy" suffix.
StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path);

// A Dataset from CSV text (`source` names it in errors).
StatusOr<Dataset> DatasetFromCsv(std::string_view text, const std::string& label_column,
                                 const std::string& source);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_DATA_FILE_H_
