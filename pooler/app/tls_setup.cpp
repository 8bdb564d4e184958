#include "pooler/app/tls_setup.h"

#include <algorithm>

namespace pooler::app {
namespace {

bool verifies(config::SslMode mode) { return mode >= config::SslMode::VerifyCa; }

// The message names where the broken setting is, as the config loader's do.
std::unexpected<Error> in_section(std::string_view section, const Error& error) {
  return fail(Errc::Config, std::string(section) + ": " + error.message);
}

}  // namespace

Result<std::shared_ptr<const net::TlsSetup>> build_tls(const config::Config& config) {
  auto setup = std::make_shared<net::TlsSetup>();
  const config::TlsConfig& general = config.general.tls;
  // The client handshake uses [pgmux]'s certificate whenever one is configured and any
  // database accepts TLS: the database is named only after the handshake.
  const bool any_client_tls = general.client_sslmode != config::SslMode::Disable ||
                              std::ranges::any_of(config.databases, [](const auto& entry) {
                                return entry.second.tls.client_sslmode != config::SslMode::Disable;
                              });
  // Client certificates are asked for when a mode or an [[hba]] cert rule may check one.
  const bool any_verify = verifies(general.client_sslmode) ||
                          std::ranges::any_of(config.databases,
                                              [](const auto& entry) {
                                                return verifies(entry.second.tls.client_sslmode);
                                              }) ||
                          std::ranges::any_of(config.hba, [](const config::HbaRule& rule) {
                            return rule.method == config::HbaRule::Method::Cert;
                          });
  if (any_client_tls && !general.client_cert_file.empty()) {
    net::TlsServerOptions options;
    options.cert_file = general.client_cert_file;
    options.key_file = general.client_key_file;
    options.ca_file = general.client_ca_file;
    options.request_client_cert = any_verify;
    options.min_protocol = general.client_min_protocol;
    options.max_protocol = general.client_max_protocol;
    options.ciphers = general.client_ciphers;
    auto context = net::TlsContext::make_server(options);
    if (!context) {
      return in_section("[pgmux]", context.error());
    }
    setup->for_clients = std::move(*context);
  }
  // One trust store per distinct CA file.
  std::map<std::string, std::shared_ptr<const net::TlsTrust>> trusts;
  auto trust_for = [&](const std::string& file) -> Result<std::shared_ptr<const net::TlsTrust>> {
    if (auto it = trusts.find(file); it != trusts.end()) {
      return it->second;
    }
    auto loaded = net::TlsTrust::load(file);
    if (loaded) {
      trusts.emplace(file, *loaded);
    }
    return loaded;
  };
  // A trust store wherever a CA file is set: verify-* modes and [[hba]] cert rules use them.
  if (!general.client_ca_file.empty()) {
    auto trust = trust_for(general.client_ca_file);
    if (!trust) {
      return in_section("[pgmux]", trust.error());
    }
    setup->admin_client_trust = *trust;
  }
  for (const auto& [name, db] : config.databases) {
    const std::string section = "[databases." + name + "]";
    if (!db.tls.client_ca_file.empty()) {
      auto trust = trust_for(db.tls.client_ca_file);
      if (!trust) {
        return in_section(section, trust.error());
      }
      setup->client_trust.emplace(name, *trust);
    }
    if (db.tls.server_sslmode != config::SslMode::Disable) {
      net::TlsClientOptions options;
      options.ca_file = db.tls.server_ca_file;
      options.cert_file = db.tls.server_cert_file;
      options.key_file = db.tls.server_key_file;
      auto context = net::TlsContext::make_client(options);
      if (!context) {
        return in_section(section, context.error());
      }
      setup->for_servers.emplace(name, std::move(*context));
    }
  }
  return std::shared_ptr<const net::TlsSetup>(std::move(setup));
}

}  // namespace pooler::app
