#include "job/outputs.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "store/local/local_object_store.h"

namespace trainfeed {
namespace {

namespace fs = std::filesystem;

struct TarEntry {
  unsigned int type = 0;
  std::string content;  // regular files
  std::string target;   // symlinks
  int64_t mtime = 0;
  int64_t uid = -1, gid = -1;
  unsigned int perm = 0;
};

// Reads an archive back with libarchive: entries by name, and the names in archive order.
std::map<std::string, TarEntry> ReadTarGz(const std::string& path,
                                          std::vector<std::string>* order = nullptr) {
  std::map<std::string, TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 65536), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t;
    t.type = archive_entry_filetype(e);
    t.mtime = archive_entry_mtime(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.perm = archive_entry_perm(e);
    const char* uname = archive_entry_uname(e);
    EXPECT_TRUE(uname == nullptr || *uname == '\0') << uname;
    if (const char* s = archive_entry_symlink(e)) t.target = s;
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) t.content.append(buf, n);
    std::string name = archive_entry_pathname(e);
    if (order) order->push_back(name);
    out[name] = t;
  }
  archive_read_free(a);
  return out;
}

// Output of a shell command, or the test fails.
std::string RunShell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << command;
  return out;
}

class OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/tf-outputs-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = fs::canonical(pattern).string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void WriteFile(const std::string& rel, const std::string& content) {
    fs::path p = fs::path(dir_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  std::string Path(const std::string& rel) const { return dir_ + "/" + rel; }

  // Every regular file below `rel`, relative to it.
  std::set<std::string> FilesUnder(const std::string& rel) const {
    std::set<std::string> out;
    fs::path root = Path(rel);
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), root).string());
    }
    return out;
  }

  StoreUri FileUri(const std::string& rel) const {
    Result<StoreUri> uri = ParseStoreUri("file://" + Path(rel));
    EXPECT_TRUE(uri.ok()) << uri.status().ToString();
    return *uri;
  }

  std::string dir_;
};

TEST_F(OutputsTest, TarGzRoundTrip) {
  WriteFile("model/model.pt", "weights");
  WriteFile("model/sub/x.bin", std::string(3 << 20, 'x'));  // several read chunks
  WriteFile("model/a-b", "");
  fs::create_directories(Path("model/empty"));
  fs::create_symlink("sub/x.bin", Path("model/link"));
  ::chmod(Path("model/model.pt").c_str(), 0640);
  struct stat st;
  ASSERT_EQ(::stat(Path("model/model.pt").c_str(), &st), 0);

  ASSERT_TRUE(WriteTarGz(Path("model"), Path("model.tar.gz")).ok());

  std::vector<std::string> order;
  std::map<std::string, TarEntry> entries = ReadTarGz(Path("model.tar.gz"), &order);
  // Plain relative names, siblings sorted, a directory before its contents.
  std::vector<std::string> names_without_slash;
  for (std::string n : order) {
    if (!n.empty() && n.back() == '/') n.pop_back();
    names_without_slash.push_back(n);
  }
  EXPECT_EQ(names_without_slash,
            (std::vector<std::string>{"a-b", "empty", "link", "model.pt", "sub", "sub/x.bin"}));
  EXPECT_EQ(entries["model.pt"].type, static_cast<unsigned int>(AE_IFREG));
  EXPECT_EQ(entries["model.pt"].content, "weights");
  EXPECT_EQ(entries["model.pt"].perm, 0640u);
  EXPECT_EQ(entries["model.pt"].mtime, st.st_mtim.tv_sec);
  EXPECT_EQ(entries["model.pt"].uid, 0);
  EXPECT_EQ(entries["model.pt"].gid, 0);
  EXPECT_EQ(entries["a-b"].content, "");
  EXPECT_EQ(entries["sub/x.bin"].content, std::string(3 << 20, 'x'));
  EXPECT_EQ(entries["link"].type, static_cast<unsigned int>(AE_IFLNK));
  EXPECT_EQ(entries["link"].target, "sub/x.bin");
  // Nothing is left behind but the archive itself.
  EXPECT_EQ(FilesUnder(""), (std::set<std::string>{"model.tar.gz", "model/a-b", "model/model.pt",
                                                   "model/sub/x.bin"}));

  // GNU tar reads it and sees the same names.
  std::string listing = RunShell("/bin/tar -tzf '" + Path("model.tar.gz") + "'");
  std::string expected;
  for (const std::string& n : order) expected += n + "\n";
  EXPECT_EQ(listing, expected);
}

TEST_F(OutputsTest, TarGzIsDeterministic) {
  WriteFile("m/b", "bbb");
  WriteFile("m/a/c", "ccc");
  ASSERT_TRUE(WriteTarGz(Path("m"), Path("one.tar.gz")).ok());
  ASSERT_TRUE(WriteTarGz(Path("m"), Path("two.tar.gz")).ok());
  std::ifstream one(Path("one.tar.gz"), std::ios::binary),
      two(Path("two.tar.gz"), std::ios::binary);
  std::stringstream a, b;
  a << one.rdbuf();
  b << two.rdbuf();
  EXPECT_FALSE(a.str().empty());
  EXPECT_EQ(a.str(), b.str());
}

TEST_F(OutputsTest, EmptyAndMissingDirectoriesGiveEmptyArchives) {
  fs::create_directories(Path("empty"));
  ASSERT_TRUE(WriteTarGz(Path("empty"), Path("empty.tar.gz")).ok());
  EXPECT_TRUE(ReadTarGz(Path("empty.tar.gz")).empty());
  EXPECT_EQ(RunShell("/bin/tar -tzf '" + Path("empty.tar.gz") + "'"), "");

  ASSERT_TRUE(WriteTarGz(Path("missing"), Path("missing.tar.gz")).ok());
  EXPECT_TRUE(ReadTarGz(Path("missing.tar.gz")).empty());
}

TEST_F(OutputsTest, ArchiveInsideTheSourceDoesNotContainItself) {
  WriteFile("m/a", "a");
  ASSERT_TRUE(WriteTarGz(Path("m"), Path("m/self.tar.gz")).ok());
  std::map<std::string, TarEntry> entries = ReadTarGz(Path("m/self.tar.gz"));
  EXPECT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries.count("a"), 1u);
}

TEST_F(OutputsTest, GzipUploadUsesSageMakerPaths) {
  WriteFile("model/model.pt", "weights");
  WriteFile("data/metrics.json", "{}");
  LocalObjectStore store;
  ASSERT_TRUE(UploadJobOutputs(store, FileUri("dest"), "job-1", Path("model"), Path("data"), "GZIP",
                               HostInfo(), Path("scratch"))
                  .ok());
  EXPECT_EQ(FilesUnder("dest"),
            (std::set<std::string>{"job-1/output/model.tar.gz", "job-1/output/output.tar.gz"}));
  EXPECT_EQ(ReadTarGz(Path("dest/job-1/output/model.tar.gz"))["model.pt"].content, "weights");
  EXPECT_EQ(ReadTarGz(Path("dest/job-1/output/output.tar.gz"))["metrics.json"].content, "{}");
  EXPECT_TRUE(FilesUnder("scratch").empty());  // archives are removed after the upload
}

TEST_F(OutputsTest, GzipUploadOfEmptyDirectoriesStillWritesBothArchives) {
  LocalObjectStore store;
  // A trailing '/' on the output path makes no difference.
  ASSERT_TRUE(UploadJobOutputs(store, FileUri("dest/"), "job", Path("model"), Path("data"), "GZIP",
                               HostInfo(), Path("scratch"))
                  .ok());
  EXPECT_EQ(FilesUnder("dest"),
            (std::set<std::string>{"job/output/model.tar.gz", "job/output/output.tar.gz"}));
  EXPECT_TRUE(ReadTarGz(Path("dest/job/output/model.tar.gz")).empty());
}

TEST_F(OutputsTest, BigArchiveGoesUpInParts) {
  // Incompressible and over the multipart threshold, so the upload is multipart.
  std::string noise(20 << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  WriteFile("model/big.bin", noise);
  LocalObjectStore store;
  ASSERT_TRUE(UploadJobOutputs(store, FileUri("dest"), "job", Path("model"), Path("data"), "GZIP",
                               HostInfo(), Path("scratch"))
                  .ok());
  EXPECT_GT(fs::file_size(Path("dest/job/output/model.tar.gz")), uint64_t{16} << 20);
  EXPECT_EQ(ReadTarGz(Path("dest/job/output/model.tar.gz"))["big.bin"].content, noise);
}

TEST_F(OutputsTest, NoneUploadsPlainObjects) {
  WriteFile("model/model.pt", "weights");
  WriteFile("model/sub/config.json", "{}");
  fs::create_symlink("model.pt", Path("model/latest.pt"));
  WriteFile("data/metrics.json", "{}");
  LocalObjectStore store;
  ASSERT_TRUE(UploadJobOutputs(store, FileUri("dest"), "job", Path("model"), Path("data"), "NONE",
                               HostInfo(), Path("scratch"))
                  .ok());
  EXPECT_EQ(FilesUnder("dest"),
            (std::set<std::string>{"job/output/model/model.pt", "job/output/model/sub/config.json",
                                   "job/output/model/latest.pt", "job/output/data/metrics.json"}));
  std::ifstream in(Path("dest/job/output/model/latest.pt"));
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "weights");
}

TEST_F(OutputsTest, MultiHostNamesDoNotClash) {
  LocalObjectStore store;
  HostInfo first{"algo-1", {"algo-1", "algo-2", "algo-3"}};
  HostInfo second{"algo-2", {"algo-1", "algo-2", "algo-3"}};
  HostInfo third{"algo-3", {"algo-1", "algo-2", "algo-3"}};
  WriteFile("h1/model/model.pt", "one");
  WriteFile("h2/model/model.pt", "two");
  WriteFile("h2/data/log.txt", "two");
  // algo-3 saved nothing: it uploads nothing.
  for (const HostInfo& host : {first, second, third}) {
    std::string h = "h" + host.current_host.substr(5);
    ASSERT_TRUE(UploadJobOutputs(store, FileUri("dest"), "job", Path(h + "/model"),
                                 Path(h + "/data"), "GZIP", host, Path("scratch"))
                    .ok());
    ASSERT_TRUE(UploadJobOutputs(store, FileUri("plain"), "job", Path(h + "/model"),
                                 Path(h + "/data"), "NONE", host, Path("scratch"))
                    .ok());
  }
  EXPECT_EQ(
      FilesUnder("dest"),
      (std::set<std::string>{"job/output/model.tar.gz", "job/output/output.tar.gz",
                             "job/output/model-algo-2.tar.gz", "job/output/output-algo-2.tar.gz"}));
  EXPECT_EQ(ReadTarGz(Path("dest/job/output/model.tar.gz"))["model.pt"].content, "one");
  EXPECT_EQ(ReadTarGz(Path("dest/job/output/model-algo-2.tar.gz"))["model.pt"].content, "two");
  EXPECT_EQ(FilesUnder("plain"),
            (std::set<std::string>{"job/output/model/model.pt", "job/output/model-algo-2/model.pt",
                                   "job/output/data-algo-2/log.txt"}));
}

TEST_F(OutputsTest, RejectsBadArguments) {
  LocalObjectStore store;
  Status s = UploadJobOutputs(store, FileUri("dest"), "job", Path("m"), Path("d"), "ZIP",
                              HostInfo(), Path("scratch"));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  s = UploadJobOutputs(store, FileUri("dest"), "a/b", Path("m"), Path("d"), "GZIP", HostInfo(),
                       Path("scratch"));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace trainfeed
