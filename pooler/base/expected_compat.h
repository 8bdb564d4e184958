#pragma once
// A minimal std::expected / std::unexpected for compilers whose <expected> is empty.
//
// Why: libstdc++ 12's <expected> is gated on __cpp_concepts >= 202002L and needs
// conditionally trivial special members (P0848), which clang implements from version 16.
// With clang 14 (the clang that builds the libFuzzer targets, tests/fuzz/) the header
// declares nothing. g++ 12 never includes this file: result.h includes it only when
// __cpp_lib_expected is undefined after <expected>.
//
// Only what pgmux uses: construction from a value or a std::unexpected, copy and move,
// has_value / operator bool, *, ->, value(), error(), value_or(), and expected<void, E>.
// It is declared in namespace std so that the code needs no changes; that is only done
// when the standard library provides nothing of that name.

#include <exception>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>

namespace std {

template <class E>
class unexpected {
 public:
  template <class G = E>
  requires(!is_same_v<remove_cvref_t<G>, unexpected> &&
           is_constructible_v<E, G>) constexpr explicit unexpected(G&& e)
      : error_(std::forward<G>(e)) {}

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
  const char* what() const noexcept override {
    return "bad access to std::expected without expected value";
  }
  const E& error() const& noexcept { return error_; }

 private:
  E error_;
};

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr expected() requires is_default_constructible_v<T> : has_(true) {
    std::construct_at(&val_);
  }
  expected(const expected& o) : has_(o.has_) {
    if (has_) {
      std::construct_at(&val_, o.val_);
    } else {
      std::construct_at(&err_, o.err_);
    }
  }
  expected(expected&& o) noexcept(
      is_nothrow_move_constructible_v<T>&& is_nothrow_move_constructible_v<E>)
      : has_(o.has_) {
    if (has_) {
      std::construct_at(&val_, std::move(o.val_));
    } else {
      std::construct_at(&err_, std::move(o.err_));
    }
  }
  template <class U = T>
  requires(!is_same_v<remove_cvref_t<U>, expected> && !is_same_v<remove_cvref_t<U>, in_place_t> &&
           !is_same_v<remove_cvref_t<U>, unexpect_t> &&
           is_constructible_v<T, U>) explicit(!is_convertible_v<U, T>) expected(U&& v)
      : has_(true) {
    std::construct_at(&val_, std::forward<U>(v));
  }
  template <class G>
  requires is_constructible_v<E, const G&> expected(const unexpected<G>& u) : has_(false) {
    std::construct_at(&err_, u.error());
  }
  template <class G>
  requires is_constructible_v<E, G> expected(unexpected<G>&& u) : has_(false) {
    std::construct_at(&err_, std::move(u).error());
  }
  template <class... Args>
  explicit expected(in_place_t, Args&&... args) : has_(true) {
    std::construct_at(&val_, std::forward<Args>(args)...);
  }
  template <class... Args>
  explicit expected(unexpect_t, Args&&... args) : has_(false) {
    std::construct_at(&err_, std::forward<Args>(args)...);
  }
  ~expected() { destroy(); }

  expected& operator=(const expected& o) {
    if (this != &o) {
      destroy();
      construct_from(o);
    }
    return *this;
  }
  expected& operator=(expected&& o) noexcept {
    if (this != &o) {
      destroy();
      construct_from(std::move(o));
    }
    return *this;
  }
  template <class U = T>
  requires(!is_same_v<remove_cvref_t<U>, expected> && is_constructible_v<T, U>) expected& operator=(
      U&& v) {
    destroy();
    std::construct_at(&val_, std::forward<U>(v));
    has_ = true;
    return *this;
  }
  template <class G>
  expected& operator=(unexpected<G> u) {
    destroy();
    std::construct_at(&err_, std::move(u).error());
    has_ = false;
    return *this;
  }
  template <class... Args>
  T& emplace(Args&&... args) {
    destroy();
    std::construct_at(&val_, std::forward<Args>(args)...);
    has_ = true;
    return val_;
  }

  constexpr bool has_value() const noexcept { return has_; }
  constexpr explicit operator bool() const noexcept { return has_; }

  constexpr const T* operator->() const noexcept { return &val_; }
  constexpr T* operator->() noexcept { return &val_; }
  constexpr const T& operator*() const& noexcept { return val_; }
  constexpr T& operator*() & noexcept { return val_; }
  constexpr T&& operator*() && noexcept { return std::move(val_); }

  const T& value() const& {
    check();
    return val_;
  }
  T& value() & {
    check();
    return val_;
  }
  T&& value() && {
    check();
    return std::move(val_);
  }
  constexpr const E& error() const& noexcept { return err_; }
  constexpr E& error() & noexcept { return err_; }
  constexpr E&& error() && noexcept { return std::move(err_); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_ ? val_ : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) && {
    return has_ ? std::move(val_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check() const {
    if (!has_) {
      throw bad_expected_access<E>(err_);
    }
  }
  void destroy() {
    if (has_) {
      std::destroy_at(&val_);
    } else {
      std::destroy_at(&err_);
    }
  }
  template <class O>
  void construct_from(O&& o) {
    has_ = o.has_;
    if (has_) {
      std::construct_at(&val_, std::forward<O>(o).val_);
    } else {
      std::construct_at(&err_, std::forward<O>(o).err_);
    }
  }

  union {
    T val_;
    E err_;
  };
  bool has_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  constexpr expected() noexcept : has_(true) {}
  expected(const expected& o) : has_(o.has_) {
    if (!has_) {
      std::construct_at(&err_, o.err_);
    }
  }
  expected(expected&& o) noexcept : has_(o.has_) {
    if (!has_) {
      std::construct_at(&err_, std::move(o.err_));
    }
  }
  template <class G>
  requires is_constructible_v<E, const G&> expected(const unexpected<G>& u) : has_(false) {
    std::construct_at(&err_, u.error());
  }
  template <class G>
  requires is_constructible_v<E, G> expected(unexpected<G>&& u) : has_(false) {
    std::construct_at(&err_, std::move(u).error());
  }
  explicit expected(in_place_t) noexcept : has_(true) {}
  template <class... Args>
  explicit expected(unexpect_t, Args&&... args) : has_(false) {
    std::construct_at(&err_, std::forward<Args>(args)...);
  }
  ~expected() { destroy(); }

  expected& operator=(const expected& o) {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (!has_) {
        std::construct_at(&err_, o.err_);
      }
    }
    return *this;
  }
  expected& operator=(expected&& o) noexcept {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (!has_) {
        std::construct_at(&err_, std::move(o.err_));
      }
    }
    return *this;
  }
  template <class G>
  expected& operator=(unexpected<G> u) {
    destroy();
    std::construct_at(&err_, std::move(u).error());
    has_ = false;
    return *this;
  }
  void emplace() noexcept {
    destroy();
    has_ = true;
  }

  constexpr bool has_value() const noexcept { return has_; }
  constexpr explicit operator bool() const noexcept { return has_; }
  constexpr void operator*() const noexcept {}
  void value() const {
    if (!has_) {
      throw bad_expected_access<E>(err_);
    }
  }
  constexpr const E& error() const& noexcept { return err_; }
  constexpr E& error() & noexcept { return err_; }
  constexpr E&& error() && noexcept { return std::move(err_); }

 private:
  void destroy() {
    if (!has_) {
      std::destroy_at(&err_);
    }
    has_ = true;
  }

  union {
    E err_;
  };
  bool has_;
};

}  // namespace std
