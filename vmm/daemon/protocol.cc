#include "vmm/daemon/protocol.h"

#include <algorithm>

namespace instar::vmm::daemon {
namespace {

using Json = nlohmann::json;

Status Bad(std::string message) { return InvalidArgument(std::move(message)); }

}  // namespace

const std::vector<std::string>* PositionalArgs(std::string_view op) {
  static const std::map<std::string, std::vector<std::string>, std::less<>> kPositional = {
      {"info", {"filename"}},   {"check", {"filename"}},  {"resize", {"filename", "size"}},
      {"rebase", {"filename"}}, {"commit", {"filename"}},
  };
  const auto it = kPositional.find(op);
  return it == kPositional.end() ? nullptr : &it->second;
}

StatusOr<std::vector<std::string>> ArgsToArgv(std::string_view op, const Json& args) {
  const std::vector<std::string>* positional = PositionalArgs(op);
  if (positional == nullptr) return Bad("unknown op");
  std::vector<std::string> options, positionals;
  for (const std::string& name : *positional) {
    const auto it = args.find(name);
    if (it == args.end()) continue;
    if (!it->is_string()) return Bad("\"" + name + "\" must be a string");
    positionals.push_back(it->get<std::string>());
  }
  for (const auto& [key, value] : args.items()) {
    if (std::find(positional->begin(), positional->end(), key) != positional->end()) continue;
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (value.is_boolean()) {
      if (value.get<bool>()) options.push_back(flag);
    } else if (value.is_string()) {
      options.push_back(flag + "=" + value.get<std::string>());
    } else if (value.is_number_integer()) {
      options.push_back(flag + "=" + value.dump());
    } else {
      return Bad("\"" + key + "\" must be a boolean, string or integer");
    }
  }
  options.insert(options.end(), positionals.begin(), positionals.end());
  return options;
}

StatusOr<Request> ParseRequest(std::string_view line) {
  if (line.size() > kMaxRequestBytes) return Bad("request longer than 64 KiB");
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("request is not valid JSON");
  if (!j.is_object()) return Bad("request must be a JSON object");
  Request r;
  if (j.contains("id")) r.id = j["id"];
  if (!j.contains("op") || !j["op"].is_string()) return Bad("\"op\" must be a string");
  r.op = j["op"].get<std::string>();
  if (r.op != "status" && PositionalArgs(r.op) == nullptr) {
    return Status(StatusCode::kNotFound, "unknown op '" + r.op + "'");
  }
  if (j.contains("args")) {
    const Json& args = j["args"];
    if (args.is_array()) {
      for (const Json& a : args) {
        if (!a.is_string()) return Bad("\"args\" entries must be strings");
        r.argv.push_back(a.get<std::string>());
      }
    } else if (args.is_object()) {
      INSTAR_ASSIGN_OR_RETURN(r.argv, ArgsToArgv(r.op, args));
    } else {
      return Bad("\"args\" must be an array or an object");
    }
  }
  if (r.argv.size() > kMaxArgs) return Bad("too many arguments");
  for (const std::string& a : r.argv) {
    if (a.size() > kMaxArgBytes || a.find('\0') != std::string::npos) {
      return Bad("argument too long or containing NUL");
    }
  }
  if (j.contains("cwd")) {
    if (!j["cwd"].is_string()) return Bad("\"cwd\" must be a string");
    r.cwd = j["cwd"].get<std::string>();
    if (r.cwd.empty() || r.cwd[0] != '/') return Bad("\"cwd\" must be an absolute path");
  }
  if (j.contains("files")) {
    if (!j["files"].is_object() || j["files"].size() > kMaxFiles) {
      return Bad("\"files\" must map at most 16 names to descriptor indices");
    }
    for (const auto& [name, index] : j["files"].items()) {
      if (!index.is_number_unsigned() || index.get<uint64_t>() >= kMaxFiles) {
        return Bad("\"files\" values must be descriptor indices below 16");
      }
      r.files[name] = index.get<int>();
    }
  }
  if (j.contains("deadline_ms")) {
    if (!j["deadline_ms"].is_number_unsigned() || j["deadline_ms"].get<uint64_t>() == 0) {
      return Bad("\"deadline_ms\" must be a positive integer");
    }
    r.deadline_ms = j["deadline_ms"].get<uint64_t>();
  }
  return r;
}

std::string ErrorReply(const Json& id, std::string_view code, std::string_view message) {
  Json j;
  j["id"] = id;
  j["ok"] = false;
  j["error"] = {{"code", code}, {"message", message}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace instar::vmm::daemon
