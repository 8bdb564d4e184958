// libFuzzer target: the keyword scanners that run on every simple-protocol Query before any
// parse: parser::scan_shape / fast_classify (parser/query_shape.h) and client::scan_query /
// scan_pins / worth_scanning (pooler/client).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parser/query_shape.h"
#include "pooler/client/client_session_util.h"
#include "pooler/client/query_scan.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);

  std::string key;
  const parser::Shape shape = parser::scan_shape(sql, key);
  FUZZ_CHECK(shape.statements >= 0);
  (void)parser::fast_classify(shape);
  (void)parser::fast_classify(sql);
  // The key is text too: scanning it again must be as safe.
  std::string key2;
  (void)parser::scan_shape(key, key2);

  (void)pooler::client::scan_query(sql);
  (void)pooler::client::scan_pins(sql);
  (void)pooler::client::session_util::worth_scanning(sql);
  return 0;
}
