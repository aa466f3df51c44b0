#include "vmm/daemon/server.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "vmm/base/text_format.h"
#include "vmm/base/unique_fd.h"
#include "vmm/daemon/peer.h"
#include "vmm/daemon/protocol.h"

namespace instar::vmm::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr size_t kLatencyWindow = 4096;

Status Errno(const std::string& what) {
  return IoError(what + ": " + std::strerror(errno));
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

class Server {
 public:
  explicit Server(ServerConfig config) : config_(std::move(config)), started_(Clock::now()) {}

  Status Run();

 private:
  void ServeConnection(UniqueFd socket);
  // The reply line for one request line (without the newline); empty when the client left.
  std::string Handle(const std::string& line, std::vector<UniqueFd>& fds, int socket,
                     const Credentials& peer);
  std::string StatusReply(const Json& id);
  bool Admit();  // false: busy or draining
  void Release(double ms, bool ok);
  void Log(const Json& entry);
  void Reload();

  std::mutex mu_;
  std::condition_variable cv_;
  ServerConfig config_;
  const Clock::time_point started_;
  uint32_t in_flight_ = 0, queued_ = 0;
  uint32_t handling_ = 0;  // request lines read and not yet answered
  bool draining_ = false;
  std::set<int> connections_;
  uint64_t requests_ = 0, succeeded_ = 0, failed_ = 0, busy_ = 0, malformed_ = 0;
  std::deque<double> latencies_ms_;
  std::mutex log_mu_;
  // Started in Run once the signals are blocked (its thread must not take SIGTERM), stopped
  // after the drain.
  std::optional<WorkerPool> pool_;
};

void Server::Log(const Json& entry) {
  Json line = entry;
  line["ts"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
  const std::string text = Dump(line) + "\n";
  std::lock_guard<std::mutex> lock(log_mu_);
  // A log line that cannot be written is dropped; the request still gets its reply.
  if (::write(STDERR_FILENO, text.data(), text.size()) < 0) return;
}

bool Server::Admit() {
  std::unique_lock<std::mutex> lock(mu_);
  if (draining_) return false;
  if (in_flight_ < config_.max_concurrent) {
    ++in_flight_;
    return true;
  }
  if (queued_ >= config_.max_queue) return false;
  ++queued_;
  cv_.wait(lock, [&] { return in_flight_ < config_.max_concurrent; });
  --queued_;
  ++in_flight_;
  return true;
}

void Server::Release(double ms, bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_;
  ++(ok ? succeeded_ : failed_);
  latencies_ms_.push_back(ms);
  if (latencies_ms_.size() > kLatencyWindow) latencies_ms_.pop_front();
  cv_.notify_all();
}

std::string Server::StatusReply(const Json& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> sorted(latencies_ms_.begin(), latencies_ms_.end());
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted.empty() ? 0.0 : sorted[std::min(sorted.size() - 1,
                                                  static_cast<size_t>(p * sorted.size()))];
  };
  Json result = {
      {"version", "0.1"},
      {"uptime_s", std::chrono::duration<double>(Clock::now() - started_).count()},
      {"in_flight", in_flight_},
      {"queued", queued_},
      {"connections", connections_.size()},
      {"draining", draining_},
      {"limits", {{"max_concurrent", config_.max_concurrent},
                  {"max_queue", config_.max_queue},
                  {"spare_workers", config_.spare_workers},
                  {"deadline_ms", config_.deadline.count()}}},
      {"counters", {{"requests", requests_}, {"succeeded", succeeded_}, {"failed", failed_},
                    {"busy", busy_}, {"malformed", malformed_}}},
      {"latency_ms", {{"p50", pct(0.50)}, {"p90", pct(0.90)}, {"p99", pct(0.99)},
                      {"window", sorted.size()}}},
  };
  const WorkerPool::Counts workers = pool_->counts();
  result["workers"] = {{"idle", workers.idle}, {"retiring", workers.retiring},
                       {"started", workers.started}, {"died_idle", workers.died_idle}};
  return Dump(Json{{"id", id}, {"ok", true}, {"result", result}});
}

std::string Server::Handle(const std::string& line, std::vector<UniqueFd>& fds, int socket,
                           const Credentials& peer) {
  auto parsed = ParseRequest(line);
  if (!parsed.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++malformed_;
    const bool unknown = parsed.status().code() == StatusCode::kNotFound;
    return ErrorReply(nullptr, unknown ? kUnknownOp : kBadRequest, parsed.status().message());
  }
  Request& request = parsed.value();
  if (request.op == "status") return StatusReply(request.id);

  WorkOrder order;
  order.argv.push_back(request.op);
  order.argv.insert(order.argv.end(), request.argv.begin(), request.argv.end());
  order.cwd = request.cwd;
  for (const auto& [name, index] : request.files) {
    if (static_cast<size_t>(index) >= fds.size()) {
      return ErrorReply(request.id, kBadRequest,
                        "\"files\" names descriptor " + std::to_string(index) +
                            " but the request carried " + std::to_string(fds.size()));
    }
    order.files.emplace_back(name, fds[index].get());
  }
  order.credentials = peer;
  order.client_socket = socket;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    order.deadline = config_.deadline;
  }
  if (request.deadline_ms) {
    order.deadline = std::min(order.deadline, std::chrono::milliseconds(*request.deadline_ms));
  }
  if (!Admit()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++busy_;
    return draining_ ? ErrorReply(request.id, kShuttingDown, "the daemon is shutting down")
                     : ErrorReply(request.id, kBusy, "too many requests in flight and queued");
  }
  const auto t0 = Clock::now();
  const WorkOutcome outcome = RunInWorker(*pool_, order);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const bool ok = outcome.exit_code == 0 && !outcome.timed_out && !outcome.cancelled;
  Release(ms, ok);
  Log({{"event", "request"}, {"op", request.op}, {"uid", peer.uid}, {"pid", peer.pid},
       {"exit", outcome.exit_code}, {"ok", ok}, {"ms", ms}, {"timed_out", outcome.timed_out},
       {"cancelled", outcome.cancelled}});
  if (outcome.cancelled) return {};

  Json reply{{"id", request.id}, {"ok", ok}};
  if (outcome.timed_out) {
    reply["error"] = {{"code", kTimeout},
                      {"message", "the request ran past its deadline of " +
                                      std::to_string(order.deadline.count()) + " ms"}};
  } else if (!ok) {
    std::string message = outcome.err.substr(0, outcome.err.find('\n'));
    reply["error"] = {{"code", kFailed}, {"message", message}};
  } else {
    Json result = Json::parse(outcome.out, nullptr, false);
    reply["result"] = result.is_discarded() ? Json(nullptr) : result;
  }
  reply["stdout"] = outcome.out;
  reply["stderr"] = outcome.err;
  reply["exit"] = outcome.timed_out ? 1 : outcome.exit_code;
  return Dump(reply);
}

void Server::ServeConnection(UniqueFd socket) {
  auto peer = PeerCredentials(socket.get());
  timeval idle{static_cast<time_t>(config_.idle_timeout.count() / 1000),
               static_cast<suseconds_t>((config_.idle_timeout.count() % 1000) * 1000)};
  ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
  std::string pending;
  std::vector<UniqueFd> fds;
  char buffer[16384];
  while (peer.ok()) {
    const size_t newline = pending.find('\n');
    if (newline != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++handling_;
      }
      std::string reply = Handle(line, fds, socket.get(), *peer);
      fds.clear();  // descriptors belong to the request they came with
      const bool sent = !reply.empty() &&
                        SendWithFds(socket.get(), (reply + '\n').data(), reply.size() + 1, {}).ok();
      {
        std::lock_guard<std::mutex> lock(mu_);
        --handling_;
        cv_.notify_all();
      }
      if (!sent) break;
      continue;
    }
    if (pending.size() > kMaxRequestBytes) {
      const std::string reply =
          ErrorReply(nullptr, kBadRequest, "request longer than 64 KiB") + "\n";
      (void)SendWithFds(socket.get(), reply.data(), reply.size(), {});
      std::lock_guard<std::mutex> lock(mu_);
      ++malformed_;
      break;
    }
    auto n = ReceiveWithFds(socket.get(), buffer, sizeof buffer, &fds);
    if (!n.ok() || *n == 0) break;
    pending.append(buffer, *n);
  }
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(socket.get());
  cv_.notify_all();
}

void Server::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  if (config_.config_file.empty()) return;
  ServerConfig next = config_;
  const Status s = LoadConfigFile(config_.config_file, &next);
  if (s.ok()) {
    config_ = next;
    pool_->SetSpares(config_.spare_workers);
    cv_.notify_all();
  }
  Log({{"event", "reload"}, {"ok", s.ok()}, {"message", s.message()}});
}

Status Server::Run() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) return Errno("sigprocmask");
  if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) return Errno("signal");
  UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!signal_fd.valid()) return Errno("signalfd");

  // Bind and listen under a temporary name, set the mode, then rename into place: a client
  // never finds a socket that refuses connections or has the wrong permissions.
  const std::string staging = config_.socket_path + ".new-" + std::to_string(::getpid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (staging.size() >= sizeof addr.sun_path) return InvalidArgument("socket path too long");
  std::memcpy(addr.sun_path, staging.data(), staging.size());  // NUL: addr{} zeroed it
  struct stat st {};
  if (::lstat(config_.socket_path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    return InvalidArgument(config_.socket_path + " exists and is not a socket");
  }
  ::unlink(staging.c_str());
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return Errno("socket");
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Errno("bind " + staging);
  }
  if (::chmod(staging.c_str(), config_.socket_mode) != 0 ||
      ::listen(listener.get(), 128) != 0 ||
      ::rename(staging.c_str(), config_.socket_path.c_str()) != 0) {
    Status failed = Errno("listening on " + config_.socket_path);
    ::unlink(staging.c_str());
    return failed;
  }
  pool_.emplace(config_.spare_workers);
  Log({{"event", "start"}, {"socket", config_.socket_path},
       {"max_concurrent", config_.max_concurrent}, {"max_queue", config_.max_queue},
       {"spare_workers", config_.spare_workers}});

  for (;;) {
    pollfd p[2] = {{listener.get(), POLLIN, 0}, {signal_fd.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Errno("poll");
    }
    if (p[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd.get(), &info, sizeof info) != sizeof info) continue;
      if (info.ssi_signo == SIGHUP) {
        Reload();
        continue;
      }
      break;  // SIGTERM or SIGINT: drain
    }
    if (!(p[0].revents & POLLIN)) continue;
    UniqueFd client(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (connections_.size() >= config_.max_connections) {
        const std::string reply = ErrorReply(nullptr, kBusy, "too many connections") + "\n";
        (void)SendWithFds(client.get(), reply.data(), reply.size(), {});
        ++busy_;
        continue;
      }
      connections_.insert(client.get());
    }
    std::thread([this, fd = std::move(client)]() mutable { ServeConnection(std::move(fd)); })
        .detach();
  }

  // Drain: refuse new work, let every request already read finish and be answered (new ones
  // get "shutting_down"), then close the idle connections and wait for their threads.
  listener.Reset();
  ::unlink(config_.socket_path.c_str());
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  Log({{"event", "draining"}, {"in_flight", in_flight_}, {"queued", queued_}});
  cv_.wait(lock, [&] { return handling_ == 0; });
  for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  cv_.wait(lock, [&] { return connections_.empty(); });
  lock.unlock();
  pool_.reset();  // idle workers are let go, answered ones reaped
  lock.lock();
  Log({{"event", "stopped"}, {"requests", requests_}});
  return Status::Ok();
}

}  // namespace

Status LoadConfigFile(const std::string& path, ServerConfig* config) {
  std::ifstream in(path);
  if (!in) return IoError("cannot read " + path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string key;
    uint64_t value = 0;
    if (!(words >> key >> value) || (value == 0 && key != "spare-workers") ||
        (key == "spare-workers" && value > kMaxSpareWorkers)) {
      return InvalidArgument(path + ":" + std::to_string(number) + ": expected 'key number'");
    }
    if (key == "spare-workers") config->spare_workers = static_cast<uint32_t>(value);
    else if (key == "max-concurrent") config->max_concurrent = static_cast<uint32_t>(value);
    else if (key == "max-queue") config->max_queue = static_cast<uint32_t>(value);
    else if (key == "deadline-ms") config->deadline = std::chrono::milliseconds(value);
    else return InvalidArgument(Format("%s:%d: unknown key %s", path.c_str(), number,
                                       key.c_str()));
  }
  return Status::Ok();
}

Status RunServer(ServerConfig config) {
  if (!config.config_file.empty()) INSTAR_RETURN_IF_ERROR(LoadConfigFile(config.config_file, &config));
  Server server(std::move(config));
  return server.Run();
}

}  // namespace instar::vmm::daemon
