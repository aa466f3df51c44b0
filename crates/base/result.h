// Result<T, E>: a value or an error code, for freestanding code (no exceptions, no heap).
// E is an enum; the caller maps it 1:1 onto the ABI's append-only error set. TRY() returns the
// error from the enclosing function. Header-only; no allocation.
#pragma once

namespace instar::base {

template <class E>
struct Error {
  E code;
  unsigned long long detail = 0;
};

template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) : ok_(true), value_(value) {}               // NOLINT: implicit by design
  Result(Error<E> error) : ok_(false), error_(error) {}       // NOLINT: implicit by design

  bool ok() const { return ok_; }
  const T& value() const { return value_; }
  T& value() { return value_; }
  Error<E> error() const { return error_; }

 private:
  bool ok_;
  T value_{};
  Error<E> error_{};
};

// Result<void>: success or an error.
template <class E>
class [[nodiscard]] Status {
 public:
  Status() : ok_(true) {}
  Status(Error<E> error) : ok_(false), error_(error) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  Error<E> error() const { return error_; }

 private:
  bool ok_;
  Error<E> error_{};
};

template <class E>
Error<E> Fail(E code, unsigned long long detail = 0) {
  return Error<E>{code, detail};
}

}  // namespace instar::base

#define INSTAR_TRY_CONCAT_INNER(a, b) a##b
#define INSTAR_TRY_CONCAT(a, b) INSTAR_TRY_CONCAT_INNER(a, b)

// TRY(lhs, expr): evaluates a Result; on error returns it, else assigns the value to lhs.
#define TRY(lhs, expr)                                                        \
  auto INSTAR_TRY_CONCAT(try_result_, __LINE__) = (expr);                     \
  if (!INSTAR_TRY_CONCAT(try_result_, __LINE__).ok())                         \
    return INSTAR_TRY_CONCAT(try_result_, __LINE__).error();                  \
  lhs = INSTAR_TRY_CONCAT(try_result_, __LINE__).value()

// TRY_STATUS(expr): evaluates a Status or Result; on error returns it.
#define TRY_STATUS(expr)                                                      \
  do {                                                                        \
    auto try_status_ = (expr);                                                \
    if (!try_status_.ok()) return try_status_.error();                        \
  } while (0)
