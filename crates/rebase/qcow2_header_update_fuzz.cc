// Fuzz target: BuildQcow2Header on arbitrary first clusters, and RewriteVmdkParent on the
// same bytes as descriptor text. Invariants: no out-of-bounds access (ASan), no overflow
// (UBSan); a header it builds parses again, with the new backing file name and format and the
// same tables; a rewritten descriptor fits its room.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crates/qcow2/header.h"
#include "crates/rebase/qcow2_header_update.h"
#include "crates/rebase/vmdk_parent_update.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void FuzzVmdkText(const uint8_t* data, size_t size) {
  static const char kName[] = "parent.vmdk";
  instar::rebase::NewBacking backing;
  backing.name = {reinterpret_cast<const uint8_t*>(kName), sizeof kName - 1};
  std::vector<uint8_t> out(size + 64);
  if (instar::rebase::RewriteVmdkParent({data, size}, backing, 0x1234, out.data(), out.size())) {
    static const char kCid[] = "parentCID=1234";
    Require(std::search(out.begin(), out.end(), kCid, kCid + sizeof kCid - 1) != out.end());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzVmdkText(data, size);
  const instar::base::ByteView head(data, size);
  auto parsed = instar::qcow2::ParseHeader(head);
  if (!parsed.ok() || size < parsed.value().cluster_size) return 0;
  const instar::qcow2::Header& header = parsed.value();
  static const char kName[] = "new-backing.qcow2";
  static const char kFormat[] = "qcow2";
  instar::rebase::NewBacking backing;
  backing.name = {reinterpret_cast<const uint8_t*>(kName), sizeof kName - 1};
  backing.format = {reinterpret_cast<const uint8_t*>(kFormat), sizeof kFormat - 1};
  std::vector<uint8_t> out(header.cluster_size);
  if (!instar::rebase::BuildQcow2Header(head, header, backing, out.data()).ok()) return 0;
  auto again = instar::qcow2::ParseHeader({out.data(), out.size()});
  Require(again.ok());
  const instar::qcow2::Header& h = again.value();
  Require(h.backing_file.length == backing.name.size());
  Require(std::memcmp(out.data() + h.backing_file.offset, kName, backing.name.size()) == 0);
  Require(h.backing_format.length == backing.format.size());
  Require(h.l1_table_offset == header.l1_table_offset);
  Require(h.refcount_table_offset == header.refcount_table_offset);
  Require(h.snapshots_offset == header.snapshots_offset);
  return 0;
}
