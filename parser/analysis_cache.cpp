#include "parser/analysis_cache.h"

#include <algorithm>

#include "parser/analyzer.h"
#include "parser/query_shape.h"

namespace parser {
namespace {

constexpr std::uint64_t kSimpleSeed = 0x51;    // 'Q'
constexpr std::uint64_t kExtendedSeed = 0x50;  // 'P'

// Only the beginning of a text too long to parse is looked at, for its hint and kind.
constexpr std::size_t kLongTextPrefix = 4096;

Analysis shallow(StatementKind kind, const Shape& shape, const std::string& literal_free) {
  Analysis a;
  a.shallow = true;
  StatementInfo info;
  info.kind = kind;
  info.read_only = false;
  a.statements.push_back(std::move(info));
  a.hint = shape.hint;
  a.fingerprint = hash_key(literal_free, kKeyFingerprintSeed);
  a.normalized = literal_free;
  return a;
}

}  // namespace

AnalysisCache::AnalysisCache(Options options) : options_(options) {
  index_.reserve(std::min<std::size_t>(options_.capacity, 65536));
}

const Analysis& AnalysisCache::get(std::string_view sql, bool extended) {
  if (sql.size() > options_.max_sql_bytes) {
    ++stats_.misses;
    Shape shape = scan_shape(sql.substr(0, kLongTextPrefix), scratch_);
    shape.statements = 1;  // only the first keyword matters here
    shape.unterminated = false;
    Analysis a = shallow(fast_classify(shape).value_or(StatementKind::Other), shape, scratch_);
    a.error = "not analysed: longer than max_sql_bytes";
    return uncached(std::move(a));
  }

  // The same text as the last call (routing and statistics look at the same request one
  // after the other): its answer again, without the scan.
  if (last_ != nullptr && extended == last_extended_ && sql == last_text_) {
    ++stats_.hits;
    return *last_;
  }
  last_ = nullptr;
  Shape shape;
  std::string_view text = sql;
  if (!extended) {
    shape = scan_shape(sql, key_);
    text = key_;
  }
  const KeyRef ref{text, hash_key(text, extended ? kExtendedSeed : kSimpleSeed), extended};
  if (const auto it = index_.find(ref); it != index_.end()) {
    ++stats_.hits;
    Slot& slot = slots_[it->second];
    slot.referenced = true;
    remember(sql, extended, slot.analysis);
    return slot.analysis;
  }

  ++stats_.misses;
  if (extended) {
    shape = scan_shape(sql, scratch_);
  }
  const std::string& literal_free = extended ? scratch_ : key_;
  Analysis a;
  if (const auto kind = options_.fast_classify ? fast_classify(shape) : std::nullopt) {
    ++stats_.fast_classified;
    a = shallow(*kind, shape, literal_free);
  } else {
    ++stats_.parses;
    auto analysed = analyze(sql);
    if (analysed) {
      a = std::move(*analysed);
    } else {
      a.parse_error = true;
      a.error = std::move(analysed.error().message);
      a.hint = shape.hint;
      a.fingerprint = hash_key(literal_free, kKeyFingerprintSeed);
      a.normalized = literal_free;
    }
  }
  if (a.parse_error || options_.capacity == 0) {
    return uncached(std::move(a));
  }
  const Analysis& stored = insert(ref, std::move(a));
  remember(sql, extended, stored);
  return stored;
}

void AnalysisCache::remember(std::string_view sql, bool extended, const Analysis& analysis) {
  last_text_.assign(sql);
  last_extended_ = extended;
  last_ = &analysis;
}

const Analysis& AnalysisCache::uncached(Analysis analysis) {
  ++stats_.uncached;
  last_uncached_ = std::move(analysis);
  return last_uncached_;
}

const Analysis& AnalysisCache::insert(const KeyRef& key, Analysis analysis) {
  std::size_t i = 0;
  if (slots_.size() < options_.capacity) {
    slots_.emplace_back();  // a deque: the other slots (and the keys they hold) stay put
    i = slots_.size() - 1;
  } else {
    i = victim();
    const Slot& old = slots_[i];
    index_.erase(KeyRef{old.key, old.hash, old.extended});
    ++stats_.evictions;
  }
  Slot& slot = slots_[i];
  slot.key.assign(key.text);
  slot.hash = key.hash;
  slot.extended = key.extended;
  slot.referenced = false;
  slot.analysis = std::move(analysis);
  index_.emplace(KeyRef{slot.key, slot.hash, slot.extended}, static_cast<std::uint32_t>(i));
  return slot.analysis;
}

// CLOCK: the first slot from the hand not used since the hand last passed it.
std::size_t AnalysisCache::victim() {
  while (true) {
    Slot& slot = slots_[hand_];
    const std::size_t i = hand_;
    hand_ = (hand_ + 1) % slots_.size();
    if (!slot.referenced) {
      return i;
    }
    slot.referenced = false;
  }
}

void AnalysisCache::clear() {
  last_ = nullptr;
  index_.clear();
  slots_.clear();
  hand_ = 0;
}

}  // namespace parser
