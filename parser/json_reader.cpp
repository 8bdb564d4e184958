#include "parser/json_reader.h"

#include <charconv>

namespace parser::json {

using pooler::Errc;
using pooler::fail;

// Recursive descent over the text, appending nodes in document order.
class Parser {
 public:
  Parser(std::string_view text, std::vector<Document::Node>& nodes) : s_(text), nodes_(nodes) {}

  pooler::Result<void> run() {
    nodes_.push_back({});  // sentinel: index 0 means "missing"
    skip_ws();
    if (!value({}, 0)) {
      return fail(Errc::Parse, error_.empty() ? "malformed JSON" : error_);
    }
    skip_ws();
    if (pos_ != s_.size()) {
      return fail(Errc::Parse, "trailing bytes after JSON value");
    }
    return {};
  }

 private:
  bool value(std::string_view key, int depth) {
    if (depth > Document::kMaxDepth) {
      error_ = "JSON nested too deeply";
      return false;
    }
    if (pos_ >= s_.size()) {
      return false;
    }
    const auto index = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back({});
    nodes_[index].key = key;
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      return container(index, c == '{', depth);
    }
    if (c == '"') {
      nodes_[index].type = Type::String;
      return string(nodes_[index].text);
    }
    const std::size_t start = pos_;
    if (c == 't' || c == 'f' || c == 'n') {
      const std::string_view word = c == 't' ? "true" : c == 'f' ? "false" : "null";
      if (s_.substr(pos_, word.size()) != word) {
        return false;
      }
      pos_ += word.size();
      nodes_[index].type = c == 'n' ? Type::Null : Type::Bool;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ++pos_;
      while (pos_ < s_.size() && (std::string_view("0123456789.eE+-").find(s_[pos_]) !=
                                  std::string_view::npos)) {
        ++pos_;
      }
      nodes_[index].type = Type::Number;
    } else {
      return false;
    }
    nodes_[index].text = s_.substr(start, pos_ - start);
    return true;
  }

  bool container(std::uint32_t index, bool object, int depth) {
    nodes_[index].type = object ? Type::Object : Type::Array;
    const char close = object ? '}' : ']';
    ++pos_;
    skip_ws();
    std::uint32_t previous = 0;
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
      return true;
    }
    while (true) {
      std::string_view key;
      if (object) {
        skip_ws();
        if (pos_ >= s_.size() || s_[pos_] != '"' || !string(key)) {
          return false;
        }
        skip_ws();
        if (pos_ >= s_.size() || s_[pos_] != ':') {
          return false;
        }
        ++pos_;
      }
      skip_ws();
      const auto child = static_cast<std::uint32_t>(nodes_.size());
      if (!value(key, depth + 1)) {
        return false;
      }
      // nodes_ may have grown: index, never references, across value().
      if (previous == 0) {
        nodes_[index].first_child = child;
      } else {
        nodes_[previous].next = child;
      }
      previous = child;
      ++nodes_[index].count;
      skip_ws();
      if (pos_ >= s_.size()) {
        return false;
      }
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == close) {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  // At an opening quote: the escaped contents, checked for a closing quote.
  bool string(std::string_view& out) {
    const std::size_t start = ++pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      if (c == '"') {
        out = s_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      ++pos_;
    }
    return false;
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }

  std::string_view s_;
  std::vector<Document::Node>& nodes_;
  std::size_t pos_ = 0;
  std::string error_;
};

pooler::Result<Document> Document::parse(std::string_view text) {
  Document doc;
  doc.nodes_.reserve(text.size() / 16 + 8);
  Parser parser(text, doc.nodes_);
  if (auto ok = parser.run(); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return doc;
}

Type Value::type() const { return doc_ == nullptr ? Type::Missing : doc_->nodes_[index_].type; }

Value Value::operator[](std::string_view key) const {
  if (type() != Type::Object) {
    return {};
  }
  for (std::uint32_t i = doc_->nodes_[index_].first_child; i != 0; i = doc_->nodes_[i].next) {
    if (doc_->nodes_[i].key == key) {
      return Value(doc_, i);
    }
  }
  return {};
}

std::string_view Value::only_key() const {
  if (type() != Type::Object || doc_->nodes_[index_].count != 1) {
    return {};
  }
  return doc_->nodes_[doc_->nodes_[index_].first_child].key;
}

std::string_view Value::key() const { return doc_ == nullptr ? "" : doc_->nodes_[index_].key; }

std::size_t Value::size() const { return doc_ == nullptr ? 0 : doc_->nodes_[index_].count; }

Value::Iterator Value::begin() const {
  const Type t = type();
  if (t != Type::Object && t != Type::Array) {
    return end();
  }
  return Iterator(doc_, doc_->nodes_[index_].first_child);
}

Value::Iterator& Value::Iterator::operator++() {
  index_ = doc_->nodes_[index_].next;
  return *this;
}

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Four hex digits at `s[i]`, or -1.
int hex4(std::string_view s, std::size_t i) {
  if (i + 4 > s.size()) {
    return -1;
  }
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 4, v, 16);
  return ec == std::errc() && end == s.data() + i + 4 ? static_cast<int>(v) : -1;
}

}  // namespace

std::string Value::str() const {
  const Type t = type();
  if (t == Type::Number || t == Type::Bool) {
    return std::string(doc_->nodes_[index_].text);
  }
  if (t != Type::String) {
    return {};
  }
  const std::string_view s = doc_->nodes_[index_].text;
  if (s.find('\\') == std::string_view::npos) {
    return std::string(s);
  }
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    const char e = s[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        int cp = hex4(s, i + 1);
        if (cp < 0) {
          out += "\\u";
          break;
        }
        i += 4;
        // A UTF-16 surrogate pair encodes one code point above U+FFFF.
        if (cp >= 0xD800 && cp < 0xDC00 && i + 2 < s.size() && s[i + 1] == '\\' &&
            s[i + 2] == 'u') {
          const int low = hex4(s, i + 3);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, static_cast<std::uint32_t>(cp));
        break;
      }
      default: out += e; break;  // \" \\ \/
    }
  }
  return out;
}

std::int64_t Value::as_int() const {
  if (type() != Type::Number) {
    return 0;
  }
  const std::string_view s = doc_->nodes_[index_].text;
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool Value::as_bool() const { return type() == Type::Bool && doc_->nodes_[index_].text == "true"; }

}  // namespace parser::json
