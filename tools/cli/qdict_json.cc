#include "tools/cli/qdict_json.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "vmm/base/text_format.h"

namespace instar::cli {
namespace {

constexpr uint32_t kQdictBuckets = 512;

// The string hash qemu's QDict buckets keys with (the TDB hash).
uint32_t QdictBucket(const std::string& key) {
  uint32_t value = 0x238F13AFu * static_cast<uint32_t>(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    value += static_cast<uint32_t>(static_cast<unsigned char>(key[i])) << (i * 5 % 24);
  }
  return (1103515243u * value + 12345u) % kQdictBuckets;
}

std::string Indent(int levels) { return std::string(static_cast<size_t>(levels) * 4, ' '); }

// Decodes one UTF-8 sequence at `p`; -1 for an invalid one (which consumes one byte).
int32_t DecodeUtf8(const unsigned char* p, size_t left, size_t* used) {
  *used = 1;
  const unsigned char c = p[0];
  if (c < 0x80) return c;
  int extra = 0;
  int32_t cp = 0;
  if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
  else return -1;
  if (static_cast<size_t>(extra) >= left) return -1;
  for (int i = 1; i <= extra; ++i) {
    if ((p[i] & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  static constexpr int32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  // qemu reads "modified UTF-8": the two-byte form of NUL is accepted.
  const bool overlong = cp < kMin[extra] && !(extra == 1 && cp == 0);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *used = static_cast<size_t>(extra) + 1;
  return cp;
}

}  // namespace

QValue QValue::Bool(bool v) { QValue q; q.kind_ = Kind::kBool; q.b_ = v; return q; }
QValue QValue::Int(int64_t v) { QValue q; q.kind_ = Kind::kInt; q.i_ = v; return q; }
QValue QValue::Uint(uint64_t v) { QValue q; q.kind_ = Kind::kUint; q.u_ = v; return q; }
QValue QValue::String(std::string v) {
  QValue q;
  q.kind_ = Kind::kString;
  q.s_ = std::move(v);
  return q;
}
QValue QValue::List() { QValue q; q.kind_ = Kind::kList; return q; }
QValue QValue::Dict() { return QValue(); }

QValue& QValue::Put(const std::string& key, QValue value) {
  dict_.emplace_back(key, std::move(value));
  return *this;
}

QValue& QValue::Append(QValue value) {
  list_.push_back(std::move(value));
  return *this;
}

std::vector<const std::pair<std::string, QValue>*> QValue::OrderedEntries() const {
  // Within a bucket qemu's list holds the latest insertion first.
  std::vector<std::pair<std::pair<uint32_t, size_t>, const std::pair<std::string, QValue>*>> keyed;
  keyed.reserve(dict_.size());
  for (size_t i = 0; i < dict_.size(); ++i) {
    keyed.push_back({{QdictBucket(dict_[i].first), dict_.size() - i}, &dict_[i]});
  }
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const std::pair<std::string, QValue>*> out;
  out.reserve(keyed.size());
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

std::string QemuJsonString(const std::string& text) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t left = text.size();
  while (left > 0) {
    size_t used = 0;
    int32_t cp = DecodeUtf8(p, left, &used);
    p += used;
    left -= used;
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (cp < 0) cp = 0xFFFD;
    if (cp > 0xFFFF) {
      const int32_t v = cp - 0x10000;
      out += Format("\\u%04X\\u%04X", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    } else if (cp < 0x20 || cp >= 0x7F) {
      out += Format("\\u%04X", static_cast<unsigned>(cp));
    } else {
      out += static_cast<char>(cp);
    }
  }
  return out + "\"";
}

std::string QValue::Scalar() const {
  switch (kind_) {
    case Kind::kBool: return b_ ? "true" : "false";
    case Kind::kInt: return std::to_string(i_);
    case Kind::kUint: return std::to_string(u_);
    case Kind::kString: return s_;
    case Kind::kList:
    case Kind::kDict: break;
  }
  return "";
}

std::string QValue::ToQemuJson(int indent) const {
  switch (kind_) {
    case Kind::kString: return QemuJsonString(s_);
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kUint: return Scalar();
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < list_.size(); ++i) {
        out += (i == 0 ? "\n" : ",\n") + Indent(indent + 1) + list_[i].ToQemuJson(indent + 1);
      }
      return out + "\n" + Indent(indent) + "]";
    }
    case Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto* e : OrderedEntries()) {
        out += (first ? "\n" : ",\n") + Indent(indent + 1) + QemuJsonString(e->first) + ": " +
               e->second.ToQemuJson(indent + 1);
        first = false;
      }
      return out + "\n" + Indent(indent) + "}";
    }
  }
  return "";
}

void QValue::DumpHuman(int indentation, std::string* out) const {
  auto line = [&](const std::string& label, const QValue& v) {
    const bool composite = v.kind_ == Kind::kList || v.kind_ == Kind::kDict;
    *out += Indent(indentation) + label + ":" + (composite ? "\n" : " ");
    if (composite) {
      v.DumpHuman(indentation + 1, out);
    } else {
      *out += v.Scalar() + "\n";
    }
  };
  if (kind_ == Kind::kList) {
    for (size_t i = 0; i < list_.size(); ++i) line("[" + std::to_string(i) + "]", list_[i]);
    return;
  }
  for (const auto* e : OrderedEntries()) {
    std::string label = e->first;
    std::replace(label.begin(), label.end(), '-', ' ');
    line(label, e->second);
  }
}

}  // namespace instar::cli
