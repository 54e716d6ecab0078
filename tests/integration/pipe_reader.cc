// A Pipe-mode reader in C++, as ml-io reads SageMaker's FIFOs: for each epoch, poll until
// <dir>/<channel>_<epoch> appears, open it, read to EOF with large reads, close, go on.
//
//   tf-pipe-reader DIR CHANNEL EPOCHS [--save PREFIX] [--close-after BYTES --close-epoch N]
//
// Prints "epoch N bytes B sha256 H" per epoch; --save writes epoch N's bytes to PREFIX<N>;
// --close-after closes epoch N (default 0) after that many bytes, as a reader that stops early.
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s DIR CHANNEL EPOCHS [--save PREFIX] [--close-after BYTES "
                 "--close-epoch N]\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1], channel = argv[2], save;
  long epochs = std::atol(argv[3]);
  long long close_after = -1;
  long close_epoch = 0;
  for (int i = 4; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--save") save = argv[i + 1];
    else if (flag == "--close-after") close_after = std::atoll(argv[i + 1]);
    else if (flag == "--close-epoch") close_epoch = std::atol(argv[i + 1]);
    else { std::fprintf(stderr, "unknown flag %s\n", flag.c_str()); return 2; }
  }
  std::vector<char> buf(4 << 20);
  for (long epoch = 0; epoch < epochs; ++epoch) {
    std::string path = dir + "/" + channel + "_" + std::to_string(epoch);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (::access(path.c_str(), F_OK) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr, "pipe_reader: %s never appeared\n", path.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) { std::perror(("open " + path).c_str()); return 1; }
    FILE* out = save.empty() ? nullptr : std::fopen((save + std::to_string(epoch)).c_str(), "wb");
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    long long total = 0;
    long long limit = (close_after >= 0 && epoch == close_epoch) ? close_after : -1;
    for (;;) {
      size_t want = buf.size();
      if (limit >= 0) {
        if (total >= limit) break;
        want = std::min<size_t>(want, static_cast<size_t>(limit - total));
      }
      ssize_t n = ::read(fd, buf.data(), want);
      if (n < 0) { std::perror(("read " + path).c_str()); return 1; }
      if (n == 0) break;
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
      if (out) std::fwrite(buf.data(), 1, static_cast<size_t>(n), out);
      total += n;
    }
    ::close(fd);
    if (out) std::fclose(out);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    std::string hex;
    char h[3];
    for (unsigned int i = 0; i < len; ++i) {
      std::snprintf(h, sizeof(h), "%02x", md[i]);
      hex += h;
    }
    std::printf("epoch %ld bytes %lld sha256 %s\n", epoch, total, hex.c_str());
    std::fflush(stdout);
  }
  return 0;
}
