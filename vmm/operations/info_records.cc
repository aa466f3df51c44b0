#include "vmm/operations/info_records.h"

#include <cstring>

namespace instar::vmm {
namespace {

Status Bad(const std::string& what) { return GuestFailed("info records: " + what); }

// A cursor over one record: the fixed part, then texts.
class RecordReader {
 public:
  RecordReader(const uint8_t* data, uint32_t size) : data_(data), size_(size) {}

  template <class T>
  bool Fixed(T* out) {
    if (sizeof(T) > size_) return false;
    std::memcpy(out, data_, sizeof(T));
    pos_ = sizeof(T);
    return true;
  }
  // A text of `length` bytes after what was read. qemu keeps image strings as C strings, so
  // the text ends at its first NUL.
  bool Text(uint32_t length, std::string* out) {
    if (length > size_ - pos_) return false;
    const auto* text = reinterpret_cast<const char*>(data_ + pos_);
    out->assign(text, strnlen(text, length));
    pos_ += length;
    return true;
  }
  // Everything after the texts is padding: fewer than 8 bytes.
  bool Done() const { return size_ - pos_ < 8; }

 private:
  const uint8_t* data_;
  uint32_t size_;
  uint32_t pos_ = 0;
};

// A NUL-padded fixed-width field of the LUKS header: printable ASCII up to the first NUL.
bool PaddedField(const char* field, size_t width, std::string* out) {
  const size_t n = strnlen(field, width);
  out->assign(field, n);
  for (char c : *out) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

}  // namespace

LuksMode SplitLuksMode(const LuksInfo& luks) {
  LuksMode m;
  const size_t dash = luks.cipher_mode.find('-');
  m.mode = luks.cipher_mode.substr(0, dash);
  if (dash == std::string::npos) return m;
  m.ivgen = luks.cipher_mode.substr(dash + 1);
  const size_t colon = m.ivgen.find(':');
  if (colon != std::string::npos) {
    m.ivgen_hash = m.ivgen.substr(colon + 1);
    m.ivgen.resize(colon);
  }
  return m;
}

uint32_t LuksCipherKeyBytes(const LuksInfo& luks) {
  return SplitLuksMode(luks).mode == "xts" ? luks.key_bytes / 2 : luks.key_bytes;
}

StatusOr<InfoRecords> ParseInfoRecords(const std::vector<uint8_t>& bytes) {
  InfoRecords out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < sizeof(abi::InfoRecordHeader)) return Bad("truncated header");
    abi::InfoRecordHeader h;
    std::memcpy(&h, bytes.data() + pos, sizeof h);
    if (h.size < sizeof h || h.size % 8 != 0 || h.size > bytes.size() - pos) {
      return Bad("bad record size");
    }
    RecordReader r(bytes.data() + pos, h.size);
    pos += h.size;
    switch (static_cast<abi::InfoRecordType>(h.type)) {
      case abi::InfoRecordType::kDataFile:
      case abi::InfoRecordType::kVmdkCreateType:
      case abi::InfoRecordType::kErrorText: {
        abi::InfoTextRecord t;
        std::string text;
        if (!r.Fixed(&t) || !r.Text(t.length, &text) || !r.Done()) return Bad("bad text record");
        const auto type = static_cast<abi::InfoRecordType>(h.type);
        auto& slot = type == abi::InfoRecordType::kDataFile         ? out.data_file
                     : type == abi::InfoRecordType::kVmdkCreateType ? out.vmdk_create_type
                                                                    : out.error_text;
        if (slot) return Bad("repeated text record");
        slot = std::move(text);
        break;
      }
      case abi::InfoRecordType::kSnapshot: {
        abi::InfoSnapshotRecord s;
        SnapshotInfo info;
        if (!r.Fixed(&s) || !r.Text(s.id_length, &info.id) || !r.Text(s.name_length, &info.name) ||
            !r.Done()) {
          return Bad("bad snapshot record");
        }
        if (out.snapshots.size() >= abi::kMaxInfoSnapshots) return Bad("too many snapshots");
        info.vm_state_size = s.vm_state_size;
        info.vm_clock_nsec = s.vm_clock_nsec;
        if (s.icount != abi::kInfoNoIcount) info.icount = s.icount;
        info.date_sec = s.date_sec;
        info.date_nsec = s.date_nsec;
        out.snapshots.push_back(std::move(info));
        break;
      }
      case abi::InfoRecordType::kBitmap: {
        abi::InfoBitmapRecord b;
        BitmapInfo info;
        if (!r.Fixed(&b) || !r.Text(b.name_length, &info.name) || !r.Done() ||
            b.granularity_bits > 63 ||
            (b.flags & ~(abi::kInfoBitmapInUse | abi::kInfoBitmapAuto)) != 0) {
          return Bad("bad bitmap record");
        }
        if (out.bitmaps.size() >= abi::kMaxInfoBitmaps) return Bad("too many bitmaps");
        info.in_use = (b.flags & abi::kInfoBitmapInUse) != 0;
        info.auto_ = (b.flags & abi::kInfoBitmapAuto) != 0;
        info.granularity_bits = b.granularity_bits;
        out.bitmaps.push_back(std::move(info));
        break;
      }
      case abi::InfoRecordType::kVmdkExtent: {
        abi::InfoVmdkExtentRecord x;
        VmdkExtentInfo info;
        if (!r.Fixed(&x) || !r.Text(x.type_length, &info.type) ||
            !r.Text(x.filename_length, &info.filename) || !r.Done() ||
            (x.flags & ~(abi::kInfoExtentCompressed | abi::kInfoExtentSparse)) != 0 ||
            x.cluster_size % 512 != 0 ||
            x.sectors > UINT64_MAX / 512) {
          return Bad("bad extent record");
        }
        if (out.extents.size() >= abi::kMaxInfoExtents) return Bad("too many extents");
        info.sectors = x.sectors;
        info.sparse = (x.flags & abi::kInfoExtentSparse) != 0;
        info.compressed = (x.flags & abi::kInfoExtentCompressed) != 0;
        info.cluster_size = x.cluster_size;
        out.extents.push_back(std::move(info));
        break;
      }
      case abi::InfoRecordType::kLuks: {
        abi::InfoLuksRecord l;
        LuksInfo info;
        if (!r.Fixed(&l) || !r.Done() || out.luks ||
            !PaddedField(l.cipher_name, sizeof l.cipher_name, &info.cipher_name) ||
            !PaddedField(l.cipher_mode, sizeof l.cipher_mode, &info.cipher_mode) ||
            !PaddedField(l.hash_spec, sizeof l.hash_spec, &info.hash_spec) ||
            !PaddedField(l.uuid, sizeof l.uuid, &info.uuid)) {
          return Bad("bad luks record");
        }
        info.key_bytes = l.key_bytes;
        info.payload_offset = uint64_t{l.payload_offset_sectors} * 512;
        info.master_key_iterations = l.master_key_iterations;
        for (const abi::InfoLuksSlot& s : l.slots) {
          if (s.active > 1) return Bad("bad luks slot");
          info.slots.push_back({s.active == 1, s.iterations, uint64_t{s.key_offset_sectors} * 512,
                                s.stripes});
        }
        out.luks = std::move(info);
        break;
      }
      case abi::InfoRecordType::kFeatureName: {
        abi::InfoFeatureNameRecord f;
        FeatureNameInfo info;
        if (!r.Fixed(&f) || f.name_length > 46 || !r.Text(f.name_length, &info.name) ||
            !r.Done() || f.feature_type > abi::kFeatureAutoclear || f.bit > 63) {
          return Bad("bad feature name record");
        }
        if (out.feature_names.size() >= abi::kMaxInfoFeatureNames) {
          return Bad("too many feature names");
        }
        info.type = f.feature_type;
        info.bit = f.bit;
        out.feature_names.push_back(std::move(info));
        break;
      }
      case abi::InfoRecordType::kErrorValue: {
        abi::InfoErrorValueRecord v;
        if (!r.Fixed(&v) || !r.Done() || out.error_value) return Bad("bad error value record");
        out.error_value = v.value;
        break;
      }
      default:
        return Bad("unknown record type " + std::to_string(h.type));
    }
  }
  return out;
}

Status CheckRecordCounts(const InfoRecords& records, const abi::InfoResult& result) {
  if (records.snapshots.size() != result.snapshot_count ||
      records.bitmaps.size() != result.bitmap_count ||
      records.extents.size() != result.extent_count ||
      records.feature_names.size() != result.feature_name_count) {
    return Bad("record counts disagree with the result");
  }
  return Status::Ok();
}

}  // namespace instar::vmm
