// Hostile guest: sends one typed result (and, for info and check, the records that go with
// it) with one field broken, as InfoConfig::flags selects: operation * 100 + case, operations
// 1 info, 2 check, 3 resize, 4 rebase, 5 commit. Case 0 is a plausible result the host must
// accept; case 1 has a bad magic inside a descriptor that names the right one; the others
// put a field the host uses as an index, count, length or enum out of range (see
// tests/vmm/hostile_result_test.cc for what each must be refused with).
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/check.h"
#include "abi/commit.h"
#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "abi/rebase.h"
#include "abi/resize.h"
#include "crates/freestanding/guest_image.h"

namespace {

using namespace instar::abi;

uint8_t* Scratch() { return reinterpret_cast<uint8_t*>(kScratchMemBase); }

template <class T>
T* Zeroed() {
  auto* p = reinterpret_cast<T*>(Scratch());
  auto* bytes = reinterpret_cast<uint8_t*>(p);
  for (uint64_t i = 0; i < sizeof(T); ++i) bytes[i] = 0;
  return p;
}

void Info(const CallTable* t, uint32_t c) {
  // Records first (they must precede the result), built in the upper half of the scratch.
  auto* rec = reinterpret_cast<uint8_t*>(kScratchMemBase + kScratch.size / 2);
  for (int i = 0; i < 256; ++i) rec[i] = 0;
  auto* h = reinterpret_cast<InfoRecordHeader*>(rec);
  uint32_t rec_len = 0;
  switch (c) {
    case 10: *h = {static_cast<uint32_t>(InfoRecordType::kErrorValue), 0xFFFFFFF8u}; rec_len = 16; break;
    case 11: {
      auto* s = reinterpret_cast<InfoSnapshotRecord*>(rec);
      s->header = {static_cast<uint32_t>(InfoRecordType::kSnapshot), 56};
      s->id_length = 1000;
      rec_len = 56;
      break;
    }
    case 12: {
      auto* f = reinterpret_cast<InfoFeatureNameRecord*>(rec);
      f->header = {static_cast<uint32_t>(InfoRecordType::kFeatureName), sizeof *f};
      f->bit = 64;
      rec_len = sizeof *f;
      break;
    }
    case 13: *h = {99, 16}; rec_len = 16; break;
    case 14: *h = {static_cast<uint32_t>(InfoRecordType::kErrorValue), 4}; rec_len = 16; break;
    default: break;
  }
  if (rec_len != 0) t->send_records(rec, rec_len);

  InfoResult* r = Zeroed<InfoResult>();
  r->magic = kInfoResultMagic;
  r->format = static_cast<uint32_t>(ImageFormat::kRaw);
  r->virtual_size = 512;
  switch (c) {
    case 1: r->magic = 0x0BADBAD0; break;
    case 2: r->format = 99; break;
    case 3:
    case 4:
      r->format = static_cast<uint32_t>(ImageFormat::kQcow2);
      r->format_version = 3;
      r->cluster_size = c == 3 ? 3 : 65536;
      r->refcount_bits = c == 3 ? 16 : 128;
      break;
    case 5: r->snapshot_count = 0xFFFFFFFFu; break;
    case 6: r->flags = kInfoHasBackingFile; r->backing_file_len = 5000; break;
    case 7:
      r->flags = kInfoHasBackingFile;
      for (char& ch : r->backing_file) ch = 'A';
      r->backing_file_len = kMaxBackingFileBytes;
      break;
    case 8:
      r->flags = kInfoHasBackingFile;
      for (int i = 0; i < 6; ++i) r->backing_file[i] = static_cast<char>('a' + i);
      r->backing_file_len = 3;
      break;
    case 9: r->snapshot_count = 1; break;
    default: break;
  }
  t->send_info_result(r);
}

void Check(const CallTable* t, uint32_t c) {
  if (c >= 7 && c <= 10) {
    CheckFindingBatch* b = Zeroed<CheckFindingBatch>();
    b->magic = kCheckFindingBatchMagic;
    b->count = c == 7 ? 0 : c == 8 ? kFindingsPerBatch + 1 : 1;
    b->findings[0].kind = c == 9 ? 99 : static_cast<uint32_t>(FindingKind::kOverlapCorruptEvent);
    b->findings[0].a = kMetadataKindCount;
    t->send_record(kCheckFindingBatchMagic, b, sizeof *b);
  }
  if (c == 11 || c == 12) {
    CheckSnapshotFinding* f = Zeroed<CheckSnapshotFinding>();
    f->magic = kCheckSnapshotFindingMagic;
    f->kind = static_cast<uint32_t>(SnapshotFindingKind::kL1Unaligned);
    if (c == 11) f->id_len = kSnapshotTextBytes;
    if (c == 12) {
      for (char& ch : f->name) ch = 'n';
      f->name_len = 3;
    }
    t->send_record(kCheckSnapshotFindingMagic, f, sizeof *f);
  }
  CheckResult* r = Zeroed<CheckResult>();
  r->magic = kCheckResultMagic;
  r->format = static_cast<uint32_t>(ImageFormat::kQcow2);
  r->allocated_clusters = 1;
  switch (c) {
    case 1: r->magic = 0x0BADBAD0; break;
    case 2: r->format = static_cast<uint32_t>(ImageFormat::kRaw); break;
    case 3: r->failure = 99; break;
    case 4: r->flags = 0x80; break;
    case 5: r->leaks = 1ull << 63; break;
    case 6: r->fragmented_clusters = 5; break;
    default: break;
  }
  t->send_check_result(r);
}

void Resize(const CallTable* t, uint32_t c) {
  ResizeResult* r = Zeroed<ResizeResult>();
  r->magic = c == 1 ? 0x0BADBAD0 : kResizeResultMagic;
  r->format = c == 2 ? 9 : static_cast<uint32_t>(ImageFormat::kQcow2);
  r->flags = c == 3 ? 1 : 0;
  t->send_resize_result(r);
}

void Rebase(const CallTable* t, uint32_t c) {
  RebaseResult* r = Zeroed<RebaseResult>();
  r->magic = c == 1 ? 0x0BADBAD0 : kRebaseResultMagic;
  r->format = c == 2 ? 9 : static_cast<uint32_t>(ImageFormat::kQcow2);
  r->flags = c == 3 ? 2 : 0;
  r->clusters_compared = 4;
  r->clusters_copied = c == 4 ? 5 : 4;
  t->send_rebase_result(r);
}

void Commit(const CallTable* t, uint32_t c) {
  CommitResult* r = Zeroed<CommitResult>();
  r->magic = c == 1 ? 0x0BADBAD0 : kCommitResultMagic;
  r->flags = c == 2 ? 4 : 0;
  r->failed_layer = c == 3 ? 7 : kCommitLayerUnknown;
  r->base_old_size = 1 << 20;
  r->base_new_size = c == 4 ? 512 : 1 << 20;
  t->send_commit_result(r);
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(const CallTable* t) {
  const uint32_t selector = static_cast<const InfoConfig*>(t->get_operation_config(nullptr))->flags;
  const uint32_t c = selector % 100;
  switch (selector / 100) {
    case 1: Info(t, c); break;
    case 2: Check(t, c); break;
    case 3: Resize(t, c); break;
    case 4: Rebase(t, c); break;
    case 5: Commit(t, c); break;
    default: break;
  }
  t->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
