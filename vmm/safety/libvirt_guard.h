// Refuses to write an image a running libvirt domain uses: lists the active domains over the
// configured connection, reads each one's disk sources, and compares canonical paths. Host-only.
#pragma once

#include <string>
#include <vector>

#include "vmm/base/status.h"

namespace instar::vmm {

// The URI to ask: INSTAR_LIBVIRT_URI when set (an explicit URI that cannot be reached is an
// error), else qemu:///system when its socket exists, else none ("" = no libvirt here).
std::string LibvirtUriFromEnvironment();

// kPermissionDenied "Image 'PATH' is in use by running libvirt domain 'NAME'" when a running
// domain of `uri` has one of `paths` as a disk source; OK when none does or `uri` is empty.
Status CheckNotInUseByLibvirt(const std::vector<std::string>& paths, const std::string& uri);

// The disk source paths (file= and dev=) in a domain's XML description.
std::vector<std::string> DiskSourcesOf(const std::string& domain_xml);

}  // namespace instar::vmm
