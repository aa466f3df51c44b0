// The instard wire protocol: one JSON object per line each way (docs/daemon.md).
//   request:  {"id": any, "op": "info", "args": [...argv...] | {...flags...},
//              "cwd": "/dir", "files": {"name-in-args": fd-index}, "deadline_ms": N}
//   reply:    {"id": same, "ok": true, "result": <the CLI's JSON output or null>,
//              "stdout": "...", "stderr": "...", "exit": 0}
//             {"id": same, "ok": false, "error": {"code": "...", "message": "..."}, ...}
// Parsing is pure and bounded (line length, argument counts and sizes). Host-only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "vmm/base/status.h"

namespace instar::vmm::daemon {

inline constexpr size_t kMaxRequestBytes = size_t{64} * 1024;
inline constexpr size_t kMaxArgs = 64;
inline constexpr size_t kMaxArgBytes = 4096;
inline constexpr size_t kMaxFiles = 16;

// clang-tidy reports nlohmann::json's noexcept move, seen through its invariant assertions,
// as throwing.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Request {
  nlohmann::json id;               // echoed back unchanged (null when absent)
  std::string op;                  // "info", ..., or "status"
  std::vector<std::string> argv;  // the command's arguments, without the op
  std::string cwd;                 // relative paths resolve here ("" = the daemon's)
  std::map<std::string, int> files;  // argument text -> index of a passed descriptor
  std::optional<uint64_t> deadline_ms;
};

// Error codes carried in replies.
inline constexpr const char* kBadRequest = "bad_request";
inline constexpr const char* kUnknownOp = "unknown_op";
inline constexpr const char* kBusy = "busy";
inline constexpr const char* kShuttingDown = "shutting_down";
inline constexpr const char* kTimeout = "timeout";
inline constexpr const char* kFailed = "failed";      // the command exited non-zero
inline constexpr const char* kInternal = "internal";

// Which argument names of the object form are positional, in order, per operation.
const std::vector<std::string>* PositionalArgs(std::string_view op);

// Parses one request line; the error message says what is wrong (for a bad_request reply).
StatusOr<Request> ParseRequest(std::string_view line);

// Converts the object form of "args" to argv: positional names first in their order, then
// every other key as a long option (`true` -> --key, string/number -> --key=value); keys use
// dashes or underscores.
StatusOr<std::vector<std::string>> ArgsToArgv(std::string_view op, const nlohmann::json& args);

std::string ErrorReply(const nlohmann::json& id, std::string_view code, std::string_view message);

}  // namespace instar::vmm::daemon
