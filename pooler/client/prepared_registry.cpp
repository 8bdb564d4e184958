#include "pooler/client/prepared_registry.h"

namespace pooler::client {

namespace {
std::string make_key(std::string_view sql, std::span<const std::byte> param_types) {
  std::string key;
  key.reserve(param_types.size() + 1 + sql.size());
  key.append(reinterpret_cast<const char*>(param_types.data()), param_types.size());
  key.push_back('\0');
  key.append(sql);
  return key;
}
}  // namespace

const PreparedStatement* PreparedRegistry::lookup(std::string_view sql,
                                                  std::span<const std::byte> param_types) const {
  auto it = by_key_.find(make_key(sql, param_types));
  return it == by_key_.end() ? nullptr : &it->second;
}

void PreparedRegistry::mark_validated(std::uint64_t id) {
  auto idit = by_id_.find(id);
  if (idit != by_id_.end()) {
    if (auto it = by_key_.find(idit->second); it != by_key_.end()) {
      it->second.validated = true;
    }
  }
}

PreparedStatement& PreparedRegistry::acquire(std::string_view sql,
                                             std::span<const std::byte> param_types) {
  std::string key = make_key(sql, param_types);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    PreparedStatement st;
    st.id = next_id_++;
    st.sql.assign(sql);
    st.param_types.assign(reinterpret_cast<const char*>(param_types.data()), param_types.size());
    by_id_.emplace(st.id, key);
    it = by_key_.emplace(std::move(key), std::move(st)).first;
  }
  ++it->second.clients;
  return it->second;
}

PreparedStatement& PreparedRegistry::acquire_sql(std::string_view rest) {
  // A parameter-type block never starts with 0xff 0xff (65535 parameters): a safe prefix.
  static constexpr std::byte kSqlForm[] = {std::byte{0xff}, std::byte{0xff}, std::byte{'S'}};
  PreparedStatement& st = acquire(rest, kSqlForm);
  st.sql_form = true;
  return st;
}

void PreparedRegistry::release(std::uint64_t id) {
  auto idit = by_id_.find(id);
  if (idit == by_id_.end()) {
    return;
  }
  auto it = by_key_.find(idit->second);
  if (it != by_key_.end() && --it->second.clients <= 0) {
    by_key_.erase(it);
    by_id_.erase(idit);
  }
}

const PreparedStatement* PreparedRegistry::find(std::uint64_t id) const {
  auto idit = by_id_.find(id);
  if (idit == by_id_.end()) {
    return nullptr;
  }
  auto it = by_key_.find(idit->second);
  return it == by_key_.end() ? nullptr : &it->second;
}

}  // namespace pooler::client
