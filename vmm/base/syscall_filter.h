// SyscallFilter: an allow-list of system calls, each optionally limited to listed values of
// its arguments, compiled to a seccomp BPF program and installed on the calling thread only
// (no SECCOMP_FILTER_FLAG_TSYNC: the other threads of the process keep doing set-up).
// Anything not allowed kills the whole process (SECCOMP_RET_KILL_PROCESS), as does a call
// made through another architecture's system call table. Host-only, x86-64.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/base/status.h"

namespace instar::vmm {

class SyscallFilter {
 public:
  // One test on an argument's low 32 bits (the kernel reads the arguments allowed here as
  // 32-bit: descriptors, ioctl numbers, pids, signals, protection bits).
  struct ArgTest {
    enum class Kind { kOneOf, kBitsClear };
    unsigned arg = 0;               // 0..5
    Kind kind = Kind::kOneOf;
    std::vector<uint32_t> values;   // kOneOf: the values it may take
    uint32_t bits = 0;              // kBitsClear: bits it must not have
  };

  static ArgTest OneOf(unsigned arg, std::vector<uint32_t> values) {
    return {arg, ArgTest::Kind::kOneOf, std::move(values), 0};
  }
  static ArgTest BitsClear(unsigned arg, uint32_t bits) {
    return {arg, ArgTest::Kind::kBitsClear, {}, bits};
  }

  // Allows `nr` when every test holds (several rules for one call are alternatives).
  SyscallFilter& Allow(int nr, std::vector<ArgTest> tests = {});

  // Sets no_new_privs and installs the program on this thread. Irrevocable: the thread keeps
  // the filter until it ends.
  Status InstallOnThisThread() const;

  // The program (tests inspect its size; the kernel caps it at 4096 instructions).
  struct Instruction {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
  };
  std::vector<Instruction> Compile() const;

 private:
  struct Rule {
    int nr;
    std::vector<ArgTest> tests;
  };
  std::vector<Rule> rules_;
};

}  // namespace instar::vmm
