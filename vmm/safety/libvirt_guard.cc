#include "vmm/safety/libvirt_guard.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <memory>

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

struct ConnectionCloser {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
struct DomainFreer {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};

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
  virSetErrorFunc(nullptr, IgnoreLibvirtErrors);
  std::unique_ptr<virConnect, ConnectionCloser> conn(virConnectOpenReadOnly(uri.c_str()));
  if (conn == nullptr) {
    const virErrorPtr e = virGetLastError();
    return Status(StatusCode::kUnavailable, "cannot ask libvirt (" + uri + ") which images are in use: " +
                                                (e != nullptr && e->message ? e->message : "unknown error"));
  }
  virDomainPtr* raw = nullptr;
  const int n = virConnectListAllDomains(conn.get(), &raw, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) return Status(StatusCode::kUnavailable, "cannot list libvirt domains on " + uri);
  std::vector<std::unique_ptr<virDomain, DomainFreer>> domains;
  for (int i = 0; i < n; ++i) domains.emplace_back(raw[i]);
  std::free(raw);

  std::vector<std::string> wanted;
  for (const std::string& p : paths) wanted.push_back(Canonical(p));
  for (const auto& domain : domains) {
    std::unique_ptr<char, decltype(&std::free)> xml(virDomainGetXMLDesc(domain.get(), 0), &std::free);
    if (xml == nullptr) continue;
    for (const std::string& source : DiskSourcesOf(xml.get())) {
      const std::string canonical = Canonical(source);
      for (size_t i = 0; i < wanted.size(); ++i) {
        if (canonical != wanted[i]) continue;
        const char* name = virDomainGetName(domain.get());
        return Status(StatusCode::kPermissionDenied,
                      "Image '" + paths[i] + "' is in use by running libvirt domain '" +
                          (name != nullptr ? name : "?") + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace instar::vmm
