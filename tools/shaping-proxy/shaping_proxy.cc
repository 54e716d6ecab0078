// tf-shaping-proxy: a TCP relay that makes a loopback S3 server behave like a remote one.
//
//   tf-shaping-proxy --upstream HOST:PORT [--listen 127.0.0.1:0] [--first-byte-delay-ms N]
//                    [--bandwidth BYTES_PER_S] [--port-file FILE] [--stats-file FILE]
//
// The first byte of each response is held back until N ms after its request reached the proxy
// (the round trip to a distant object store), and each direction of each connection is capped at
// BYTES_PER_S. It does not parse HTTP: clients send one request at a time per connection, so
// "client bytes, then upstream bytes" is one request and its response.
//
// Unshaped it must stay out of the way: bytes move socket -> pipe -> socket with splice(2) and
// never enter user space. Two threads per connection, one per direction, with blocking sockets.
//
// Once listening, the bound port is written to --port-file and "listening on HOST:PORT" to
// stderr. SIGTERM and SIGINT write the counters to --stats-file as one JSON object and exit 0;
// SIGUSR1 rewrites the file and keeps serving.
//
// Build: g++ -std=c++20 -O2 -pthread shaping_proxy.cc -o tf-shaping-proxy

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kProgram[] = "tf-shaping-proxy";
constexpr char kUsage[] =
    "usage: tf-shaping-proxy --upstream HOST:PORT [--listen 127.0.0.1:0]\n"
    "                        [--first-byte-delay-ms N] [--bandwidth BYTES_PER_S]\n"
    "                        [--port-file FILE] [--stats-file FILE]\n";

// The larger the pipe, the fewer splice calls per byte; 1 MiB is the default limit for
// unprivileged processes (fs.pipe-max-size).
constexpr int kWantedPipeBytes = 1 << 20;
// With a cap, bytes move in steps this small so the rate is smooth rather than bursty.
constexpr size_t kShapedStepBytes = 64 << 10;
// Without some slack a capped direction runs a few percent slow: every late wake-up is lost.
constexpr std::chrono::milliseconds kPacerCatchUp{10};
// Relay threads need little stack; the default 8 MiB per thread adds up over hundreds.
constexpr size_t kThreadStackBytes = 256 << 10;
constexpr int64_t kMaxDelayMs = 3'600'000;
constexpr std::string_view kFlags[] = {"--upstream",  "--listen",    "--first-byte-delay-ms",
                                       "--bandwidth", "--port-file", "--stats-file"};

struct Options {
  std::string upstream_host;
  std::string upstream_port;
  std::string listen_host = "127.0.0.1";
  std::string listen_port = "0";
  std::chrono::milliseconds first_byte_delay{0};
  uint64_t bandwidth = 0;  // bytes/s per connection and direction; 0 = unlimited
  std::string port_file;
  std::string stats_file;
};

struct Counters {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_up{0};    // client -> upstream
  std::atomic<uint64_t> bytes_down{0};  // upstream -> client
};

// Everything the threads share; lives until the process exits.
struct Proxy {
  Options options;
  Counters counters;
};

// One line to stderr in a single write, so lines of concurrent threads do not interleave.
__attribute__((format(printf, 1, 2))) void Log(const char* format, ...) {
  char line[1024];
  int prefix = std::snprintf(line, sizeof(line), "%s: ", kProgram);
  va_list args;
  va_start(args, format);
  int body = std::vsnprintf(line + prefix, sizeof(line) - prefix - 1, format, args);
  va_end(args);
  size_t size = std::min(sizeof(line) - 2, static_cast<size_t>(prefix + std::max(body, 0)));
  line[size++] = '\n';
  (void)!::write(STDERR_FILENO, line, size);
}

[[noreturn]] void UsageError(const std::string& message) {
  Log("%s (see --help)", message.c_str());
  std::exit(2);
}

bool ParseUint(std::string_view text, uint64_t max, uint64_t* value) {
  if (text.empty()) return false;
  uint64_t parsed = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (error != std::errc() || end != text.data() + text.size() || parsed > max) return false;
  *value = parsed;
  return true;
}

// Splits "host:port" or "[ipv6]:port"; the port must lie in [min_port, 65535].
bool ParseHostPort(std::string_view text, uint64_t min_port, std::string* host, std::string* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host_part = text.substr(0, colon);
  if (host_part.size() >= 2 && host_part.front() == '[' && host_part.back() == ']') {
    host_part = host_part.substr(1, host_part.size() - 2);
  } else if (host_part.find(':') != std::string_view::npos) {
    return false;  // a bare IPv6 address is ambiguous
  }
  uint64_t number = 0;
  if (host_part.empty() || !ParseUint(text.substr(colon + 1), 65535, &number) ||
      number < min_port) {
    return false;
  }
  *host = host_part;
  *port = std::to_string(number);
  return true;
}

std::string FormatHostPort(const std::string& host, const std::string& port) {
  return host.find(':') == std::string::npos ? host + ":" + port : "[" + host + "]:" + port;
}

Options ParseArgs(int argc, char** argv) {
  Options options;
  std::set<std::string_view> seen;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    std::string_view flag = arg;
    std::optional<std::string_view> value;
    if (size_t equals = arg.find('='); arg.starts_with("--") && equals != std::string_view::npos) {
      flag = arg.substr(0, equals);
      value = arg.substr(equals + 1);
    }
    if (std::find(std::begin(kFlags), std::end(kFlags), flag) == std::end(kFlags)) {
      UsageError("unknown argument '" + std::string(arg) + "'");
    }
    if (!seen.insert(flag).second) UsageError(std::string(flag) + " given twice");
    if (!value) {
      if (i + 1 >= argc) UsageError(std::string(flag) + " needs a value");
      value = argv[++i];
    }
    auto bad_value = [&](const char* expected) {
      UsageError("bad value '" + std::string(*value) + "' for " + std::string(flag) +
                 ": expected " + expected);
    };
    uint64_t number = 0;
    if (flag == "--upstream") {
      if (!ParseHostPort(*value, 1, &options.upstream_host, &options.upstream_port)) {
        bad_value("HOST:PORT");
      }
    } else if (flag == "--listen") {
      if (!ParseHostPort(*value, 0, &options.listen_host, &options.listen_port)) {
        bad_value("HOST:PORT");
      }
    } else if (flag == "--first-byte-delay-ms") {
      if (!ParseUint(*value, kMaxDelayMs, &number)) bad_value("milliseconds");
      options.first_byte_delay = std::chrono::milliseconds(number);
    } else if (flag == "--bandwidth") {
      if (!ParseUint(*value, UINT64_MAX, &number)) bad_value("bytes per second");
      options.bandwidth = number;
    } else if (value->empty()) {
      bad_value("a file name");
    } else if (flag == "--port-file") {
      options.port_file = *value;
    } else {
      options.stats_file = *value;
    }
  }
  if (options.upstream_host.empty()) UsageError("--upstream is required");
  return options;
}

// Readers never see a half-written file: they either find none or the whole content.
bool WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    Log("cannot create %s: %s", temp.c_str(), std::strerror(errno));
    return false;
  }
  bool ok = true;
  while (ok && !content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) content.remove_prefix(static_cast<size_t>(n));
  }
  if (::close(fd) != 0) ok = false;
  if (ok && ::rename(temp.c_str(), path.c_str()) != 0) ok = false;
  if (!ok) {
    Log("cannot write %s: %s", path.c_str(), std::strerror(errno));
    ::unlink(temp.c_str());
  }
  return ok;
}

bool WriteStats(const Proxy& proxy) {
  const Counters& c = proxy.counters;
  char json[256];
  int size = std::snprintf(json, sizeof(json),
                           "{\"connections\":%llu,\"requests\":%llu,\"bytes_up\":%llu,"
                           "\"bytes_down\":%llu}\n",
                           static_cast<unsigned long long>(c.connections.load()),
                           static_cast<unsigned long long>(c.requests.load()),
                           static_cast<unsigned long long>(c.bytes_up.load()),
                           static_cast<unsigned long long>(c.bytes_down.load()));
  return WriteFileAtomically(proxy.options.stats_file, std::string_view(json, size));
}

void* RunThreadBody(void* body) {
  std::unique_ptr<std::function<void()>> owned(static_cast<std::function<void()>*>(body));
  (*owned)();
  return nullptr;
}

// Nobody joins relay threads: each cleans up after itself and exits when its connection ends.
bool StartDetachedThread(std::function<void()> body) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kThreadStackBytes);
  auto* heap_body = new std::function<void()>(std::move(body));
  pthread_t thread;
  int error = pthread_create(&thread, &attr, RunThreadBody, heap_body);
  pthread_attr_destroy(&attr);
  if (error != 0) {
    delete heap_body;
    errno = error;
    return false;
  }
  return true;
}

// Small writes (request headers, the first bytes of a response) must go out at once, not wait
// for the ACK of the previous segment (Nagle).
void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ListenOn(const Options& options, std::string* bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  int error =
      ::getaddrinfo(options.listen_host.c_str(), options.listen_port.c_str(), &hints, &addresses);
  if (error != 0) {
    Log("cannot resolve listen address %s: %s", options.listen_host.c_str(), gai_strerror(error));
    return -1;
  }
  int fd = -1;
  int saved_errno = 0;
  for (addrinfo* a = addresses; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      saved_errno = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      saved_errno = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(addresses);
  if (fd < 0) {
    Log("cannot listen on %s: %s", FormatHostPort(options.listen_host, options.listen_port).c_str(),
        std::strerror(saved_errno));
    return -1;
  }
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  uint16_t port = address.ss_family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&address)->sin_port;
  *bound_port = std::to_string(ntohs(port));
  return fd;
}

// Resolved per connection, so an upstream that comes and goes (or moves) needs no restart.
int ConnectUpstream(const Options& options, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  int gai_error = ::getaddrinfo(options.upstream_host.c_str(), options.upstream_port.c_str(),
                                &hints, &addresses);
  if (gai_error != 0) {
    *error = gai_strerror(gai_error);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = addresses; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      *error = std::strerror(errno);
      continue;
    }
    int result;
    do {
      result = ::connect(fd, a->ai_addr, a->ai_addrlen);
    } while (result != 0 && errno == EINTR);
    if (result != 0) {
      *error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(addresses);
  return fd;
}

// A client connection and its upstream twin. Each direction's thread holds a reference and the
// last one out closes both sockets, so no descriptor is reused while the other thread still
// blocks on it.
class Connection {
 public:
  Connection(int client_fd, int upstream_fd) : client_fd_(client_fd), upstream_fd_(upstream_fd) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    ::close(client_fd_);
    ::close(upstream_fd_);
  }

  int client_fd() const { return client_fd_; }
  int upstream_fd() const { return upstream_fd_; }

  // Ends both directions after an error. Unlike close, shutdown is safe while the other thread
  // is blocked on the socket, and it wakes that thread up.
  void Abort() {
    ::shutdown(client_fd_, SHUT_RDWR);
    ::shutdown(upstream_fd_, SHUT_RDWR);
  }

  // Client bytes with no request pending start a new one. Returns whether they did.
  bool NoteRequestBytes() {
    int64_t none = 0;
    return pending_since_ns_.compare_exchange_strong(none, NowNs(), std::memory_order_relaxed);
  }

  // Called with the first response bytes in hand: the start of the request they answer, if that
  // request still waits for its first byte. Later bytes of the same response get nullopt.
  std::optional<Clock::time_point> TakePendingRequest() {
    int64_t since = pending_since_ns_.exchange(0, std::memory_order_relaxed);
    if (since == 0) return std::nullopt;
    return Clock::time_point(std::chrono::nanoseconds(since));
  }

 private:
  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }

  const int client_fd_;
  const int upstream_fd_;
  std::atomic<int64_t> pending_since_ns_{0};  // steady clock; 0 = no request pending
};

// Paces one direction to a byte rate. A sender that fell behind (a late wake-up on a busy
// machine) may catch up on up to kPacerCatchUp or one step, whichever is longer. Idle time beyond
// that is forfeited, so a connection that was quiet bursts at most that much.
class Pacer {
 public:
  explicit Pacer(uint64_t bytes_per_second) : bytes_per_second_(bytes_per_second) {
    if (bytes_per_second_ != 0) {
      catch_up_ = std::max<Clock::duration>(kPacerCatchUp, TimeFor(kShapedStepBytes));
    }
  }

  // Sleeps until `bytes` more may go out.
  void Pace(size_t bytes) {
    if (bytes_per_second_ == 0) return;
    Clock::time_point now = Clock::now();
    next_ = std::max(next_, now - catch_up_) + TimeFor(bytes);
    if (next_ > now) std::this_thread::sleep_until(next_);
  }

 private:
  Clock::duration TimeFor(size_t bytes) const {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        static_cast<double>(bytes) / static_cast<double>(bytes_per_second_)));
  }

  const uint64_t bytes_per_second_;
  Clock::duration catch_up_{};
  Clock::time_point next_{};  // when the bytes paced so far are due out
};

// The kernel buffer that splice moves pages through.
class Pipe {
 public:
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (write_fd_ >= 0) ::close(write_fd_);
  }

  bool Open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    // Refused past the per-user pipe quota (fs.pipe-user-pages-soft); the default size works too.
    ::fcntl(write_fd_, F_SETPIPE_SZ, kWantedPipeBytes);
    int size = ::fcntl(write_fd_, F_GETPIPE_SZ);
    capacity_ = size > 0 ? static_cast<size_t>(size) : 4096;
    return true;
  }

  int read_fd() const { return read_fd_; }
  int write_fd() const { return write_fd_; }
  size_t capacity() const { return capacity_; }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
  size_t capacity_ = 0;
};

enum class Direction { kUp, kDown };  // client -> upstream, upstream -> client

// Moves bytes one way until the source reaches EOF (then half-closes the destination, so the
// other direction can still finish) or either side fails (then ends the whole connection).
void Relay(Proxy& proxy, std::shared_ptr<Connection> connection, Direction direction) {
  const bool up = direction == Direction::kUp;
  const int from = up ? connection->client_fd() : connection->upstream_fd();
  const int to = up ? connection->upstream_fd() : connection->client_fd();
  std::atomic<uint64_t>& moved = up ? proxy.counters.bytes_up : proxy.counters.bytes_down;
  Pipe pipe;
  if (!pipe.Open()) {
    Log("cannot create a pipe: %s", std::strerror(errno));
    connection->Abort();
    return;
  }
  // The pipe starts empty and is drained before it is refilled, so this never blocks on it.
  size_t step = pipe.capacity();
  if (proxy.options.bandwidth != 0) step = std::min(step, kShapedStepBytes);
  Pacer pacer(proxy.options.bandwidth);
  for (;;) {
    ssize_t received = ::splice(from, nullptr, pipe.write_fd(), nullptr, step, SPLICE_F_MOVE);
    if (received < 0 && errno == EINTR) continue;
    if (received < 0) {
      connection->Abort();  // ECONNRESET and the like; quietly, as any proxy would
      return;
    }
    if (received == 0) {
      ::shutdown(to, SHUT_WR);
      return;
    }
    if (up) {
      if (connection->NoteRequestBytes()) proxy.counters.requests.fetch_add(1);
    } else if (std::optional<Clock::time_point> start = connection->TakePendingRequest()) {
      std::this_thread::sleep_until(*start + proxy.options.first_byte_delay);
    }
    pacer.Pace(static_cast<size_t>(received));
    for (size_t left = static_cast<size_t>(received); left > 0;) {
      ssize_t sent = ::splice(pipe.read_fd(), nullptr, to, nullptr, left, SPLICE_F_MOVE);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) {
        connection->Abort();
        return;
      }
      left -= static_cast<size_t>(sent);
      moved.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
    }
  }
}

// Runs on its own thread: connecting may take long and must not hold up the accept loop. That
// thread then relays client -> upstream while a second one relays the answers.
void ServeConnection(Proxy& proxy, int client_fd) {
  std::string error;
  int upstream_fd = ConnectUpstream(proxy.options, &error);
  if (upstream_fd < 0) {
    Log("upstream %s unreachable: %s",
        FormatHostPort(proxy.options.upstream_host, proxy.options.upstream_port).c_str(),
        error.c_str());
    ::close(client_fd);
    return;
  }
  SetNoDelay(upstream_fd);
  auto connection = std::make_shared<Connection>(client_fd, upstream_fd);
  if (!StartDetachedThread([&proxy, connection] { Relay(proxy, connection, Direction::kDown); })) {
    Log("cannot start a thread: %s", std::strerror(errno));
    return;  // dropping the last reference closes both sockets
  }
  Relay(proxy, std::move(connection), Direction::kUp);
}

// Signals arrive here only: every other thread inherits a mask that blocks them, so the stats
// file is written from an ordinary thread rather than from a signal handler.
void HandleSignals(const Proxy& proxy, sigset_t signals) {
  for (;;) {
    int signal = 0;
    if (::sigwait(&signals, &signal) != 0) continue;
    bool written = proxy.options.stats_file.empty() || WriteStats(proxy);
    if (signal == SIGUSR1) continue;
    // _exit: the relay threads are still running, so no static destructors may run under them.
    ::_exit(written ? 0 : 1);
  }
}

// Every connection holds six descriptors (two sockets, two pipes).
void RaiseDescriptorLimit() {
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto* proxy = new Proxy{ParseArgs(argc, argv), {}};  // never freed: threads use it until exit
  RaiseDescriptorLimit();

  // A peer that goes away shows up as EPIPE from splice, not as a fatal signal.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!StartDetachedThread([proxy, signals] { HandleSignals(*proxy, signals); })) {
    Log("cannot start the signal thread: %s", std::strerror(errno));
    return 1;
  }

  std::string port;
  int listen_fd = ListenOn(proxy->options, &port);
  if (listen_fd < 0) return 1;
  if (!proxy->options.port_file.empty() &&
      !WriteFileAtomically(proxy->options.port_file, port + "\n")) {
    return 1;
  }
  Log("listening on %s", FormatHostPort(proxy->options.listen_host, port).c_str());

  for (;;) {
    int client_fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client_fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of resources: back off instead of spinning; connections that end free them.
        Log("accept: %s", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      Log("accept: %s", std::strerror(errno));
      return 1;
    }
    proxy->counters.connections.fetch_add(1);
    SetNoDelay(client_fd);
    if (!StartDetachedThread([proxy, client_fd] { ServeConnection(*proxy, client_fd); })) {
      Log("cannot start a thread: %s", std::strerror(errno));
      ::close(client_fd);
    }
  }
}
