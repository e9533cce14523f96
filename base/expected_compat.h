// std::expected for a compiler whose standard library hides it: clang 14 (the sanitizer and
// fuzzing build, tests/README.md) with libstdc++ 12, whose <expected> needs C++20 concepts that
// clang 14 does not finish (P0848). base/error.h includes this header only when <version> does
// not define __cpp_lib_expected; GCC builds never see it.
//
// Only the part of C++23 std::expected that hpo uses: construction from a value or a
// std::unexpected, has_value / operator bool, *, ->, value(), error(), value_or, ==. Declaring
// it in namespace std keeps every caller's spelling; libstdc++'s own <expected> is empty there.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace std {

template <class E>
class unexpected {
 public:
  template <class Err = E>
  requires(!is_same_v<remove_cvref_t<Err>, unexpected> &&
           is_constructible_v<E, Err>) constexpr explicit unexpected(Err&& e)
      : error_(std::forward<Err>(e)) {}

  constexpr const E& error() const& noexcept { return error_; }
  constexpr E& error() & noexcept { return error_; }
  constexpr E&& error() && noexcept { return std::move(error_); }

 private:
  E error_;
};

template <class E>
unexpected(E) -> unexpected<E>;

struct unexpect_t {
  explicit unexpect_t() = default;
};
inline constexpr unexpect_t unexpect{};

template <class E>
class bad_expected_access : public exception {
 public:
  explicit bad_expected_access(E e) : error_(std::move(e)) {}
  const char* what() const noexcept override { return "bad access to std::expected"; }
  const E& error() const& noexcept { return error_; }

 private:
  E error_;
};

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr expected() requires is_default_constructible_v<T> : v_(in_place_index<0>) {}

  template <class U = T>
  requires(!is_same_v<remove_cvref_t<U>, expected> && !is_same_v<remove_cvref_t<U>, in_place_t> &&
           !is_same_v<remove_cvref_t<U>, unexpect_t> &&
           is_constructible_v<T, U>) constexpr explicit(!is_convertible_v<U, T>) expected(U&& v)
      : v_(in_place_index<0>, std::forward<U>(v)) {}

  template <class G>
  constexpr expected(const unexpected<G>& u) : v_(in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : v_(in_place_index<1>, std::move(u).error()) {}

  template <class... Args>
  constexpr explicit expected(in_place_t, Args&&... args)
      : v_(in_place_index<0>, std::forward<Args>(args)...) {}
  template <class... Args>
  constexpr explicit expected(unexpect_t, Args&&... args)
      : v_(in_place_index<1>, std::forward<Args>(args)...) {}

  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr T& operator*() & { return std::get<0>(v_); }
  constexpr const T& operator*() const& { return std::get<0>(v_); }
  constexpr T&& operator*() && { return std::get<0>(std::move(v_)); }
  constexpr T* operator->() { return &std::get<0>(v_); }
  constexpr const T* operator->() const { return &std::get<0>(v_); }

  constexpr T& value() & {
    check();
    return std::get<0>(v_);
  }
  constexpr const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  constexpr T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }

  constexpr E& error() & { return std::get<1>(v_); }
  constexpr const E& error() const& { return std::get<1>(v_); }
  constexpr E&& error() && { return std::get<1>(std::move(v_)); }

  template <class U>
  constexpr T value_or(U&& other) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(other));
  }
  template <class U>
  constexpr T value_or(U&& other) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(other));
  }

  template <class T2, class E2>
  friend constexpr bool operator==(const expected& a, const expected<T2, E2>& b) {
    if (a.has_value() != b.has_value()) return false;
    return a.has_value() ? *a == *b : a.error() == b.error();
  }
  template <class T2>
  requires(!is_same_v<T2, expected>) friend constexpr bool operator==(const expected& a,
                                                                      const T2& v) {
    return a.has_value() && *a == v;
  }
  template <class E2>
  friend constexpr bool operator==(const expected& a, const unexpected<E2>& u) {
    return !a.has_value() && a.error() == u.error();
  }

 private:
  void check() const {
    if (!has_value()) throw bad_expected_access<E>(std::get<1>(v_));
  }
  variant<T, E> v_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  constexpr expected() noexcept : v_(in_place_index<0>) {}
  template <class G>
  constexpr expected(const unexpected<G>& u) : v_(in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : v_(in_place_index<1>, std::move(u).error()) {}
  template <class... Args>
  constexpr explicit expected(unexpect_t, Args&&... args)
      : v_(in_place_index<1>, std::forward<Args>(args)...) {}

  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr void operator*() const noexcept {}
  constexpr void value() const {
    if (!has_value()) throw bad_expected_access<E>(std::get<1>(v_));
  }

  constexpr E& error() & { return std::get<1>(v_); }
  constexpr const E& error() const& { return std::get<1>(v_); }
  constexpr E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  variant<monostate, E> v_;
};

}  // namespace std
