#include "crates/rebase/vmdk_parent_update.h"

#include "crates/base/text_writer.h"

namespace instar::rebase {
namespace {

void PutHint(base::TextWriter& w, const NewBacking& backing) {
  w.Put("parentFileNameHint=\"");
  w.Put(backing.name.data(), backing.name.size());
  w.Put("\"\n");
}

}  // namespace

bool RewriteVmdkParent(base::ByteView text, const NewBacking& backing, uint32_t parent_cid,
                       uint8_t* out, uint64_t capacity) {
  const uint8_t* p = text.data();
  uint64_t n = text.size();
  // An embedded descriptor is NUL padded.
  for (uint64_t i = 0; i < n; ++i) {
    if (p[i] == 0) {
      n = i;
      break;
    }
  }
  bool has_hint = false;
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    if (base::StartsWith(p + start, end - start, "parentFileNameHint=")) has_hint = true;
    start = end + 1;
  }
  base::TextWriter w(out, capacity);
  bool cid_seen = false;
  bool hint_placed = has_hint || backing.name.size() == 0;
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    const uint8_t* line = p + start;
    const uint64_t len = end - start;
    const bool newline = end < n;
    if (base::StartsWith(line, len, "parentCID=") && !cid_seen) {
      w.Put("parentCID=");
      w.Hex(parent_cid);
      if (newline) w.Byte('\n');
      cid_seen = true;
    } else if (base::StartsWith(line, len, "parentFileNameHint=")) {
      if (backing.name.size() != 0) PutHint(w, backing);
    } else {
      w.Put(line, len);
      if (newline) w.Byte('\n');
      if (!hint_placed && base::StartsWith(line, len, "createType=")) {
        if (!newline) w.Byte('\n');
        PutHint(w, backing);
        hint_placed = true;
      }
    }
    start = end + 1;
  }
  if (!cid_seen || !hint_placed || !w.Fits()) return false;
  w.Pad();
  return true;
}

}  // namespace instar::rebase
