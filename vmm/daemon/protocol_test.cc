#include "vmm/daemon/protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace instar::vmm::daemon {
namespace {

TEST(ParseRequest, ArrayArgsAreArgv) {
  auto r = ParseRequest(R"({"id": 7, "op": "info", "args": ["--output=json", "a.qcow2"],
                            "cwd": "/tmp", "deadline_ms": 500})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, 7);
  EXPECT_EQ(r->op, "info");
  EXPECT_EQ(r->argv, (std::vector<std::string>{"--output=json", "a.qcow2"}));
  EXPECT_EQ(r->cwd, "/tmp");
  EXPECT_EQ(r->deadline_ms, 500u);
}

TEST(ParseRequest, ObjectArgsMirrorTheFlags) {
  auto r = ParseRequest(
      R"({"op": "info", "args": {"filename": "a b.qcow2", "output": "json", "format": "qcow2",
                                  "backing_chain": true, "force_share": false}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->argv, (std::vector<std::string>{"--backing-chain", "--format=qcow2",
                                               "--output=json", "a b.qcow2"}));
  auto resize = ParseRequest(R"({"op": "resize", "args": {"filename": "x", "size": "+1G",
                                                           "shrink": true}})");
  ASSERT_TRUE(resize.ok());
  EXPECT_EQ(resize->argv, (std::vector<std::string>{"--shrink", "x", "+1G"}));
  auto rebase = ParseRequest(R"({"op": "rebase", "args": {"filename": "o.qcow2", "backing": "",
                                                           "backing_format": "qcow2",
                                                           "unsafe": true}})");
  ASSERT_TRUE(rebase.ok());
  EXPECT_EQ(rebase->argv, (std::vector<std::string>{"--backing=", "--backing-format=qcow2",
                                                    "--unsafe", "o.qcow2"}));
}

TEST(ParseRequest, CommitObjectArgsAreItsLongOptions) {
  auto r = ParseRequest(R"({"op": "commit", "args": {"filename": "top.qcow2", "base": "b.qcow2",
                                                      "drop": true, "progress": false,
                                                      "format": "qcow2"}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->argv, (std::vector<std::string>{"--base=b.qcow2", "--drop", "--format=qcow2",
                                               "top.qcow2"}));
  auto positional = ParseRequest(R"({"op": "commit", "args": ["-d", "-b", "b", "top"]})");
  ASSERT_TRUE(positional.ok());
  EXPECT_EQ(positional->argv, (std::vector<std::string>{"-d", "-b", "b", "top"}));
}

TEST(ParseRequest, FilesMapNamesToDescriptorIndices) {
  auto r = ParseRequest(R"({"op": "info", "args": ["img"], "files": {"img": 0}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->files.at("img"), 0);
}

TEST(ParseRequest, RefusesMalformedRequests) {
  const char* bad[] = {
      "",
      "not json",
      "[1,2]",
      R"({"args": []})",
      R"({"op": 5})",
      R"({"op": "info", "args": "x"})",
      R"({"op": "info", "args": [1]})",
      R"({"op": "info", "args": {"filename": 3}})",
      R"({"op": "info", "args": {"x": [1]}})",
      R"({"op": "info", "cwd": "relative"})",
      R"({"op": "info", "files": {"a": 99}})",
      R"({"op": "info", "files": {"a": -1}})",
      R"({"op": "info", "deadline_ms": 0})",
      R"({"op": "info", "deadline_ms": "5"})",
  };
  for (const char* line : bad) {
    auto r = ParseRequest(line);
    EXPECT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << line;
  }
  EXPECT_EQ(ParseRequest(R"({"op": "format-disk"})").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(ParseRequest(std::string(kMaxRequestBytes + 1, ' ')).ok());
  std::string many = R"({"op": "info", "args": [)";
  for (size_t i = 0; i <= kMaxArgs; ++i) many += std::string(i ? "," : "") + "\"a\"";
  EXPECT_FALSE(ParseRequest(many + "]}").ok());
  EXPECT_FALSE(ParseRequest(R"({"op": "info", "args": ["a\u0000b"]})").ok());
}

TEST(ErrorReply, IsOneJsonLine) {
  const std::string reply = ErrorReply(3, kBusy, "too many \"requests\"\n");
  EXPECT_EQ(reply.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(reply);
  EXPECT_EQ(j["id"], 3);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"]["code"], "busy");
}

}  // namespace
}  // namespace instar::vmm::daemon
