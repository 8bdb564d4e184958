#include "pooler/base/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>

namespace pooler::log {
namespace {

// Separates an event's message from its fields, which event() has already rendered as
// JSON members (",\"key\":value...").
constexpr char kFieldsMark = '\x1f';

std::atomic<bool> g_json{false};

// Renders the message as a JSON string value, closing quote included, then an event's
// fields as members of their own, so every line is one valid JSON object.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string_view fields;
    if (const auto mark = payload.find(kFieldsMark); mark != std::string_view::npos) {
      fields = payload.substr(mark + 1);
      payload = payload.substr(0, mark);
    }
    const std::string escaped = json_escape(payload);
    dest.append(escaped.data(), escaped.data() + escaped.size());
    dest.push_back('"');
    dest.append(fields.data(), fields.data() + fields.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void setup(Format format, spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("pgmux", sink);
  g_json.store(format == Format::Json, std::memory_order_relaxed);
  if (format == Format::Json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%*})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

std::string first_line(const char* message) {
  std::string m = message != nullptr ? message : "";
  if (auto nl = m.find('\n'); nl != std::string::npos) {
    m.resize(nl);
  }
  return m;
}

void set_level(spdlog::level::level_enum level) { spdlog::default_logger()->set_level(level); }

void event(spdlog::level::level_enum level, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!spdlog::should_log(level)) {
    return;
  }
  std::string line(message);
  if (g_json.load(std::memory_order_relaxed)) {
    line += kFieldsMark;
    for (const Field& f : fields) {
      line += ",\"";
      line += f.key;
      line += f.quoted ? "\":\"" + json_escape(f.value) + "\"" : "\":" + f.value;
    }
  } else {
    for (const Field& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      const bool quote = f.quoted && f.value.find_first_of(" \"=") != std::string::npos;
      line += quote ? "\"" + json_escape(f.value) + "\"" : f.value;
    }
  }
  spdlog::log(level, "{}", line);
}

bool parse_level(std::string_view name, spdlog::level::level_enum& out) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warning", spdlog::level::warn},
      {"warn", spdlog::level::warn},   {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off}};
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      out = l;
      return true;
    }
  }
  return false;
}

}  // namespace pooler::log
