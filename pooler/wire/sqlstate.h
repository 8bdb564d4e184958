#pragma once
// SQLSTATE codes pgmux sends (Appendix A of the PostgreSQL docs).

#include <string_view>

namespace pooler::wire::sqlstate {

inline constexpr std::string_view kProtocolViolation = "08P01";
inline constexpr std::string_view kConnectionFailure = "08006";
inline constexpr std::string_view kConnectionException = "08000";
inline constexpr std::string_view kInvalidPassword = "28P01";
inline constexpr std::string_view kInvalidAuthorization = "28000";
inline constexpr std::string_view kInvalidCatalogName = "3D000";   // unknown database
inline constexpr std::string_view kTooManyConnections = "53300";
inline constexpr std::string_view kConfigurationLimitExceeded = "53400";
inline constexpr std::string_view kAdminShutdown = "57P01";
inline constexpr std::string_view kCannotConnectNow = "57P03";
inline constexpr std::string_view kQueryCanceled = "57014";
inline constexpr std::string_view kIdleInTransactionTimeout = "25P03";
inline constexpr std::string_view kIdleSessionTimeout = "57P05";
inline constexpr std::string_view kFeatureNotSupported = "0A000";
inline constexpr std::string_view kInternalError = "XX000";
inline constexpr std::string_view kReadOnlyTransaction = "25006";
inline constexpr std::string_view kInvalidSqlStatementName = "26000";
inline constexpr std::string_view kDuplicatePreparedStatement = "42P05";

}  // namespace pooler::wire::sqlstate
