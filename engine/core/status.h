// Status and StatusOr: how errors cross module boundaries in backflow.
//
// A Status is a code (the gRPC canonical codes, so the server maps them one to one) and a
// message. OK carries no allocation; an error holds one shared, immutable representation, so a
// Status is cheap to copy and return. Nothing in the engine throws across its public API.
#ifndef BACKFLOW_ENGINE_CORE_STATUS_H_
#define BACKFLOW_ENGINE_CORE_STATUS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace backflow {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "INVALID_ARGUMENT: node 'h': ..." or "OK".
  std::string ToString() const;

  // Returns a copy whose message is `prefix + ": " + message()`; OK stays OK.
  Status WithPrefix(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status InternalError(std::string message);
Status CancelledError(std::string message);
Status DeadlineExceededError(std::string message);
Status UnimplementedError(std::string message);
Status AlreadyExistsError(std::string message);
Status OutOfRangeError(std::string message);
Status DataLossError(std::string message);
Status UnavailableError(std::string message);
Status AbortedError(std::string message);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = InternalError("StatusOr constructed from OK without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace backflow

#define BF_STATUS_CONCAT_INNER(a, b) a##b
#define BF_STATUS_CONCAT(a, b) BF_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define BF_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::backflow::Status bf_status_ = (expr);       \
    if (!bf_status_.ok()) return bf_status_;      \
  } while (false)

// `lhs` = the value of `expr` (a StatusOr), or returns its Status from the enclosing function.
#define BF_ASSIGN_OR_RETURN(lhs, expr) \
  BF_ASSIGN_OR_RETURN_IMPL(BF_STATUS_CONCAT(bf_statusor_, __LINE__), lhs, expr)
#define BF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#endif  // BACKFLOW_ENGINE_CORE_STATUS_H_
