// TLS through pgmux (issue 7): libpq clients with sslmode=require / verify-full against
// pgmux, client certificates, plaintext refused where TLS is required, a reload that
// swaps the certificate, and pgmux to PostgreSQL over TLS (the fixture's primary switched
// to ssl=on). Certificates come from a throwaway CA made with the openssl command.

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

namespace fs = std::filesystem;

// A CA, a server certificate for localhost / 127.0.0.1, a client certificate with CN=app,
// and a second CA that signed nothing here. Made once per test binary.
class Certificates {
 public:
  static const Certificates& get() {
    static Certificates certs;
    return certs;
  }
  std::string path(std::string_view name) const { return dir_ + "/" + std::string(name); }
  const std::string& error() const { return error_; }

 private:
  Certificates() {
    char templ[] = "/tmp/pgmux-tls-XXXXXX";
    dir_ = ::mkdtemp(templ);
    std::ofstream(path("server.ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                      << "extendedKeyUsage=serverAuth\n";
    std::ofstream(path("client.ext")) << "extendedKeyUsage=clientAuth\n";
    make_ca("ca");
    make_ca("other_ca");
    make_cert("server", "localhost", "ca", "server.ext");
    make_cert("server2", "localhost-reloaded", "ca", "server.ext");
    make_cert("client", "app", "ca", "client.ext");
    make_cert("client_other", "other", "ca", "client.ext");
  }
  ~Certificates() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void run(const std::vector<std::string>& argv) {
    auto result = run_command(argv);
    if (!result.ok() && error_.empty()) {
      error_ = argv[0] + " " + argv[1] + ": " + result.output;
    }
  }
  void make_ca(const std::string& name) {
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", path(name + ".key"), "-out", path(name + ".crt"), "-days", "2",
         "-subj", "/CN=pgmux test " + name});
  }
  void make_cert(const std::string& name, const std::string& cn, const std::string& ca,
                 const std::string& ext) {
    run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", path(name + ".key"), "-out", path(name + ".csr"), "-subj", "/CN=" + cn});
    run({"openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".crt"), "-CAkey",
         path(ca + ".key"), "-CAcreateserial", "-out", path(name + ".crt"), "-days", "2",
         "-extfile", path(ext)});
    ::chmod(path(name + ".key").c_str(), 0600);
  }

  std::string dir_;
  std::string error_;
};

// The common name of the certificate the server presented to `conn`.
std::string peer_common_name(PGconn* conn) {
  auto* ssl = static_cast<SSL*>(PQsslStruct(conn, "OpenSSL"));
  if (ssl == nullptr) {
    return "(no TLS)";
  }
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    return "(no certificate)";
  }
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return cn;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux binary " << PgmuxProcess::binary_path() << " not built";
    }
    ASSERT_EQ(certs().error(), "");
  }

  static const Certificates& certs() { return Certificates::get(); }

  // [pgmux] lines for client TLS in `mode` with the test's server certificate.
  static std::string client_tls(std::string_view mode, std::string_view cert = "server") {
    const auto& c = certs();
    return "client_tls_sslmode = \"" + std::string(mode) + "\"\n" + "client_tls_cert_file = \"" +
           c.path(std::string(cert) + ".crt") + "\"\n" + "client_tls_key_file = \"" +
           c.path(std::string(cert) + ".key") + "\"\n" + "client_tls_ca_file = \"" +
           c.path("ca.crt") + "\"\n";
  }

  void start(const std::string& pgmux_extra, const std::string& database_extra = "") {
    PgmuxConfigOptions options;
    options.log_level = "info";
    options.pgmux_extra = pgmux_extra;
    options.database_extra = database_extra;
    ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  }

  // A libpq client of pgmux with extra conninfo keywords (they override the defaults).
  ConnectResult client(const std::string& extra, std::string_view user = "app",
                       std::string_view password = "secret") {
    return connect(pgmux_.conninfo(user, password, "app") + " " + extra);
  }

  std::string verify_full(std::string_view ca = "ca.crt", std::string_view host = "127.0.0.1") {
    return "sslmode=verify-full sslrootcert=" + certs().path(ca) + " host=" + std::string(host);
  }

  PgmuxProcess pgmux_;
};

// sslmode=require: the session is encrypted and simple queries, the extended protocol
// and a result far larger than one TLS record or one socket read all come through whole.
TEST_F(TlsTest, RequireCarriesQueriesExtendedProtocolAndLargeResults) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("require")));
  auto c = client("sslmode=require");
  ASSERT_TRUE(c) << c.error << pgmux_.log_tail();
  EXPECT_EQ(PQsslInUse(c.conn.get()), 1);
  EXPECT_EQ(query_value(c.conn, "SELECT 1 + 1"), "2");

  auto params = exec_params(c.conn.get(), "SELECT $1::int * 3, upper($2)", {"14", "tls"});
  ASSERT_TRUE(params.ok()) << params;
  EXPECT_EQ(params.rows.at(0).at(0), "42");
  EXPECT_EQ(params.rows.at(0).at(1), "TLS");

  // About 3 MB: 3000 rows of 1000 characters, each row distinct.
  auto big =
      exec(c.conn, "SELECT i, repeat(chr(65 + i % 26), 1000) FROM generate_series(1, 3000) i");
  ASSERT_TRUE(big.ok()) << big;
  ASSERT_EQ(big.rows.size(), 3000u);
  for (std::size_t i = 0; i < big.rows.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    ASSERT_EQ(big.rows[i][0], std::to_string(n));
    ASSERT_EQ(big.rows[i][1], std::string(1000, static_cast<char>('A' + n % 26))) << "row " << n;
  }

  // A large message from the client too (a 2 MB parameter), echoed back.
  const std::string blob(2 * 1024 * 1024, 'z');
  auto echo =
      exec_params(c.conn.get(), "SELECT length($1), md5($1) = md5(repeat('z', 2097152))", {blob});
  ASSERT_TRUE(echo.ok()) << echo;
  EXPECT_EQ(echo.rows.at(0).at(0), "2097152");
  EXPECT_EQ(echo.rows.at(0).at(1), "t");

  // Transactions keep working across leases on the same TLS client.
  EXPECT_TRUE(exec(c.conn, "BEGIN; CREATE TEMP TABLE IF NOT EXISTS t (x int); ROLLBACK").ok());
  EXPECT_EQ(query_value(c.conn, "SELECT 'still here'"), "still here");
}

// verify-full against the right CA and host name works; against another CA it fails
// with libpq's certificate error.
TEST_F(TlsTest, VerifyFullChecksCaAndHostName) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("require")));
  auto ip = client(verify_full());
  ASSERT_TRUE(ip) << ip.error;
  EXPECT_EQ(query_value(ip.conn, "SELECT 'by ip'"), "by ip");
  auto name = client(verify_full("ca.crt", "localhost"));
  ASSERT_TRUE(name) << name.error;
  EXPECT_EQ(query_value(name.conn, "SELECT 'by name'"), "by name");

  auto wrong = client(verify_full("other_ca.crt"));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error.find("certificate verify failed"), std::string::npos) << wrong.error;
  // pgmux says why too, at info level.
  std::string log;
  for (int i = 0; i < 50 && log.find("TLS handshake failed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = pgmux_.log_text();
  }
  EXPECT_NE(log.find("TLS handshake failed"), std::string::npos) << pgmux_.log_tail();
}

// With client_tls_sslmode = require a plaintext startup gets FATAL 28000 "SSL required".
TEST_F(TlsTest, RequireRefusesPlaintext) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("require")));
  auto plain = client("sslmode=disable");
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error.find("SSL required"), std::string::npos) << plain.error;
  // The refusal did not hurt anyone else.
  auto tls = client("sslmode=require");
  ASSERT_TRUE(tls) << tls.error;
  EXPECT_EQ(query_value(tls.conn, "SELECT 1"), "1");
}

// prefer: TLS when asked, plaintext otherwise. disable (the default): SSLRequest is
// answered 'N', so sslmode=require clients fail and prefer clients use plaintext.
TEST_F(TlsTest, PreferAllowsBothAndDisableAnswersNo) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("prefer")));
  auto tls = client("sslmode=prefer");
  ASSERT_TRUE(tls) << tls.error;
  EXPECT_EQ(PQsslInUse(tls.conn.get()), 1);
  auto plain = client("sslmode=disable");
  ASSERT_TRUE(plain) << plain.error;
  EXPECT_EQ(PQsslInUse(plain.conn.get()), 0);
  EXPECT_EQ(query_value(plain.conn, "SELECT 2"), "2");
  pgmux_.stop();

  PgmuxProcess off;
  PgmuxConfigOptions options;
  options.log_level = "info";
  ASSERT_TRUE(off.start(PgmuxProcess::typical_config(options)));
  auto refused = connect(off.conninfo() + " sslmode=require");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error.find("does not support SSL"), std::string::npos) << refused.error;
  auto fallback = connect(off.conninfo() + " sslmode=prefer");
  ASSERT_TRUE(fallback) << fallback.error;
  EXPECT_EQ(PQsslInUse(fallback.conn.get()), 0);
}

// A database may require TLS while [pgmux] only prefers it.
TEST_F(TlsTest, DatabaseOverridesClientMode) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("prefer"), "client_tls_sslmode = \"require\""));
  auto plain = client("sslmode=disable");
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error.find("SSL required"), std::string::npos) << plain.error;
  auto tls = client("sslmode=require");
  ASSERT_TRUE(tls) << tls.error;
}

// verify-full toward clients: a certificate signed by client_tls_ca_file whose CN is the
// user name gets in; no certificate, or another user's, does not.
TEST_F(TlsTest, ClientCertificateVerifyFull) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("verify-full")));
  const std::string own = "sslmode=require sslcert=" + certs().path("client.crt") +
                          " sslkey=" + certs().path("client.key");
  auto ok = client(own);
  ASSERT_TRUE(ok) << ok.error << pgmux_.log_tail();
  EXPECT_EQ(query_value(ok.conn, "SELECT current_user"), "app");

  // libpq sends no certificate when the files do not exist.
  auto none = client("sslmode=require sslcert=/nonexistent.crt sslkey=/nonexistent.key");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error.find("certificate"), std::string::npos) << none.error;

  const std::string others = "sslmode=require sslcert=" + certs().path("client_other.crt") +
                             " sslkey=" + certs().path("client_other.key");
  auto wrong_user = client(others);
  ASSERT_FALSE(wrong_user);
  EXPECT_NE(wrong_user.error.find("certificate authentication failed"), std::string::npos)
      << wrong_user.error;
}

// An [[hba]] rule with method "cert": a client certificate signed by client_tls_ca_file
// with the user name as CN logs in without a password; without one, or over plaintext,
// the login is refused with the rule's number and the reason.
TEST_F(TlsTest, HbaCertMethod) {
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = client_tls("prefer");
  options.extra = "[[hba]]\nuser = \"app\"\nmethod = \"cert\"\n";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  const std::string cert = "sslmode=require sslcert=" + certs().path("client.crt") +
                           " sslkey=" + certs().path("client.key");
  auto ok = client(cert, "app", "not-the-password");
  ASSERT_TRUE(ok) << ok.error << pgmux_.log_tail();
  EXPECT_EQ(query_value(ok.conn, "SELECT current_user"), "app");

  auto no_cert = client("sslmode=require sslcert=/nonexistent.crt sslkey=/nonexistent.key");
  ASSERT_FALSE(no_cert);
  EXPECT_NE(no_cert.error.find("[[hba]] rule #1 asks for a TLS client certificate"),
            std::string::npos)
      << no_cert.error;
  auto plain = client("sslmode=disable");
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error.find("TLS is off"), std::string::npos) << plain.error;
  // Another user's certificate does not log in as app.
  auto other = client("sslmode=require sslcert=" + certs().path("client_other.crt") +
                      " sslkey=" + certs().path("client_other.key"));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error.find("certificate authentication failed"), std::string::npos)
      << other.error;
}

// SIGHUP with a new certificate: new clients see it, a client connected before keeps
// its session and its queries work.
TEST_F(TlsTest, ReloadSwapsCertificateWithoutDroppingClients) {
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = client_tls("require");
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  auto before = client("sslmode=require");
  ASSERT_TRUE(before) << before.error;
  EXPECT_EQ(peer_common_name(before.conn.get()), "localhost");

  options.pgmux_extra = client_tls("require", "server2");
  pgmux_.rewrite_config(PgmuxProcess::typical_config(options));
  ASSERT_TRUE(pgmux_.signal(SIGHUP));
  std::string seen;
  for (int i = 0; i < 100 && seen != "localhost-reloaded"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto after = client("sslmode=require");
    ASSERT_TRUE(after) << after.error;
    seen = peer_common_name(after.conn.get());
  }
  EXPECT_EQ(seen, "localhost-reloaded") << pgmux_.log_tail();
  EXPECT_EQ(query_value(before.conn, "SELECT 'old session'"), "old session");
  EXPECT_EQ(peer_common_name(before.conn.get()), "localhost");

  // A broken certificate file on reload keeps the running configuration.
  options.pgmux_extra = client_tls("require", "missing");
  pgmux_.rewrite_config(PgmuxProcess::typical_config(options));
  ASSERT_TRUE(pgmux_.signal(SIGHUP));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto still = client("sslmode=require");
  ASSERT_TRUE(still) << still.error;
  EXPECT_EQ(peer_common_name(still.conn.get()), "localhost-reloaded");
  EXPECT_NE(pgmux_.log_text().find("keeping the running configuration"), std::string::npos);
}

// A certificate file that cannot be read stops pgmux at startup with exit status 2.
TEST_F(TlsTest, BadCertificateIsAConfigurationError) {
  PgmuxConfigOptions options;
  options.pgmux_extra = client_tls("require", "missing");
  PgmuxProcess bad;
  EXPECT_FALSE(bad.start(PgmuxProcess::typical_config(options)));
  EXPECT_EQ(bad.stop(), 2);
  EXPECT_NE(bad.log_text().find("cannot load certificate"), std::string::npos) << bad.log_text();
}

// ---- Raw TLS clients: what libpq 15 cannot send ------------------------------------

const std::string kSslRequest = be32(8) + be32(80877103);

// A blocking TCP socket to 127.0.0.1:port with a 5 s receive timeout; -1 on failure.
int tcp_connect(int port) {
  const int fd = connect_loopback(port);
  if (fd >= 0) {
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  return fd;
}

// Reads until the peer closes or the timeout: everything it said.
std::string read_to_end(int fd, SSL* ssl = nullptr) {
  std::string out;
  char buf[4096];
  for (;;) {
    const long n = ssl != nullptr ? SSL_read(ssl, buf, sizeof buf) : ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// An OpenSSL client on a raw socket; `alpn` in wire format ("" for none).
struct RawTls {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  RawTls(int socket, const std::string& alpn) : fd(socket) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned>(alpn.size()));
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
  }
  ~RawTls() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
  }
  bool handshake() { return SSL_connect(ssl) == 1; }
  bool send(const std::string& bytes) {
    return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
};

const std::string kAlpnPostgres = std::string("\x0apostgresql", 11);

// PostgreSQL 17's direct TLS: a ClientHello first, ALPN "postgresql", then the startup
// packet inside TLS; pgmux answers with its authentication request.
TEST_F(TlsTest, DirectTlsWithAlpn) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("require")));
  RawTls tls(tcp_connect(pgmux_.port()), kAlpnPostgres);
  ASSERT_TRUE(tls.handshake()) << pgmux_.log_tail();
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(tls.ssl, &alpn, &alpn_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "postgresql");
  ASSERT_TRUE(tls.send(startup_packet({{"user", "app"}, {"database", "app"}})));
  char first = 0;
  ASSERT_EQ(SSL_read(tls.ssl, &first, 1), 1);
  EXPECT_EQ(first, 'R');  // AuthenticationSASL
}

// Direct TLS without ALPN is refused with PostgreSQL's message, and so is another ALPN.
TEST_F(TlsTest, DirectTlsWithoutAlpnRefused) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("require")));
  {
    RawTls tls(tcp_connect(pgmux_.port()), "");
    ASSERT_TRUE(tls.handshake());
    const std::string said = read_to_end(tls.fd, tls.ssl);
    ASSERT_FALSE(said.empty());
    EXPECT_EQ(said[0], 'E');
    EXPECT_NE(said.find("without ALPN"), std::string::npos) << said;
  }
  RawTls h2(tcp_connect(pgmux_.port()), std::string("\x02h2", 3));
  EXPECT_FALSE(h2.handshake());
}

// Plaintext right behind an SSLRequest, before the 'S' could be read, is refused (it
// could have been injected), as PostgreSQL does (CVE-2021-23214).
TEST_F(TlsTest, PlaintextAfterSslRequestRefused) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("prefer")));
  const int fd = tcp_connect(pgmux_.port());
  ASSERT_GE(fd, 0);
  const std::string both = kSslRequest + startup_packet({{"user", "app"}, {"database", "app"}});
  ASSERT_EQ(::send(fd, both.data(), both.size(), MSG_NOSIGNAL), static_cast<ssize_t>(both.size()));
  const std::string said = read_to_end(fd);
  ::close(fd);
  ASSERT_FALSE(said.empty());
  EXPECT_EQ(said[0], 'E');
  EXPECT_NE(said.find("unencrypted data after SSL request"), std::string::npos) << said;
  EXPECT_NE(said.find("08P01"), std::string::npos) << said;
}

// A second SSLRequest inside the TLS session is a protocol violation.
TEST_F(TlsTest, SecondSslRequestRefused) {
  ASSERT_NO_FATAL_FAILURE(start(client_tls("prefer")));
  const int fd = tcp_connect(pgmux_.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, kSslRequest.data(), kSslRequest.size(), MSG_NOSIGNAL), 8);
  char answer = 0;
  ASSERT_EQ(::recv(fd, &answer, 1, 0), 1);
  ASSERT_EQ(answer, 'S');
  RawTls tls(fd, "");
  ASSERT_TRUE(tls.handshake());
  ASSERT_TRUE(tls.send(kSslRequest));
  const std::string said = read_to_end(tls.fd, tls.ssl);
  ASSERT_FALSE(said.empty());
  EXPECT_EQ(said[0], 'E');
  EXPECT_NE(said.find("after the TLS handshake"), std::string::npos) << said;
}

// ---- pgmux to PostgreSQL over TLS ----------------------------------------------------

// Turns ssl on in the fixture's primary with the test's server certificate (copied into
// the cluster directory, owned by the server's user as PostgreSQL demands), or off again.
::testing::AssertionResult set_server_ssl(bool on, Node node = Node::Primary) {
  auto& pg = PostgresEnvironment::instance();
  const auto& c = Certificates::get();
  struct stat owner {};
  if (::stat(pg.cluster_dir().c_str(), &owner) != 0) {
    return ::testing::AssertionFailure() << "cannot stat " << pg.cluster_dir();
  }
  const std::string cert = pg.cluster_dir() + "/tls_server.crt";
  const std::string key = pg.cluster_dir() + "/tls_server.key";
  fs::copy_file(c.path("server.crt"), cert, fs::copy_options::overwrite_existing);
  fs::copy_file(c.path("server.key"), key, fs::copy_options::overwrite_existing);
  for (const auto& f : {cert, key}) {
    if (::chown(f.c_str(), owner.st_uid, owner.st_gid) != 0 || ::chmod(f.c_str(), 0600) != 0) {
      return ::testing::AssertionFailure() << "cannot hand " << f << " to the server's user";
    }
  }
  auto su = connect(pg.superuser_conninfo(node));
  if (!su) {
    return ::testing::AssertionFailure() << su.error;
  }
  for (const std::string& sql : {"ALTER SYSTEM SET ssl_cert_file = '" + cert + "'",
                                 "ALTER SYSTEM SET ssl_key_file = '" + key + "'",
                                 std::string("ALTER SYSTEM SET ssl = ") + (on ? "on" : "off"),
                                 std::string("SELECT pg_reload_conf()")}) {
    if (auto r = exec(su.conn, sql); !r.ok()) {
      return ::testing::AssertionFailure() << sql << ": " << r;
    }
  }
  // The reload is asynchronous: wait until a new TCP session sees the setting.
  for (int i = 0; i < 100; ++i) {
    auto probe = connect(pg.tcp_conninfo(node, "app", "secret", "app") +
                         " sslmode=" + (on ? "require" : "disable"));
    if (probe && query_value(probe.conn, "SHOW ssl") == (on ? "on" : "off")) {
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ::testing::AssertionFailure() << "ssl did not become " << on << "\n" << pg.log_tail(node);
}

class ServerTlsTest : public TlsTest {
 protected:
  void SetUp() override {
    TlsTest::SetUp();
    if (IsSkipped()) {
      return;
    }
    ASSERT_TRUE(set_server_ssl(true));
  }
  void TearDown() override {
    EXPECT_TRUE(set_server_ssl(false));
    if (replica_ssl_) {
      EXPECT_TRUE(set_server_ssl(false, Node::Replica));
    }
  }
  bool replica_ssl_ = false;  // set_server_ssl(true, Node::Replica) was called

  static std::string server_tls(std::string_view mode, std::string_view ca = "ca.crt") {
    return "server_tls_sslmode = \"" + std::string(mode) + "\"\nserver_tls_ca_file = \"" +
           certs().path(ca) + "\"\n";
  }
  std::optional<std::string> backend_ssl(PGconn* conn) {
    return query_value(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  }
};

// verify-full: the backend connection is encrypted (as PostgreSQL itself reports), and
// plaintext clients of pgmux still work through it. disable keeps it in plaintext.
TEST_F(ServerTlsTest, BackendConnectionIsEncrypted) {
  ASSERT_NO_FATAL_FAILURE(start(server_tls("verify-full")));
  auto c = client("sslmode=disable");
  ASSERT_TRUE(c) << c.error << pgmux_.log_tail();
  EXPECT_EQ(backend_ssl(c.conn.get()), "t");
  auto big = exec(c.conn, "SELECT repeat('x', 1000) FROM generate_series(1, 2000)");
  ASSERT_TRUE(big.ok()) << big;
  EXPECT_EQ(big.rows.size(), 2000u);
  auto params = exec_params(c.conn.get(), "SELECT $1::text || '!'", {"over tls"});
  ASSERT_TRUE(params.ok()) << params;
  EXPECT_EQ(params.first(), "over tls!");
  pgmux_.stop();

  PgmuxProcess plain;
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = "server_tls_sslmode = \"disable\"";
  ASSERT_TRUE(plain.start(PgmuxProcess::typical_config(options)));
  auto p = connect(plain.conninfo());
  ASSERT_TRUE(p) << p.error;
  EXPECT_EQ(backend_ssl(p.conn.get()), "f");
}

// TLS on both sides at once, per database: one database's backends use TLS, the other's not.
TEST_F(ServerTlsTest, BothSidesAndPerDatabase) {
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = client_tls("require") + server_tls("require") + "admin_users = [\"app\"]\n";
  options.extra =
      "[databases.plainapp]\ndbname = \"app\"\nprimary = \"127.0.0.1:@PRIMARY_PORT@\"\n"
      "server_tls_sslmode = \"disable\"\n";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  auto c = client(verify_full());
  ASSERT_TRUE(c) << c.error << pgmux_.log_tail();
  EXPECT_EQ(backend_ssl(c.conn.get()), "t");
  auto p = connect(pgmux_.conninfo("app", "secret", "plainapp") + " sslmode=require");
  ASSERT_TRUE(p) << p.error << pgmux_.log_tail();
  EXPECT_EQ(backend_ssl(p.conn.get()), "f");

  // The admin console shows protocol and cipher in PgBouncer's tls column.
  auto admin = connect(pgmux_.conninfo("app", "secret", "pgmux") + " sslmode=require");
  ASSERT_TRUE(admin) << admin.error;
  auto tls_of = [&](const std::string& show, const std::string& database) {
    PgResult r = exec(admin.conn, show);
    EXPECT_TRUE(r.ok()) << r;
    const auto col = [&](std::string_view name) {
      return std::find(r.columns.begin(), r.columns.end(), name) - r.columns.begin();
    };
    std::vector<std::string> seen;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      if (r.rows[i][col("database")] == database) {
        seen.push_back(r.is_null(i, col("tls")) ? "NULL" : r.rows[i][col("tls")]);
      }
    }
    return seen;
  };
  for (const auto& t : tls_of("SHOW CLIENTS", "app")) {
    EXPECT_TRUE(t.starts_with("TLSv1.")) << t;
  }
  EXPECT_FALSE(tls_of("SHOW CLIENTS", "app").empty());
  EXPECT_FALSE(tls_of("SHOW SERVERS", "app").empty());
  for (const auto& t : tls_of("SHOW SERVERS", "app")) {
    EXPECT_TRUE(t.starts_with("TLSv1.")) << t;
  }
  for (const auto& t : tls_of("SHOW SERVERS", "plainapp")) {
    EXPECT_EQ(t, "NULL");
  }
}

// verify-ca with a CA that did not sign the server's certificate: no backend, and the
// client hears why instead of hanging.
TEST_F(ServerTlsTest, WrongServerCaFailsClearly) {
  ASSERT_NO_FATAL_FAILURE(start(server_tls("verify-ca", "other_ca.crt") +
                                "server_connect_timeout = 2\nquery_wait_timeout = 3\n"));
  auto c = client("sslmode=disable");
  if (c) {
    auto r = exec(c.conn, "SELECT 1");
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("certificate verify failed"), std::string::npos) << r.error;
  } else {
    EXPECT_NE(c.error.find("certificate verify failed"), std::string::npos) << c.error;
  }
  EXPECT_NE(pgmux_.log_text().find("certificate verify failed"), std::string::npos)
      << pgmux_.log_tail();
}

// TLS on both sides and a client that stops reading a 100 MB result: pgmux's memory
// stays flat (backpressure holds through both TLS layers), and once the client reads
// again every row arrives.
TEST_F(ServerTlsTest, StalledReaderKeepsMemoryFlat) {
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = client_tls("require") + server_tls("verify-full");
  PgmuxOptions process;
  // Under AddressSanitizer freed memory sits in a quarantine before reuse; a small one
  // makes RSS follow live memory (as in integration_proxy).
  const char* asan = std::getenv("ASAN_OPTIONS");
  process.env.push_back("ASAN_OPTIONS=" + std::string(asan != nullptr ? asan : "") +
                        (asan != nullptr && *asan != '\0' ? ":" : "") + "quarantine_size_mb=8");
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options), process));
  auto c = client("sslmode=require");
  ASSERT_TRUE(c) << c.error;
  ASSERT_EQ(backend_ssl(c.conn.get()), "t");

  const long before = pgmux_.rss_kb();
  ASSERT_EQ(PQsendQuery(c.conn.get(), "SELECT repeat('x', 1000) FROM generate_series(1, 100000)"),
            1);
  long peak = before;
  for (int i = 0; i < 30; ++i) {  // 3 s without reading
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    peak = std::max(peak, pgmux_.rss_kb());
  }
  EXPECT_LT(peak - before, 40 * 1024) << "RSS grew by " << (peak - before) << " KiB";

  std::size_t rows = 0;
  while (PGresult* r = PQgetResult(c.conn.get())) {
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
      rows += static_cast<std::size_t>(PQntuples(r));
    }
    PQclear(r);
  }
  EXPECT_EQ(rows, 100000u);
  EXPECT_EQ(query_value(c.conn, "SELECT 'after'"), "after");
}

// With replicas, the health checks follow server_tls_* too: their sessions on the
// primary are encrypted, and reads reach the (TLS) replica.
TEST_F(ServerTlsTest, HealthChecksUseTls) {
  auto& pg = PostgresEnvironment::instance();
  if (!pg.has_replica()) {
    GTEST_SKIP() << "no replica";
  }
  replica_ssl_ = true;
  ASSERT_TRUE(set_server_ssl(true, Node::Replica));
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.replica = true;
  options.pgmux_extra = server_tls("verify-full");
  options.database_extra = "health_check_period = 0.1";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  auto su = connect(pg.superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  std::optional<std::string> health_ssl;
  for (int i = 0; i < 100 && !health_ssl; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    health_ssl = query_value(su.conn,
                             "SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN "
                             "pg_stat_activity a USING (pid) WHERE a.application_name = "
                             "'pgmux-health'");
  }
  EXPECT_EQ(health_ssl, "true") << pgmux_.log_tail();
  auto c = client("sslmode=disable");
  ASSERT_TRUE(c) << c.error;
  std::string where;
  for (int i = 0; i < 100 && where != "t"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    where = query_value(c.conn, "SELECT pg_is_in_recovery()").value_or("");
  }
  EXPECT_EQ(where, "t") << "reads never reached the replica\n" << pgmux_.log_tail();
  EXPECT_EQ(backend_ssl(c.conn.get()), "t");
  c.conn.reset();
  pgmux_.stop();

  // disable: libpq's own default (prefer) would encrypt; the setting is followed instead.
  const std::string health_sql =
      "SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
      "WHERE a.application_name = 'pgmux-health'";
  for (int i = 0; i < 100 && query_value(su.conn, health_sql); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  options.pgmux_extra = "server_tls_sslmode = \"disable\"";
  PgmuxProcess plain;
  ASSERT_TRUE(plain.start(PgmuxProcess::typical_config(options)));
  std::optional<std::string> plain_ssl;
  for (int i = 0; i < 100 && !plain_ssl; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    plain_ssl = query_value(su.conn, health_sql);
  }
  EXPECT_EQ(plain_ssl, "false");
}

// SIGHUP reloads the server-side contexts too: a wrong CA fixed in the file lets new
// backends in without a restart.
TEST_F(ServerTlsTest, ReloadFixesServerCa) {
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = server_tls("verify-ca", "other_ca.crt") + "query_wait_timeout = 2";
  options.database_extra = "server_connect_timeout = 1";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  auto refused = client("sslmode=disable");
  if (refused) {
    EXPECT_FALSE(exec(refused.conn, "SELECT 1").ok());
  }
  options.pgmux_extra = server_tls("verify-ca") + "query_wait_timeout = 2";
  pgmux_.rewrite_config(PgmuxProcess::typical_config(options));
  ASSERT_TRUE(pgmux_.signal(SIGHUP));
  std::optional<std::string> ssl;
  for (int i = 0; i < 50 && !ssl; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto c = client("sslmode=disable");
    if (c) {
      ssl = backend_ssl(c.conn.get());
    }
  }
  EXPECT_EQ(ssl, "t") << pgmux_.log_tail();
}

// require toward a server with ssl off fails; prefer falls back to plaintext.
TEST_F(ServerTlsTest, RequireFailsWhenServerHasNoSsl) {
  ASSERT_TRUE(set_server_ssl(false));
  ASSERT_NO_FATAL_FAILURE(start("server_tls_sslmode = \"require\"\nquery_wait_timeout = 3\n",
                                "server_connect_timeout = 2"));
  auto c = client("sslmode=disable");
  if (c) {
    EXPECT_FALSE(exec(c.conn, "SELECT 1").ok());
  }
  EXPECT_NE(pgmux_.log_text().find("does not support SSL"), std::string::npos) << pgmux_.log_tail();
  pgmux_.stop();

  PgmuxProcess prefer;
  PgmuxConfigOptions options;
  options.log_level = "info";
  options.pgmux_extra = "server_tls_sslmode = \"prefer\"";
  ASSERT_TRUE(prefer.start(PgmuxProcess::typical_config(options)));
  auto p = connect(prefer.conninfo());
  ASSERT_TRUE(p) << p.error;
  EXPECT_EQ(backend_ssl(p.conn.get()), "f");
}

}  // namespace
}  // namespace pooler::integration
