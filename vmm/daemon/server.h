// Server: the instard main loop. Listens on a Unix stream socket, serves one JSON request per
// line per connection (vmm/daemon/protocol.h), runs each in a pre-started worker process with
// the client's credentials (vmm/daemon/worker.h, worker_pool.h), bounded by a concurrency
// limit and a queue limit ("busy" beyond it), with per-request deadlines. SIGTERM drains
// in-flight work and refuses new work; SIGHUP re-reads the configuration file. Logs one JSON line per request on stderr.
// Host-only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "vmm/base/status.h"
#include "vmm/daemon/worker.h"

namespace instar::vmm::daemon {

inline constexpr uint32_t kMaxSpareWorkers = 64;

struct ServerConfig {
  std::string socket_path;
  mode_t socket_mode = 0666;   // access is decided per request by the client's credentials
  uint32_t max_concurrent = 4;
  uint32_t max_queue = 64;
  uint32_t spare_workers = 2;  // workers started ahead of need (vmm/daemon/worker_pool.h)
  uint32_t max_connections = 256;
  std::chrono::milliseconds deadline{30000};
  std::chrono::milliseconds idle_timeout{60000};  // a connection that sends nothing is closed
  std::string config_file;     // re-read on SIGHUP: "key value" lines (see docs/daemon.md)
};

// Applies "max-concurrent N", "max-queue N", "deadline-ms N", "spare-workers N" lines from
// `path` to `config`.
Status LoadConfigFile(const std::string& path, ServerConfig* config);

// Runs until SIGTERM (or SIGINT) and the drain finish. Workers are this executable run as
// `instard --worker` (its main must hand that to WorkerMain, vmm/daemon/worker.h).
Status RunServer(ServerConfig config);

}  // namespace instar::vmm::daemon
