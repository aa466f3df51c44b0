#include "vmm/base/syscall_filter.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace instar::vmm {
namespace {

using Instruction = SyscallFilter::Instruction;

constexpr uint32_t kNrOffset = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOffset = offsetof(seccomp_data, arch);

// The low word of argument `arg` (x86-64 is little-endian).
uint32_t ArgOffset(unsigned arg) {
  return static_cast<uint32_t>(offsetof(seccomp_data, args) + sizeof(uint64_t) * arg);
}

Instruction Stmt(uint16_t code, uint32_t k) { return {code, 0, 0, k}; }
Instruction Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { return {code, jt, jf, k}; }

size_t TestLength(const SyscallFilter::ArgTest& t) {
  return t.kind == SyscallFilter::ArgTest::Kind::kOneOf ? t.values.size() + 2 : 2;
}

// A conditional jump's offset: BPF jumps count the instructions skipped after the jump.
uint8_t Offset(size_t from, size_t to) {
  const size_t skip = to - from - 1;
  if (skip > 255) std::abort();  // rules are small; Allow() bounds them
  return static_cast<uint8_t>(skip);
}

}  // namespace

SyscallFilter& SyscallFilter::Allow(int nr, std::vector<ArgTest> tests) {
  size_t length = 3;
  for (const ArgTest& t : tests) length += TestLength(t);
  if (length > 200) std::abort();  // a programming error: split the rule
  rules_.push_back({nr, std::move(tests)});
  return *this;
}

std::vector<Instruction> SyscallFilter::Compile() const {
  std::vector<Instruction> p;
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kArchOffset));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  p.push_back(Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  // One block per rule: fall through to the next block when the rule does not match.
  for (const Rule& rule : rules_) {
    size_t end = p.size() + 3;
    for (const ArgTest& t : rule.tests) end += TestLength(t);
    p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kNrOffset));
    p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(rule.nr), 0,
                     Offset(p.size(), end)));
    for (const ArgTest& t : rule.tests) {
      p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, ArgOffset(t.arg)));
      if (t.kind == ArgTest::Kind::kBitsClear) {
        p.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, t.bits, Offset(p.size(), end), 0));
        continue;
      }
      const size_t after = p.size() + t.values.size() + 1;  // past the values and the JA
      for (uint32_t v : t.values) {
        p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, v, Offset(p.size(), after), 0));
      }
      p.push_back(Stmt(BPF_JMP | BPF_JA, static_cast<uint32_t>(end - p.size() - 1)));
    }
    p.push_back(Stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  p.push_back(Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  return p;
}

Status SyscallFilter::InstallOnThisThread() const {
  const std::vector<Instruction> program = Compile();
  std::vector<sock_filter> filter;
  filter.reserve(program.size());
  for (const Instruction& i : program) filter.push_back({i.code, i.jt, i.jf, i.k});
  const sock_fprog fprog{static_cast<unsigned short>(filter.size()), filter.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Internal(std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno));
  }
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
    return Internal(std::string("installing the seccomp filter: ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace instar::vmm
