// QValue: the tree qemu-img builds for what it prints (QAPI objects turned into QDicts), and
// its two printers. qemu iterates a QDict bucket by bucket (its 512-bucket string hash), so
// keys come out in that order, not in insertion order; both printers reproduce it:
// - ToQemuJson: qemu's pretty JSON (4-space indent, its string escapes);
// - DumpHuman: qemu-img's "Format specific information" dump ("key: value", '-' -> ' ').
// Host-only.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace instar::cli {

class QValue {
 public:
  enum class Kind { kBool, kInt, kUint, kString, kList, kDict };

  static QValue Bool(bool v);
  static QValue Int(int64_t v);
  static QValue Uint(uint64_t v);
  static QValue String(std::string v);
  static QValue List();
  static QValue Dict();

  // Dict: adds `key` (keys are unique; the caller never repeats one).
  QValue& Put(const std::string& key, QValue value);
  // List: appends.
  QValue& Append(QValue value);

  Kind kind() const { return kind_; }
  // Dict entries in qemu's iteration order.
  std::vector<const std::pair<std::string, QValue>*> OrderedEntries() const;

  std::string ToQemuJson(int indent = 0) const;
  // Appends qemu-img's human dump of this dict or list at `indentation` levels.
  void DumpHuman(int indentation, std::string* out) const;

 private:
  std::string Scalar() const;  // human form of a scalar

  Kind kind_ = Kind::kDict;
  bool b_ = false;
  int64_t i_ = 0;
  uint64_t u_ = 0;
  std::string s_;
  std::vector<QValue> list_;
  std::vector<std::pair<std::string, QValue>> dict_;
};

// qemu's JSON string literal for `text` (quotes included).
std::string QemuJsonString(const std::string& text);

}  // namespace instar::cli
