#include "parser/json_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace parser::json {
namespace {

// Objects, arrays, scalars and member lookup.
TEST(JsonReaderTest, ReadsValues) {
  const std::string text =
      R"({"a": 1, "b": [true, false, null, -2.5e3], "c": {"d": "x\"y\\z"}, "e": {}})";
  auto doc = Document::parse(text);
  ASSERT_TRUE(doc);
  const Value root = doc->root();
  EXPECT_EQ(root["a"].as_int(), 1);
  EXPECT_EQ(root["b"].size(), 4u);
  int n = 0;
  for (Value v : root["b"]) {
    EXPECT_TRUE(n != 0 || v.as_bool());
    ++n;
  }
  EXPECT_EQ(n, 4);
  EXPECT_EQ(root["c"]["d"].str(), "x\"y\\z");
  EXPECT_EQ(root["c"].only_key(), "d");
  EXPECT_EQ(root["e"].size(), 0u);
  EXPECT_FALSE(root["missing"].exists());
  EXPECT_FALSE(root["missing"]["deeper"].exists());
  EXPECT_EQ(root["missing"].str(), "");
}

// \uXXXX escapes (libpg_query writes < > & that way), surrogate pairs included.
TEST(JsonReaderTest, UnicodeEscapes) {
  auto doc = Document::parse(R"(["\u003e=", "caf\u00e9", "\ud83d\ude00", "a\nb"])");
  ASSERT_TRUE(doc);
  std::vector<std::string> out;
  for (Value v : doc->root()) {
    out.push_back(v.str());
  }
  EXPECT_EQ(out, (std::vector<std::string>{">=", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "a\nb"}));
}

// Malformed or too deeply nested documents are errors, not crashes.
TEST(JsonReaderTest, RejectsMalformed) {
  for (const char* text : {"", "{", "[1,", "{\"a\" 1}", "{\"a\":}", "[1] x", "\"abc", "tru",
                           "{1: 2}"}) {
    EXPECT_FALSE(Document::parse(text)) << text;
  }
  const std::string deep = std::string(Document::kMaxDepth + 5, '[') +
                           std::string(Document::kMaxDepth + 5, ']');
  EXPECT_FALSE(Document::parse(deep));
  const std::string ok = std::string(100, '[') + std::string(100, ']');
  EXPECT_TRUE(Document::parse(ok));
}

}  // namespace
}  // namespace parser::json
