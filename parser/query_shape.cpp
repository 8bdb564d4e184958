#include "parser/query_shape.h"

#include <array>
#include <cstring>

namespace parser {
namespace {

// Character classes, following PostgreSQL's scan.l.
enum : std::uint8_t {
  kIdentStart = 1,  // [A-Za-z_\200-\377]
  kIdentCont = 2,   // kIdentStart, digits and $
  kSpace = 4,       // space \t \n \r \f \v
  kDigit = 8,
  kTight = 16,      // ( ) , ; [ ]: always tokens of their own, so no space is kept next to them
};

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> c{};
  for (int i = 0; i < 256; ++i) {
    const bool alpha = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') || i == '_' || i >= 0x80;
    const bool digit = i >= '0' && i <= '9';
    if (alpha) {
      c[i] |= kIdentStart | kIdentCont;
    }
    if (digit) {
      c[i] |= kIdentCont | kDigit;
    }
  }
  c['$'] |= kIdentCont;
  for (const char s : {' ', '\t', '\n', '\r', '\f', '\v'}) {
    c[static_cast<unsigned char>(s)] |= kSpace;
  }
  for (const char s : {'(', ')', ',', ';', '[', ']'}) {
    c[static_cast<unsigned char>(s)] |= kTight;
  }
  return c;
}
constexpr auto kClasses = make_classes();

inline bool is(char ch, std::uint8_t cls) {
  return (kClasses[static_cast<unsigned char>(ch)] & cls) != 0;
}

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view word, std::string_view lower_keyword) {
  if (word.size() != lower_keyword.size()) {
    return false;
  }
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (lower(word[i]) != lower_keyword[i]) {
      return false;
    }
  }
  return true;
}

FirstKeyword keyword_of(std::string_view word) {
  if (word.size() < 3 || word.size() > 8) {
    return FirstKeyword::Other;
  }
  struct Entry {
    std::string_view text;
    FirstKeyword keyword;
  };
  static constexpr Entry kKeywords[] = {
      {"insert", FirstKeyword::Insert}, {"update", FirstKeyword::Update},
      {"delete", FirstKeyword::Delete}, {"merge", FirstKeyword::Merge},
      {"create", FirstKeyword::Create}, {"alter", FirstKeyword::Alter},
      {"drop", FirstKeyword::Drop},     {"truncate", FirstKeyword::Truncate},
      {"grant", FirstKeyword::Grant},   {"revoke", FirstKeyword::Revoke},
      {"copy", FirstKeyword::Copy},     {"set", FirstKeyword::Set},
      {"explain", FirstKeyword::Explain},
  };
  for (const auto& e : kKeywords) {
    if (iequals(word, e.text)) {
      return e.keyword;
    }
  }
  return FirstKeyword::Other;
}

// Hints inside one comment's text: every "pgmux:primary" / "pgmux:replica" (any case).
void find_hints(std::string_view comment, std::optional<Hint>& hint) {
  for (std::size_t at = comment.find(':'); at != std::string_view::npos;
       at = comment.find(':', at + 1)) {
    if (at < 5 || !iequals(comment.substr(at - 5, 5), "pgmux")) {
      continue;
    }
    std::size_t w = at + 1;
    while (w < comment.size() && comment[w] == ' ') {
      ++w;
    }
    std::size_t e = w;
    while (e < comment.size() && is(comment[e], kIdentStart)) {
      ++e;
    }
    const std::string_view word = comment.substr(w, e - w);
    if (iequals(word, "primary")) {
      hint = Hint::Primary;
    } else if (iequals(word, "replica") && hint != Hint::Primary) {
      hint = Hint::Replica;
    }
  }
}

// The key under construction, written straight into the std::string's buffer: a key is
// never longer than its text (each token shrinks or stays, a space stands for at least one
// byte of whitespace or comment) plus kKeySlack for the markers.
constexpr std::size_t kKeySlack = 48;

class KeyWriter {
 public:
  explicit KeyWriter(char* buf) : buf_(buf) {}
  bool empty() const { return n_ == 0; }
  std::size_t size() const { return n_; }
  char back() const { return buf_[n_ - 1]; }
  char operator[](std::size_t i) const { return buf_[i]; }
  void pop_back() { --n_; }
  void resize(std::size_t n) { n_ = n; }
  void operator+=(char c) { buf_[n_++] = c; }
  void operator+=(std::string_view s) { append(s.data(), s.data() + s.size()); }
  void append(const char* begin, const char* end) {
    const auto len = static_cast<std::size_t>(end - begin);
    std::memcpy(buf_ + n_, begin, len);
    n_ += len;
  }
  bool ends_with(std::string_view s) const {
    return n_ >= s.size() && std::memcmp(buf_ + n_ - s.size(), s.data(), s.size()) == 0;
  }

 private:
  char* buf_;
  std::size_t n_ = 0;
};

class Scanner {
 public:
  Scanner(std::string_view sql, char* key)
      : p_(sql.data()), end_(sql.data() + sql.size()), key_(key) {}

  std::size_t key_size() const { return key_.size(); }

  Shape run() {
    while (p_ < end_) {
      step();
    }
    if (stmt_has_tokens_) {
      ++shape_.statements;
    }
    if (!key_.empty() && key_.back() == ';') {
      key_.pop_back();
    }
    if (shape_.hint) {
      key_ += *shape_.hint == Hint::Primary ? " /*pgmux:primary*/" : " /*pgmux:replica*/";
    }
    if (shape_.unterminated) {
      key_ += " /*unterminated*/";
    }
    return shape_;
  }

 private:
  void step() {
    const char c = *p_;
    const std::uint8_t cls = kClasses[static_cast<unsigned char>(c)];
    if (cls & kSpace) {
      while (p_ < end_ && is(*p_, kSpace)) {
        ++p_;
      }
      space_ = true;
    } else if (cls & kIdentStart) {
      word();
    } else if (cls & kDigit) {
      number();
    } else {
      switch (c) {
        case '\'': quoted_literal(p_, false); break;
        case '"': quoted_identifier(p_); break;
        case '$': dollar(); break;
        case '-':
          if (p_ + 1 < end_ && p_[1] == '-') {
            line_comment();
          } else {
            other(c);
          }
          break;
        case '/':
          if (p_ + 1 < end_ && p_[1] == '*') {
            block_comment();
          } else {
            other(c);
          }
          break;
        case '.':
          if (p_ + 1 < end_ && is(p_[1], kDigit)) {
            number();
          } else {
            other(c);
          }
          break;
        case ';': semicolon(); break;
        default: other(c); break;
      }
    }
  }

  // Before a token starting with `next`: one space if the text had whitespace or a comment
  // here and neither neighbour is a tight character.
  void separate(char next) {
    if (space_ && !key_.empty() && !is(key_.back(), kTight) && !is(next, kTight)) {
      key_ += ' ';
    }
    space_ = false;
    stmt_has_tokens_ = true;
  }

  void emit(const char* begin, const char* end) {
    separate(*begin);
    key_.append(begin, end);
  }

  // A literal spanning [begin, end): '?' (or the text itself in a verbatim statement).
  void literal(const char* begin, const char* end) {
    stmt_start_ = false;
    if (verbatim_) {
      emit(begin, end);
      return;
    }
    separate('?');
    const std::size_t n = key_.size();
    if (n >= 2 && key_[n - 1] == ',' && key_[n - 2] == '?') {
      key_.pop_back();  // "?,?" -> "?": lists of literals of any length share a key
    } else {
      key_ += '?';
    }
  }

  void word() {
    const char* begin = p_;
    while (p_ < end_ && is(*p_, kIdentCont)) {
      ++p_;
    }
    const std::size_t len = static_cast<std::size_t>(p_ - begin);
    if (p_ < end_ && len == 1) {
      const char prefix = lower(*begin);
      if (*p_ == '\'' && (prefix == 'e' || prefix == 'b' || prefix == 'x' || prefix == 'n')) {
        quoted_literal(begin, prefix == 'e');
        return;
      }
      if (prefix == 'u' && *p_ == '&' && p_ + 1 < end_ && (p_[1] == '\'' || p_[1] == '"')) {
        ++p_;
        if (*p_ == '\'') {
          quoted_literal(begin, false);
        } else {
          quoted_identifier(begin);
        }
        return;
      }
    }
    const std::string_view text(begin, len);
    if (stmt_start_) {
      const FirstKeyword kw = keyword_of(text);
      verbatim_ = kw == FirstKeyword::Set || kw == FirstKeyword::Explain;
      if (shape_.statements == 0) {
        shape_.first_keyword = kw;
      }
    } else if (shape_.statements == 0 && shape_.first_keyword == FirstKeyword::Copy &&
               depth_ == 0 && iequals(text, "from")) {
      shape_.copy_from = true;
    }
    stmt_start_ = false;
    emit(begin, p_);
  }

  // Numbers, and any run of digits, letters, '_' and '.' glued to them (0x1F, 1_000, and
  // the "trailing junk" PostgreSQL 15 rejects): one literal. A sign right after the e of a
  // decimal exponent belongs to it.
  void number() {
    const char* begin = p_;
    const bool radix = *p_ == '0' && p_ + 1 < end_ && std::strchr("xXoObB", p_[1]) != nullptr &&
                       p_[1] != '\0';
    while (p_ < end_) {
      const char c = *p_;
      if (is(c, kIdentCont) && c != '$') {
        ++p_;
      } else if (c == '.') {
        ++p_;
      } else if ((c == '+' || c == '-') && !radix && (p_[-1] == 'e' || p_[-1] == 'E') &&
                 p_ + 1 < end_ && is(p_[1], kDigit)) {
        ++p_;
      } else {
        break;
      }
    }
    literal(begin, p_);
  }

  // At `begin` (a prefix letter or the opening quote; p_ at the quote): a quoted string up
  // to its closing quote. '' is a quote inside; with backslashes (E'...') \x escapes x.
  void quoted_literal(const char* begin, bool backslashes) {
    ++p_;  // opening quote
    while (p_ < end_) {
      const char c = *p_++;
      if (c == '\\' && backslashes) {
        if (p_ < end_) {
          ++p_;
        }
      } else if (c == '\'') {
        if (p_ < end_ && *p_ == '\'') {
          ++p_;
        } else {
          literal(begin, p_);
          return;
        }
      }
    }
    shape_.unterminated = true;
    literal(begin, p_);
  }

  // "identifier" with "" inside; kept as written.
  void quoted_identifier(const char* begin) {
    ++p_;
    while (p_ < end_) {
      const char c = *p_++;
      if (c == '"') {
        if (p_ < end_ && *p_ == '"') {
          ++p_;
        } else {
          stmt_start_ = false;
          emit(begin, p_);
          return;
        }
      }
    }
    shape_.unterminated = true;
    emit(begin, p_);
  }

  // $1 (a parameter, kept), $$...$$ or $tag$...$tag$ (a literal), or a lone '$'.
  void dollar() {
    const char* begin = p_;
    const char* q = p_ + 1;
    if (q < end_ && is(*q, kDigit)) {
      while (q < end_ && is(*q, kDigit)) {
        ++q;
      }
      p_ = q;
      stmt_start_ = false;
      emit(begin, p_);
      return;
    }
    if (q < end_ && is(*q, kIdentStart)) {
      while (q < end_ && is(*q, kIdentCont) && *q != '$') {
        ++q;
      }
    }
    if (q >= end_ || *q != '$') {
      other('$');
      return;
    }
    const std::string_view tag(begin, static_cast<std::size_t>(q - begin + 1));  // "$tag$"
    const std::string_view rest(q + 1, static_cast<std::size_t>(end_ - q - 1));
    const std::size_t close = rest.find(tag);
    if (close == std::string_view::npos) {
      shape_.unterminated = true;
      p_ = end_;
    } else {
      p_ = rest.data() + close + tag.size();
    }
    literal(begin, p_);
  }

  void line_comment() {
    const char* begin = p_ + 2;
    const void* nl = std::memchr(begin, '\n', static_cast<std::size_t>(end_ - begin));
    p_ = nl != nullptr ? static_cast<const char*>(nl) : end_;
    find_hints(std::string_view(begin, static_cast<std::size_t>(p_ - begin)), shape_.hint);
    space_ = true;
  }

  // /* ... */ with nesting, as PostgreSQL allows.
  void block_comment() {
    const char* begin = p_ + 2;
    p_ += 2;
    int level = 1;
    while (p_ < end_ && level > 0) {
      if (*p_ == '*' && p_ + 1 < end_ && p_[1] == '/') {
        --level;
        p_ += 2;
      } else if (*p_ == '/' && p_ + 1 < end_ && p_[1] == '*') {
        ++level;
        p_ += 2;
      } else {
        ++p_;
      }
    }
    if (level > 0) {
      shape_.unterminated = true;
    }
    find_hints(std::string_view(begin, static_cast<std::size_t>(p_ - begin)), shape_.hint);
    space_ = true;
  }

  void semicolon() {
    ++p_;
    if (stmt_has_tokens_) {
      ++shape_.statements;
      space_ = false;
      key_ += ';';
    }
    stmt_has_tokens_ = false;
    stmt_start_ = true;
    verbatim_ = false;
    depth_ = 0;
  }

  // Operators and punctuation, one character at a time.
  void other(char c) {
    ++p_;
    separate(c);
    stmt_start_ = false;
    key_ += c;
    if (c == '(') {
      ++depth_;
    } else if (c == ')') {
      --depth_;
      // "(?),(?)" -> "(?)": multi-row VALUES of any length share a key.
      if (!verbatim_ && key_.ends_with("(?),(?)")) {
        key_.resize(key_.size() - 4);
      }
    }
  }

  const char* p_;
  const char* end_;
  KeyWriter key_;
  Shape shape_;
  bool space_ = false;
  bool stmt_start_ = true;
  bool stmt_has_tokens_ = false;
  bool verbatim_ = false;
  int depth_ = 0;
};

}  // namespace

Shape scan_shape(std::string_view sql, std::string& key) {
  Shape shape;
  key.resize_and_overwrite(sql.size() + kKeySlack, [&](char* buf, std::size_t) {
    Scanner scanner(sql, buf);
    shape = scanner.run();
    return scanner.key_size();
  });
  return shape;
}

std::optional<StatementKind> fast_classify(const Shape& shape) {
  if (shape.statements != 1 || shape.unterminated) {
    return std::nullopt;
  }
  switch (shape.first_keyword) {
    case FirstKeyword::Insert: return StatementKind::Insert;
    case FirstKeyword::Update: return StatementKind::Update;
    case FirstKeyword::Delete: return StatementKind::Delete;
    case FirstKeyword::Merge: return StatementKind::Merge;
    case FirstKeyword::Create:
    case FirstKeyword::Alter:
    case FirstKeyword::Drop:
    case FirstKeyword::Truncate:
    case FirstKeyword::Grant:
    case FirstKeyword::Revoke: return StatementKind::Ddl;
    case FirstKeyword::Copy:
      return shape.copy_from ? std::optional(StatementKind::Copy) : std::nullopt;
    case FirstKeyword::None:
    case FirstKeyword::Set:
    case FirstKeyword::Explain:
    case FirstKeyword::Other: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<StatementKind> fast_classify(std::string_view sql) {
  std::string key;
  return fast_classify(scan_shape(sql, key));
}

namespace {

inline std::uint64_t load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// 64x64 -> 128-bit multiply, folded: the mixing step of many fast hashes.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

}  // namespace

std::uint64_t hash_key(std::string_view key, std::uint64_t seed) {
  constexpr std::uint64_t k1 = 0x9E3779B97F4A7C15ULL;
  constexpr std::uint64_t k2 = 0xD6E8FEB86659FD93ULL;
  constexpr std::uint64_t k3 = 0xA0761D6478BD642FULL;
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t h = seed ^ fold_mul(n ^ k1, k2);
  while (n >= 16) {
    h = fold_mul(load64(p) ^ k1 ^ h, load64(p + 8) ^ k3);
    p += 16;
    n -= 16;
  }
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n >= 8) {
    a = load64(p);
    std::memcpy(&b, p + 8, n - 8);
  } else {
    std::memcpy(&a, p, n);
  }
  h = fold_mul(a ^ k1 ^ h, b ^ k3 ^ n);
  return fold_mul(h ^ k2, k1);
}

}  // namespace parser
