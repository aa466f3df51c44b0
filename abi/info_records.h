// Info records: the variable-length part of an info answer (snapshot table, bitmap directory,
// vmdk extents, the LUKS header summary, strings longer than InfoResult's fields). The guest
// packs them back to back and sends them with send_records, in buffers of at most
// kMaxInfoRecordBytes (a record never spans two), before its InfoResult or error.
// Every record starts with InfoRecordHeader; `size` covers the header, the fixed part and the
// text bytes that follow it, rounded up to 8. Texts are not terminated: their lengths are in
// the fixed part. The host re-checks every size, count and length. Header-only,
// freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace instar::abi {

// Upper bound of one send_records buffer, and of all of them together (qemu's snapshot table
// may reach 64 MiB; its records are about as large).
inline constexpr uint32_t kMaxInfoRecordBytes = 1u << 20;
inline constexpr uint64_t kMaxInfoRecordTotalBytes = 128u << 20;
// Upper bounds per list (qemu's own limits where it has one).
inline constexpr uint32_t kMaxInfoSnapshots = 65536;
inline constexpr uint32_t kMaxInfoBitmaps = 65535;
inline constexpr uint32_t kMaxInfoExtents = 64;
inline constexpr uint32_t kMaxInfoFeatureNames = 192;  // 3 feature types x 64 bits

// Append-only.
enum class InfoRecordType : uint32_t {
  kDataFile = 1,        // InfoTextRecord: the qcow2 external data file name
  kSnapshot = 2,        // InfoSnapshotRecord + id + name
  kBitmap = 3,          // InfoBitmapRecord + name
  kVmdkCreateType = 4,  // InfoTextRecord
  kVmdkExtent = 5,      // InfoVmdkExtentRecord + type name + filename
  kLuks = 6,            // InfoLuksRecord
  kFeatureName = 7,     // InfoFeatureNameRecord + name (qcow2 feature name table)
  kErrorValue = 8,      // InfoErrorValueRecord: a second number for an error's message
  kErrorText = 9,       // InfoTextRecord: text an error's message quotes from the image
};

struct InfoRecordHeader {
  uint32_t type;  // InfoRecordType
  uint32_t size;  // bytes, header included, a multiple of 8
};
static_assert(sizeof(InfoRecordHeader) == 8);

struct InfoTextRecord {
  InfoRecordHeader header;
  uint32_t length;
  uint32_t reserved;
};
static_assert(sizeof(InfoTextRecord) == 16);

inline constexpr uint64_t kInfoNoIcount = 0xFFFFFFFFFFFFFFFFull;

struct InfoSnapshotRecord {
  InfoRecordHeader header;
  uint64_t vm_state_size;  // bytes
  uint64_t vm_clock_nsec;
  uint64_t icount;         // kInfoNoIcount when the entry has none
  uint32_t date_sec;
  uint32_t date_nsec;
  uint32_t id_length;
  uint32_t name_length;
};
static_assert(sizeof(InfoSnapshotRecord) == 48);
static_assert(offsetof(InfoSnapshotRecord, icount) == 24);
static_assert(offsetof(InfoSnapshotRecord, id_length) == 40);

// InfoBitmapRecord::flags bits (the bitmap directory's own).
inline constexpr uint32_t kInfoBitmapInUse = 1u << 0;
inline constexpr uint32_t kInfoBitmapAuto = 1u << 1;

struct InfoBitmapRecord {
  InfoRecordHeader header;
  uint32_t flags;
  uint32_t granularity_bits;
  uint32_t name_length;
  uint32_t reserved;
};
static_assert(sizeof(InfoBitmapRecord) == 24);

// InfoVmdkExtentRecord::flags bits.
inline constexpr uint32_t kInfoExtentCompressed = 1u << 0;
inline constexpr uint32_t kInfoExtentSparse = 1u << 1;  // has a sparse header (grains)

struct InfoVmdkExtentRecord {
  InfoRecordHeader header;
  uint64_t sectors;         // virtual size in 512-byte sectors
  uint32_t flags;           // kInfoExtent*
  uint32_t cluster_size;    // bytes; 0 when flat or not read yet
  uint32_t type_length;     // the descriptor's type word ("SPARSE", "FLAT"); 0 when embedded
  uint32_t filename_length; // the descriptor's file name; 0 for the image itself
};
static_assert(sizeof(InfoVmdkExtentRecord) == 32);

inline constexpr uint32_t kLuksKeySlots = 8;

struct InfoLuksSlot {
  uint32_t active;          // 1 or 0
  uint32_t iterations;
  uint32_t key_offset_sectors;
  uint32_t stripes;
};

// The LUKS1 header fields qemu reports; strings are the header's NUL-padded fields, copied
// as they are (the host checks them).
struct InfoLuksRecord {
  InfoRecordHeader header;
  char cipher_name[32];
  char cipher_mode[32];
  char hash_spec[32];
  char uuid[40];
  uint32_t payload_offset_sectors;
  uint32_t key_bytes;
  uint32_t master_key_iterations;
  uint32_t reserved;
  InfoLuksSlot slots[kLuksKeySlots];
};
static_assert(sizeof(InfoLuksRecord) == 8 + 136 + 16 + 16 * kLuksKeySlots);

// InfoFeatureNameRecord::type: the feature name table's own numbering.
inline constexpr uint32_t kFeatureIncompatible = 0;
inline constexpr uint32_t kFeatureCompatible = 1;
inline constexpr uint32_t kFeatureAutoclear = 2;

struct InfoFeatureNameRecord {
  InfoRecordHeader header;
  uint32_t feature_type;
  uint32_t bit;
  uint32_t name_length;  // <= 46, the table's field width
  uint32_t reserved;
};
static_assert(sizeof(InfoFeatureNameRecord) == 24);

struct InfoErrorValueRecord {
  InfoRecordHeader header;
  uint64_t value;
};
static_assert(sizeof(InfoErrorValueRecord) == 16);

}  // namespace instar::abi
