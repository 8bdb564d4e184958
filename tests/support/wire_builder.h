#pragma once
// Builds PostgreSQL protocol bytes by named fields, for tests. Written by hand from
// "Message Formats" in the PostgreSQL docs, independently of pooler/wire's encoders, so
// that tests of the codec do not check the codec against itself.
//
//   auto bytes = WireBuilder::parse("s1", "SELECT $1", {23});
//   auto forged = WireBuilder::with_length(WireBuilder::sync(), 3);

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pooler::test {

using Bytes = std::vector<std::byte>;

// A message body, field by field (big-endian integers, NUL-terminated strings).
class Body {
 public:
  Body& u8(std::uint8_t v) {
    bytes_.push_back(static_cast<std::byte>(v));
    return *this;
  }
  Body& u16(std::uint16_t v) {
    return u8(static_cast<std::uint8_t>(v >> 8)).u8(static_cast<std::uint8_t>(v));
  }
  Body& u32(std::uint32_t v) {
    return u16(static_cast<std::uint16_t>(v >> 16)).u16(static_cast<std::uint16_t>(v));
  }
  Body& i16(std::int16_t v) { return u16(static_cast<std::uint16_t>(v)); }
  Body& i32(std::int32_t v) { return u32(static_cast<std::uint32_t>(v)); }
  Body& str(std::string_view s) {  // without terminator
    for (const char c : s) {
      u8(static_cast<std::uint8_t>(c));
    }
    return *this;
  }
  Body& cstr(std::string_view s) { return str(s).u8(0); }
  Body& bytes(std::span<const std::byte> b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  const Bytes& data() const { return bytes_; }
  Bytes take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

class WireBuilder {
 public:
  using Params = std::vector<std::pair<std::string, std::string>>;
  using Fields = std::vector<std::pair<char, std::string>>;

  static constexpr std::uint32_t kProtocol3 = 196608;
  static constexpr std::uint32_t kCancelCode = 80877102;
  static constexpr std::uint32_t kSslCode = 80877103;
  static constexpr std::uint32_t kGssEncCode = 80877104;

  // ---- Generic ----

  // A regular message: type byte, length word (counting itself and `body`), body.
  static Bytes raw(char type, std::span<const std::byte> body) {
    Body b;
    b.u8(static_cast<std::uint8_t>(type))
        .u32(static_cast<std::uint32_t>(body.size() + 4))
        .bytes(body);
    return b.take();
  }
  static Bytes raw(char type, const Body& body) { return raw(type, body.data()); }
  static Bytes raw(char type, std::string_view body) { return raw(type, Body().str(body)); }
  // A startup-phase packet: length word, body.
  static Bytes untyped(std::span<const std::byte> body) {
    Body b;
    b.u32(static_cast<std::uint32_t>(body.size() + 4)).bytes(body);
    return b.take();
  }
  static Bytes untyped(const Body& body) { return untyped(body.data()); }

  // `msg` with its length word replaced by `n` (forged lengths). `typed` = regular phase.
  static Bytes with_length(Bytes msg, std::uint32_t n, bool typed = true) {
    const std::size_t at = typed ? 1 : 0;
    msg.at(at + 0) = static_cast<std::byte>(n >> 24);
    msg.at(at + 1) = static_cast<std::byte>(n >> 16);
    msg.at(at + 2) = static_cast<std::byte>(n >> 8);
    msg.at(at + 3) = static_cast<std::byte>(n);
    return msg;
  }
  // Just a header: type byte and length word, no body (for length checks).
  static Bytes header(char type, std::uint32_t length) {
    return Body().u8(static_cast<std::uint8_t>(type)).u32(length).take();
  }

  static Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) {
      out.insert(out.end(), p.begin(), p.end());
    }
    return out;
  }

  // ---- Startup phase (frontend, no type byte) ----

  static Bytes startup(const Params& params, std::uint32_t protocol = kProtocol3) {
    Body b;
    b.u32(protocol);
    for (const auto& [name, value] : params) {
      b.cstr(name).cstr(value);
    }
    b.u8(0);
    return untyped(b);
  }
  static Bytes ssl_request() { return untyped(Body().u32(kSslCode)); }
  static Bytes gssenc_request() { return untyped(Body().u32(kGssEncCode)); }
  static Bytes cancel_request(std::int32_t pid, std::int32_t secret) {
    return untyped(Body().u32(kCancelCode).i32(pid).i32(secret));
  }

  // ---- Frontend ----

  static Bytes query(std::string_view sql) { return raw('Q', Body().cstr(sql)); }
  static Bytes parse(std::string_view name, std::string_view sql,
                     const std::vector<std::uint32_t>& oids = {}) {
    Body b;
    b.cstr(name).cstr(sql).u16(static_cast<std::uint16_t>(oids.size()));
    for (const auto oid : oids) {
      b.u32(oid);
    }
    return raw('P', b);
  }
  // Text-format parameters (std::nullopt = NULL), all results in text.
  static Bytes bind(std::string_view portal, std::string_view statement,
                    const std::vector<std::optional<std::string>>& params = {}) {
    return raw('B', bind_body(portal, statement, params));
  }
  static Body bind_body(std::string_view portal, std::string_view statement,
                        const std::vector<std::optional<std::string>>& params = {}) {
    Body b;
    b.cstr(portal).cstr(statement);
    b.u16(0);  // parameter format codes: all text
    b.u16(static_cast<std::uint16_t>(params.size()));
    for (const auto& p : params) {
      if (p) {
        b.i32(static_cast<std::int32_t>(p->size())).str(*p);
      } else {
        b.i32(-1);
      }
    }
    b.u16(0);  // result format codes: all text
    return b;
  }
  static Bytes describe(char target, std::string_view name) {
    return raw('D', Body().u8(static_cast<std::uint8_t>(target)).cstr(name));
  }
  static Bytes close(char target, std::string_view name) {
    return raw('C', Body().u8(static_cast<std::uint8_t>(target)).cstr(name));
  }
  static Bytes execute(std::string_view portal, std::int32_t max_rows = 0) {
    return raw('E', Body().cstr(portal).i32(max_rows));
  }
  static Bytes sync() { return raw('S', Body()); }
  static Bytes flush() { return raw('H', Body()); }
  static Bytes terminate() { return raw('X', Body()); }
  static Bytes password(std::string_view password) { return raw('p', Body().cstr(password)); }
  // SASLInitialResponse; std::nullopt sends length -1 (no initial response).
  static Bytes sasl_initial_response(std::string_view mechanism,
                                     std::optional<std::string_view> data) {
    Body b;
    b.cstr(mechanism);
    if (data) {
      b.i32(static_cast<std::int32_t>(data->size())).str(*data);
    } else {
      b.i32(-1);
    }
    return raw('p', b);
  }
  static Bytes sasl_response(std::string_view data) { return raw('p', Body().str(data)); }
  static Bytes copy_data(std::string_view data) { return raw('d', Body().str(data)); }
  static Bytes copy_done() { return raw('c', Body()); }
  static Bytes copy_fail(std::string_view why) { return raw('f', Body().cstr(why)); }

  // ---- Backend ----

  static Bytes authentication(std::int32_t code, std::span<const std::byte> data = {}) {
    return raw('R', Body().i32(code).bytes(data));
  }
  static Bytes authentication(std::int32_t code, std::string_view data) {
    return raw('R', Body().i32(code).str(data));
  }
  static Bytes auth_sasl(const std::vector<std::string>& mechanisms) {
    Body b;
    b.i32(10);
    for (const auto& m : mechanisms) {
      b.cstr(m);
    }
    b.u8(0);
    return raw('R', b);
  }
  static Bytes parameter_status(std::string_view name, std::string_view value) {
    return raw('S', Body().cstr(name).cstr(value));
  }
  static Bytes backend_key_data(std::int32_t pid, std::int32_t secret) {
    return raw('K', Body().i32(pid).i32(secret));
  }
  static Bytes ready_for_query(char status) {
    return raw('Z', Body().u8(static_cast<std::uint8_t>(status)));
  }
  static Bytes command_complete(std::string_view tag) { return raw('C', Body().cstr(tag)); }
  static Bytes error_response(const Fields& fields) { return raw('E', fields_body(fields)); }
  static Bytes notice_response(const Fields& fields) { return raw('N', fields_body(fields)); }
  static Body fields_body(const Fields& fields) {
    Body b;
    for (const auto& [code, value] : fields) {
      b.u8(static_cast<std::uint8_t>(code)).cstr(value);
    }
    b.u8(0);
    return b;
  }
  static Bytes parse_complete() { return raw('1', Body()); }
  static Bytes bind_complete() { return raw('2', Body()); }
  static Bytes close_complete() { return raw('3', Body()); }
  static Bytes no_data() { return raw('n', Body()); }
  static Bytes empty_query_response() { return raw('I', Body()); }
  static Bytes portal_suspended() { return raw('s', Body()); }
  static Bytes parameter_description(const std::vector<std::uint32_t>& oids) {
    Body b;
    b.u16(static_cast<std::uint16_t>(oids.size()));
    for (const auto oid : oids) {
      b.u32(oid);
    }
    return raw('t', b);
  }
  // RowDescription with text columns of type text (oid 25).
  static Bytes row_description(const std::vector<std::string>& columns) {
    Body b;
    b.u16(static_cast<std::uint16_t>(columns.size()));
    for (const auto& c : columns) {
      b.cstr(c).u32(0).u16(0).u32(25).i16(-1).i32(-1).u16(0);
    }
    return raw('T', b);
  }
  static Bytes data_row(const std::vector<std::optional<std::string>>& values) {
    Body b;
    b.u16(static_cast<std::uint16_t>(values.size()));
    for (const auto& v : values) {
      if (v) {
        b.i32(static_cast<std::int32_t>(v->size())).str(*v);
      } else {
        b.i32(-1);
      }
    }
    return raw('D', b);
  }
  static Bytes notification(std::int32_t pid, std::string_view channel, std::string_view payload) {
    return raw('A', Body().i32(pid).cstr(channel).cstr(payload));
  }
};

// The bytes as a std::string (for comparisons with synthetic replies).
inline std::string as_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline Bytes to_bytes(std::string_view s) {
  Bytes out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    out[i] = static_cast<std::byte>(s[i]);
  }
  return out;
}

}  // namespace pooler::test
