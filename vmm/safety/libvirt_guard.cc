#include "vmm/safety/libvirt_guard.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <type_traits>

namespace instar::vmm {
namespace {

std::string Canonical(const std::string& path) {
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) != nullptr ? resolved : path;
}

std::string DecodeEntities(std::string s) {
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&apos;", "'"}, {"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}};
  for (const auto& [entity, text] : kEntities) {
    for (size_t at = s.find(entity); at != std::string::npos; at = s.find(entity, at + 1)) {
      s.replace(at, std::string(entity).size(), text);
    }
  }
  return s;
}

// The value of attribute `name` inside the tag text `tag` (either quote style).
std::string Attribute(const std::string& tag, const std::string& name) {
  for (size_t at = tag.find(name + "="); at != std::string::npos;
       at = tag.find(name + "=", at + 1)) {
    if (at > 0 && tag[at - 1] != ' ' && tag[at - 1] != '\t' && tag[at - 1] != '\n') continue;
    const size_t quote = at + name.size() + 1;
    if (quote >= tag.size() || (tag[quote] != '\'' && tag[quote] != '"')) continue;
    const size_t end = tag.find(tag[quote], quote + 1);
    if (end == std::string::npos) return {};
    return DecodeEntities(tag.substr(quote + 1, end - quote - 1));
  }
  return {};
}

// libvirt's client library, loaded on first use: most commands never need it, and loading it
// (with its dozens of dependencies) costs more than a whole info run.
struct LibvirtApi {
  decltype(&virConnectOpenReadOnly) connect_open_read_only;
  decltype(&virConnectClose) connect_close;
  decltype(&virConnectListAllDomains) list_all_domains;
  decltype(&virDomainGetXMLDesc) domain_xml;
  decltype(&virDomainGetName) domain_name;
  decltype(&virDomainFree) domain_free;
  decltype(&virGetLastError) last_error;
  decltype(&virSetErrorFunc) set_error_func;
};

const LibvirtApi* LoadLibvirt() {
  static const LibvirtApi* api = []() -> const LibvirtApi* {
    void* lib = ::dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    static LibvirtApi loaded;
    bool ok = true;
    auto load = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    load(loaded.connect_open_read_only, "virConnectOpenReadOnly");
    load(loaded.connect_close, "virConnectClose");
    load(loaded.list_all_domains, "virConnectListAllDomains");
    load(loaded.domain_xml, "virDomainGetXMLDesc");
    load(loaded.domain_name, "virDomainGetName");
    load(loaded.domain_free, "virDomainFree");
    load(loaded.last_error, "virGetLastError");
    load(loaded.set_error_func, "virSetErrorFunc");
    return ok ? &loaded : nullptr;
  }();
  return api;
}

void IgnoreLibvirtErrors(void*, virErrorPtr) {}

}  // namespace

std::string LibvirtUriFromEnvironment() {
  if (const char* uri = std::getenv("INSTAR_LIBVIRT_URI"); uri != nullptr) return uri;
  struct stat st {};
  if (::stat("/run/libvirt/libvirt-sock", &st) == 0) return "qemu:///system";
  return {};
}

std::vector<std::string> DiskSourcesOf(const std::string& xml) {
  std::vector<std::string> sources;
  for (size_t disk = xml.find("<disk"); disk != std::string::npos;
       disk = xml.find("<disk", disk + 1)) {
    const size_t disk_end = xml.find("</disk>", disk);
    const std::string block = xml.substr(disk, disk_end == std::string::npos
                                                   ? std::string::npos
                                                   : disk_end - disk);
    for (size_t src = block.find("<source"); src != std::string::npos;
         src = block.find("<source", src + 1)) {
      const std::string tag = block.substr(src, block.find('>', src) - src);
      for (const char* attr : {"file", "dev"}) {
        const std::string value = Attribute(tag, attr);
        if (!value.empty()) sources.push_back(value);
      }
    }
  }
  return sources;
}

Status CheckNotInUseByLibvirt(const std::vector<std::string>& paths, const std::string& uri) {
  if (uri.empty() || paths.empty()) return Status::Ok();
  const LibvirtApi* api = LoadLibvirt();
  if (api == nullptr) {
    return Status(StatusCode::kUnavailable, "cannot ask libvirt (" + uri +
                                                ") which images are in use: libvirt.so.0 is not "
                                                "installed");
  }
  api->set_error_func(nullptr, IgnoreLibvirtErrors);
  auto close = [api](virConnectPtr c) { api->connect_close(c); };
  std::unique_ptr<virConnect, decltype(close)> conn(api->connect_open_read_only(uri.c_str()),
                                                    close);
  if (conn == nullptr) {
    const virErrorPtr e = api->last_error();
    return Status(StatusCode::kUnavailable, "cannot ask libvirt (" + uri + ") which images are in use: " +
                                                (e != nullptr && e->message ? e->message : "unknown error"));
  }
  virDomainPtr* raw = nullptr;
  const int n = api->list_all_domains(conn.get(), &raw, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) return Status(StatusCode::kUnavailable, "cannot list libvirt domains on " + uri);
  auto free_domain = [api](virDomainPtr d) { api->domain_free(d); };
  std::vector<std::unique_ptr<virDomain, decltype(free_domain)>> domains;
  domains.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) domains.emplace_back(raw[i], free_domain);
  std::free(raw);

  std::vector<std::string> wanted;
  wanted.reserve(paths.size());
  for (const std::string& p : paths) wanted.push_back(Canonical(p));
  for (const auto& domain : domains) {
    std::unique_ptr<char, decltype(&std::free)> xml(api->domain_xml(domain.get(), 0), &std::free);
    if (xml == nullptr) continue;
    for (const std::string& source : DiskSourcesOf(xml.get())) {
      const std::string canonical = Canonical(source);
      for (size_t i = 0; i < wanted.size(); ++i) {
        if (canonical != wanted[i]) continue;
        const char* name = api->domain_name(domain.get());
        return Status(StatusCode::kPermissionDenied,
                      "Image '" + paths[i] + "' is in use by running libvirt domain '" +
                          (name != nullptr ? name : "?") + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace instar::vmm
