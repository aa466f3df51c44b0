#include "tools/cli/qdict_json.h"

#include <gtest/gtest.h>

namespace instar::cli {
namespace {

TEST(QdictJson, OrdersKeysLikeQemu) {
  // The order qemu-img prints an ImageInfo in, whatever the insertion order.
  QValue v = QValue::Dict();
  v.Put("filename", QValue::String("a"));
  v.Put("format", QValue::String("qcow2"));
  v.Put("dirty-flag", QValue::Bool(false));
  v.Put("actual-size", QValue::Uint(1));
  v.Put("virtual-size", QValue::Uint(2));
  v.Put("snapshots", QValue::List());
  std::vector<std::string> keys;
  for (const auto* e : v.OrderedEntries()) keys.push_back(e->first);
  EXPECT_EQ(keys, (std::vector<std::string>{"snapshots", "virtual-size", "filename", "format",
                                            "actual-size", "dirty-flag"}));
}

TEST(QdictJson, PrettyPrintsLikeQemu) {
  QValue v = QValue::Dict();
  v.Put("flags", QValue::List());
  v.Put("name", QValue::String("x"));
  EXPECT_EQ(v.ToQemuJson(), "{\n    \"flags\": [\n    ],\n    \"name\": \"x\"\n}");
  EXPECT_EQ(QValue::Dict().ToQemuJson(1), "{\n    }");
}

TEST(QdictJson, EscapesStringsLikeQemu) {
  EXPECT_EQ(QemuJsonString("we\"ird\\\xc3\xa9"), "\"we\\\"ird\\\\\\u00E9\"");
  EXPECT_EQ(QemuJsonString("c\x01\x7f\xff"), "\"c\\u0001\\u007F\\uFFFD\"");
  EXPECT_EQ(QemuJsonString("\xf0\x9f\x98\x80"), "\"\\uD83D\\uDE00\"");
  EXPECT_EQ(QemuJsonString("\t\n/"), "\"\\t\\n/\"");
}

TEST(QdictJson, DumpsHumanLikeQemuImg) {
  QValue bitmap = QValue::Dict();
  bitmap.Put("flags", QValue::List().Append(QValue::String("auto")));
  bitmap.Put("name", QValue::String("b0"));
  QValue v = QValue::Dict();
  v.Put("lazy-refcounts", QValue::Bool(true));
  v.Put("bitmaps", QValue::List().Append(std::move(bitmap)));
  std::string out;
  v.DumpHuman(1, &out);
  EXPECT_EQ(out,
            "    lazy refcounts: true\n"
            "    bitmaps:\n"
            "        [0]:\n"
            "            flags:\n"
            "                [0]: auto\n"
            "            name: b0\n");
}

}  // namespace
}  // namespace instar::cli
