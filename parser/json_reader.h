#pragma once
// A small read-only JSON DOM for libpg_query's parse-tree output (internal to parser/).
// One flat vector of nodes per document; strings stay escaped in the source text until
// str() is asked for, so a parse costs one pass and a few allocations.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/base/result.h"

namespace parser::json {

enum class Type : std::uint8_t { Missing, Null, Bool, Number, String, Array, Object };

class Document;

// A view of one node; a default or Missing value answers every question with "nothing".
// Valid while its Document lives.
class Value {
 public:
  Value() = default;

  Type type() const;
  bool exists() const { return type() != Type::Missing; }
  bool is_object() const { return type() == Type::Object; }
  bool is_array() const { return type() == Type::Array; }
  bool is_string() const { return type() == Type::String; }

  // Object member by key (keys compared unescaped-as-written; libpg_query keys are ASCII).
  Value operator[](std::string_view key) const;
  // For an object with exactly one member: its key ("SelectStmt" for a wrapped node).
  std::string_view only_key() const;
  // The key under which this value sits in its parent object ("" in arrays).
  std::string_view key() const;

  std::string str() const;       // String: unescaped; Number/Bool: the literal text
  std::int64_t as_int() const;   // Number: its value; anything else: 0
  bool as_bool() const;          // Bool true: true; anything else: false
  std::size_t size() const;      // members or elements

  // Children (array elements or object members), in order.
  class Iterator {
   public:
    Iterator(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
    Value operator*() const { return Value(doc_, index_); }
    Iterator& operator++();
    bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    const Document* doc_;
    std::uint32_t index_;
  };
  Iterator begin() const;
  Iterator end() const { return Iterator(doc_, 0); }

 private:
  friend class Document;
  Value(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  const Document* doc_ = nullptr;
  std::uint32_t index_ = 0;  // 0 = missing (node 0 is a sentinel)
};

class Document {
 public:
  // Deeper documents are rejected, so walks over them cannot exhaust the stack.
  static constexpr int kMaxDepth = 1000;

  // `text` must outlive the document and every Value taken from it.
  [[nodiscard]] static pooler::Result<Document> parse(std::string_view text);

  Value root() const { return Value(this, nodes_.size() > 1 ? 1 : 0); }

 private:
  friend class Value;
  friend class Parser;
  struct Node {
    Type type = Type::Missing;
    std::uint32_t next = 0;         // next sibling, 0 = none
    std::uint32_t first_child = 0;  // 0 = none
    std::uint32_t count = 0;        // children
    std::string_view key;           // member key when the parent is an object
    std::string_view text;          // String: the escaped contents; Number/Bool: the literal
  };
  std::vector<Node> nodes_;
};

}  // namespace parser::json
