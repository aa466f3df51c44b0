// Status and StatusOr<T> for host code: a short list of codes, a message, and
// return-if-error macros. Host-only (allocates for messages).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace instar {

enum class StatusCode {
  kOk,
  kInvalidArgument,   // the caller's input is wrong (flags, sizes, paths)
  kNotFound,
  kPermissionDenied,
  kIoError,           // the host's own I/O failed
  kUnavailable,       // a facility (e.g. /dev/kvm) is missing
  kGuestFailed,       // the guest faulted, hung, broke the protocol or sent no result
  kImageRejected,     // the guest parsed the image and refused it
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status GuestFailed(std::string m) { return {StatusCode::kGuestFailed, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <class T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<Status, T> v_;
};

#define INSTAR_STATUS_CONCAT_INNER(a, b) a##b
#define INSTAR_STATUS_CONCAT(a, b) INSTAR_STATUS_CONCAT_INNER(a, b)

#define INSTAR_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::instar::Status instar_status_ = (expr);   \
    if (!instar_status_.ok()) return instar_status_; \
  } while (0)

// `lhs` may be a declaration ("Foo foo"), so the macro cannot parenthesise it.
#define INSTAR_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto INSTAR_STATUS_CONCAT(instar_or_, __LINE__) = (expr);                  \
  if (!INSTAR_STATUS_CONCAT(instar_or_, __LINE__).ok())                      \
    return INSTAR_STATUS_CONCAT(instar_or_, __LINE__).status();              \
  lhs = std::move(INSTAR_STATUS_CONCAT(instar_or_, __LINE__)).value()  // NOLINT(bugprone-macro-parentheses)

}  // namespace instar
