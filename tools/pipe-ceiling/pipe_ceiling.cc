// tf-pipe-ceiling: what one Linux pipe carries on this machine, for the Pipe-mode benchmark's
// ceiling (bench/harness/pipe.py). A writer sends BYTES in 1 MiB write(2)s (--chunk) into a pipe
// whose buffer is raised to /proc/sys/fs/pipe-max-size (F_SETPIPE_SZ), as trainfeed's FIFO writer
// does; the reader discards.
//
//   tf-pipe-ceiling [--bytes N] [--chunk N]               writer and reader are this program
//   tf-pipe-ceiling --fifo PATH [--bytes N] [--chunk N]   only the writer: another process reads
//
// The second form measures the pipe into the benchmark's own reader, which is what every
// contender's bytes go through. Prints one JSON object: bytes, seconds (from the first write to
// the reader's EOF, or to the last write returning with --fifo), bytes_per_s, pipe_size.
// The buffer is filled with a pattern: a never-written buffer maps the zero page, and copying
// from it would flatter the pipe.
//
// Build: g++ -std=c++20 -O2 pipe_ceiling.cc -o tf-pipe-ceiling

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr char kUsage[] = "usage: tf-pipe-ceiling [--fifo PATH] [--bytes N] [--chunk N]\n";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "tf-pipe-ceiling: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

uint64_t ParseCount(const char* text) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0) {
    std::fprintf(stderr, "tf-pipe-ceiling: not a positive number: %s\n%s", text, kUsage);
    std::exit(2);
  }
  return v;
}

// Raises the pipe's buffer to the system's maximum; returns the size in effect.
int RaisePipeSize(int fd) {
  int max = 1 << 20;
  if (FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "r")) {
    if (std::fscanf(f, "%d", &max) != 1) max = 1 << 20;
    std::fclose(f);
  }
  fcntl(fd, F_SETPIPE_SZ, max);  // may be refused (per-user pipe quota): keep what we have
  return fcntl(fd, F_GETPIPE_SZ);
}

void WriteAll(int fd, const std::vector<char>& buffer, uint64_t bytes) {
  uint64_t left = bytes;
  while (left > 0) {
    size_t n = left < buffer.size() ? left : buffer.size();
    ssize_t w = write(fd, buffer.data(), n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) Die("write");
    left -= static_cast<uint64_t>(w);
  }
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t bytes = 4ull << 30;
  uint64_t chunk = 1 << 20;
  const char* fifo = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 < argc && arg == "--bytes") {
      bytes = ParseCount(argv[++i]);
    } else if (i + 1 < argc && arg == "--chunk") {
      chunk = ParseCount(argv[++i]);
    } else if (i + 1 < argc && arg == "--fifo") {
      fifo = argv[++i];
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  std::vector<char> buffer(chunk);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<char>(i * 131 + 7);

  double seconds = 0;
  int pipe_size = 0;
  if (fifo) {
    int fd = open(fifo, O_WRONLY | O_CLOEXEC);  // blocks until the reader opens it
    if (fd < 0) Die(std::string("open ") + fifo);
    pipe_size = RaisePipeSize(fd);
    auto start = std::chrono::steady_clock::now();
    WriteAll(fd, buffer, bytes);
    seconds = SecondsSince(start);
    close(fd);
  } else {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Die("pipe2");
    pipe_size = RaisePipeSize(fds[1]);
    auto start = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      close(fds[0]);
      WriteAll(fds[1], buffer, bytes);
      _exit(0);
    }
    close(fds[1]);
    std::vector<char> sink(chunk);
    uint64_t got = 0;
    for (;;) {
      ssize_t n = read(fds[0], sink.data(), sink.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Die("read");
      if (n == 0) break;
      got += static_cast<uint64_t>(n);
    }
    seconds = SecondsSince(start);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "tf-pipe-ceiling: the reader got %llu of %llu bytes\n",
                   static_cast<unsigned long long>(got), static_cast<unsigned long long>(bytes));
      return 1;
    }
  }
  std::printf("{\"bytes\": %llu, \"seconds\": %.6f, \"bytes_per_s\": %.0f, \"pipe_size\": %d}\n",
              static_cast<unsigned long long>(bytes), seconds, bytes / seconds, pipe_size);
  return 0;
}
