#include "steps/zip.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "runner/sha256.h"
#include "tests/config_from_yaml.h"
#include "tests/fake_step_io.h"
#include "tests/test_util.h"

namespace runner {
namespace {

namespace fs = std::filesystem;
using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

struct Command {
  int exit_code = -1;
  std::string output;
};

Command Shell(const std::string& command) {
  Command result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Quote(const std::string& path) { return "'" + path + "'"; }

// Every archive a test makes passes `unzip -t`.
void ExpectUnzipTestPasses(const std::string& zip) {
  Command test = Shell("unzip -t " + Quote(zip));
  EXPECT_EQ(test.exit_code, 0) << test.output;
  EXPECT_NE(test.output.find("No errors detected"), std::string::npos) << test.output;
}

struct ReadEntry {
  std::string content;
  mode_t mode = 0;  // with file type
  std::int64_t mtime = 0;
  std::int64_t uid = -1;
};

// The archive read back with libarchive (the seekable zip reader checks every CRC).
std::map<std::string, ReadEntry> ReadBack(const std::string& zip, bool read_data = true) {
  // UTF-8 names come out of libarchive only under a UTF-8 LC_CTYPE (CI runs with "C").
  static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  ::uselocale(utf8);
  std::map<std::string, ReadEntry> out;
  std::unique_ptr<archive, int (*)(archive*)> reader(archive_read_new(), archive_read_free);
  archive_read_support_format_zip_seekable(reader.get());
  if (archive_read_open_filename(reader.get(), zip.c_str(), 1 << 16) != ARCHIVE_OK) {
    ADD_FAILURE() << archive_error_string(reader.get());
    return out;
  }
  archive_entry* entry;
  int rc;
  while ((rc = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK ||
         rc == ARCHIVE_WARN) {  // WARN: a UTF-8 name the "C" locale cannot show
    ReadEntry& e = out[archive_entry_pathname_utf8(entry)];
    e.mode = archive_entry_mode(entry);
    e.mtime = archive_entry_mtime(entry);
    e.uid = archive_entry_uid(entry);
    if (!read_data) continue;
    char buffer[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(reader.get(), buffer, sizeof(buffer))) > 0) {
      e.content.append(buffer, static_cast<size_t>(n));
    }
    EXPECT_EQ(n, 0) << archive_error_string(reader.get());
  }
  EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(reader.get());
  return out;
}

std::vector<std::string> Names(const std::map<std::string, ReadEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries) names.push_back(name);
  return names;
}

// Names in archive order, from `zipinfo -1`.
std::vector<std::string> ZipOrder(const std::string& zip) {
  Command list = Shell("zipinfo -1 " + Quote(zip));
  std::vector<std::string> names;
  size_t start = 0;
  while (start < list.output.size()) {
    size_t end = list.output.find('\n', start);
    names.push_back(list.output.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

struct CentralRecord {
  std::string name;
  std::uint16_t made_by = 0;
  std::uint16_t flags = 0;
  std::uint16_t extra_length = 0;
};

std::uint16_t Le16(const std::string& data, size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(data[at]) |
                                    static_cast<unsigned char>(data[at + 1]) << 8);
}

// The central directory's records, parsed by hand to see the raw header fields.
std::vector<CentralRecord> CentralDirectory(const std::string& zip) {
  std::string data = ReadTextFile(zip);
  std::vector<CentralRecord> records;
  if (data.size() < 22) return records;
  // The end record (no comment: the last 22 bytes) holds the central directory's offset.
  size_t end = data.size() - 22;
  size_t at = Le16(data, end + 16) | static_cast<size_t>(Le16(data, end + 18)) << 16;
  while (at != std::string::npos && at + 46 <= data.size() &&
         data.compare(at, 4, std::string("PK\x01\x02", 4)) == 0) {
    CentralRecord record;
    record.made_by = Le16(data, at + 4);
    record.flags = Le16(data, at + 8);
    std::uint16_t name_length = Le16(data, at + 28);
    record.extra_length = Le16(data, at + 30);
    std::uint16_t comment_length = Le16(data, at + 32);
    record.name = data.substr(at + 46, name_length);
    records.push_back(record);
    at += 46 + name_length + record.extra_length + comment_length;
  }
  return records;
}

void MakeExecutable(const std::string& path) { ::chmod(path.c_str(), 0755); }

// `config` as the scheduler hands it to Execute: expanded, with locations (JSON is YAML).
ConfigNode Expanded(const nlohmann::ordered_json& config) {
  return testing::ExpandedConfig(config.dump());
}

class ZipTest : public ::testing::Test {
 protected:
  ZipTest() : io_(workspace_.path()) {}

  // Runs the step with `config`, expanded as the scheduler passes it.
  Status Zip(const nlohmann::ordered_json& config) {
    return ZipKind().Execute(Expanded(config), io_);
  }

  Status ZipOk(const nlohmann::ordered_json& config) {
    Status status = Zip(config);
    EXPECT_TRUE(status) << status.error();
    if (status) ExpectUnzipTestPasses(workspace_ / config["dest"].get<std::string>());
    return status;
  }

  std::string Error(const nlohmann::ordered_json& config) {
    Status status = Zip(config);
    EXPECT_FALSE(status);
    return status ? "" : status.error();
  }

  // Files left in `dir` besides the expected ones: no temporary may survive.
  std::vector<std::string> Listing(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& item : fs::directory_iterator(dir, ec)) {
      names.push_back(item.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir workspace_;
  FakeStepIo io_;
};

void MakeTree(const std::string& root) {
  WriteTextFile(root + "/app/bin/orders",
                "\x7f"
                "ELF binary-ish\n");
  MakeExecutable(root + "/app/bin/orders");
  WriteTextFile(root + "/app/etc/orders.conf", "port=8080\n");
  WriteTextFile(root + "/app/share/empty.txt", "");
  fs::create_directories(root + "/app/var/empty-dir");
  WriteTextFile(root + "/app/share/with space.txt", "spaces\n");
  WriteTextFile(root + "/app/share/caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.txt", "utf-8\n");
  WriteTextFile(root + "/deploy/appspec.yml", "version: 0.0\nos: linux\n");
  WriteTextFile(root + "/deploy/scripts/start.sh", "#!/bin/bash\necho start\n");
  MakeExecutable(root + "/deploy/scripts/start.sh");
  WriteTextFile(root + "/deploy/scripts/lib/common.sh", "# sourced\n");
  WriteTextFile(root + "/deploy/scripts/notes.tmp", "scratch\n");
  std::string big;
  for (long long i = 0; i < 300000; ++i) big += "line " + std::to_string(i * 7919 % 100003) + "\n";
  WriteTextFile(root + "/app/share/big.log", big);
}

nlohmann::ordered_json TreeConfig(const std::string& dest) {
  auto config = nlohmann::ordered_json::parse(R"({
    "files": ["app/", {"deploy/appspec.yml": "appspec.yml"},
              {"src": "deploy/scripts/**", "dest": "scripts/"}],
    "exclude": ["**/*.tmp"]})");
  config["dest"] = dest;
  return config;
}

TEST_F(ZipTest, ContentsLayoutAndOutputs) {
  MakeTree(workspace_.path());
  ASSERT_TRUE(ZipOk(TreeConfig("dist/app.zip")));
  std::string zip = workspace_ / "dist/app.zip";
  auto entries = ReadBack(zip);
  std::vector<std::string> expected = {
      "app/",
      "app/bin/",
      "app/bin/orders",
      "app/etc/",
      "app/etc/orders.conf",
      "app/share/",
      "app/share/big.log",
      "app/share/caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.txt",
      "app/share/empty.txt",
      "app/share/with space.txt",
      "app/var/",
      "app/var/empty-dir/",
      "appspec.yml",
      "scripts/",
      "scripts/lib/",
      "scripts/lib/common.sh",
      "scripts/start.sh",
  };
  EXPECT_EQ(Names(entries), expected);
  EXPECT_EQ(ZipOrder(zip), expected) << "entries are written sorted by path";
  EXPECT_EQ(entries["app/share/big.log"].content, ReadTextFile(workspace_ / "app/share/big.log"));
  EXPECT_EQ(entries["app/share/empty.txt"].content, "");
  EXPECT_EQ(entries["appspec.yml"].content, "version: 0.0\nos: linux\n");
  EXPECT_EQ(entries["app/bin/orders"].mode, S_IFREG | 0755);
  EXPECT_EQ(entries["app/etc/orders.conf"].mode, S_IFREG | 0644);
  EXPECT_EQ(entries["app/var/empty-dir/"].mode, S_IFDIR | 0755);

  EXPECT_EQ(io_.outputs["path"], "dist/app.zip");
  EXPECT_EQ(io_.outputs["size"], std::to_string(fs::file_size(zip)));
  EXPECT_EQ(io_.outputs["sha256"], *FileSha256Hex(zip));
  ASSERT_EQ(io_.artifacts.size(), 1u);
  EXPECT_EQ(io_.artifacts[0].path, "dist/app.zip");
  EXPECT_EQ(io_.artifacts[0].sha256, io_.outputs["sha256"]);
  EXPECT_EQ(io_.artifacts[0].size, fs::file_size(zip));
  EXPECT_EQ(Listing(workspace_ / "dist"), std::vector<std::string>{"app.zip"});
}

TEST_F(ZipTest, ZipinfoShowsModesAndNoVaryingExtraFields) {
  MakeTree(workspace_.path());
  ASSERT_TRUE(ZipOk(TreeConfig("app.zip")));
  Command info = Shell("zipinfo " + Quote(workspace_ / "app.zip"));
  EXPECT_NE(info.output.find("-rwxr-xr-x  2.0 unx       16 b- stor 80-Jan-01 00:00 app/bin/orders"),
            std::string::npos)
      << info.output;
  EXPECT_NE(info.output.find("-rwxr-xr-x"), std::string::npos);
  EXPECT_NE(info.output.find("-rw-r--r--  2.0 unx       10 b- stor 80-Jan-01 00:00 "
                             "app/etc/orders.conf"),
            std::string::npos)
      << info.output;
  EXPECT_NE(info.output.find("drwxr-xr-x  2.0 unx        0 b- stor 80-Jan-01 00:00 app/var/"),
            std::string::npos)
      << info.output;
  Command verbose = Shell("zipinfo -v " + Quote(workspace_ / "app.zip"));
  // No UT/ux extra fields (atime, uid): nothing that varies between machines.
  EXPECT_EQ(verbose.output.find("extra field contains"), std::string::npos) << verbose.output;
  EXPECT_EQ(verbose.output.find("length of extra field:                          0 bytes"),
            verbose.output.find("length of extra field:"));
  for (const CentralRecord& record : CentralDirectory(workspace_ / "app.zip")) {
    bool ascii = std::all_of(record.name.begin(), record.name.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    EXPECT_EQ(record.flags, ascii ? 0 : 0x0800) << record.name << ": bit 11 marks UTF-8 names";
    EXPECT_EQ(record.extra_length, 0) << record.name;
    EXPECT_EQ(record.made_by >> 8, 3) << record.name << ": made by Unix";
  }
  auto entries = ReadBack(workspace_ / "app.zip", false);
  for (const auto& [name, entry] : entries) {
    EXPECT_EQ(entry.uid, 0) << name;
    EXPECT_TRUE(entry.mode == (S_IFREG | 0644) || entry.mode == (S_IFREG | 0755) ||
                entry.mode == (S_IFDIR | 0755))
        << name << " " << std::oct << entry.mode;
  }
}

TEST_F(ZipTest, IdenticalInputsGiveIdenticalBytes) {
  std::string first = workspace_ / "one";
  MakeTree(first);
  io_.env_["SOURCE_DATE_EPOCH"] = "1700000000";
  FakeStepIo one(first);
  one.env_ = io_.env_;
  auto config = TreeConfig("dist/app.zip");
  Status status = ZipKind().Execute(Expanded(config), one);
  ASSERT_TRUE(status) << status.error();
  ExpectUnzipTestPasses(first + "/dist/app.zip");

  // Touch every file, change modes' unrelated bits, then zip from a fresh copy (new inodes,
  // new times, a different directory), as a fresh clone on another agent would.
  for (const auto& item : fs::recursive_directory_iterator(first + "/app")) {
    ::utimensat(AT_FDCWD, item.path().c_str(), nullptr, 0);
    struct stat st;
    ::stat(item.path().c_str(), &st);
    ::chmod(item.path().c_str(), (st.st_mode & 07777) | S_IWGRP | S_IWOTH | S_IXGRP);
  }
  std::string second = workspace_ / "elsewhere/two";
  fs::create_directories(second);
  ASSERT_EQ(
      Shell("cp -r " + Quote(first + "/app") + " " + Quote(first + "/deploy") + " " + Quote(second))
          .exit_code,
      0);
  ::sleep(1);  // a different wall-clock second, should anything leak the current time
  FakeStepIo two(second);
  two.env_ = io_.env_;
  status = ZipKind().Execute(Expanded(config), two);
  ASSERT_TRUE(status) << status.error();
  ExpectUnzipTestPasses(second + "/dist/app.zip");
  EXPECT_EQ(one.outputs["sha256"], two.outputs["sha256"]);
  EXPECT_EQ(*FileSha256Hex(first + "/dist/app.zip"), *FileSha256Hex(second + "/dist/app.zip"));

  // The timestamp comes from SOURCE_DATE_EPOCH (2023-11-14 22:13:20 UTC).
  Command info = Shell("TZ=UTC zipinfo -T " + Quote(second + "/dist/app.zip"));
  EXPECT_NE(info.output.find("20231114.221320 app/bin/orders"), std::string::npos) << info.output;
  two.env_["SOURCE_DATE_EPOCH"] = "1700000002";
  ASSERT_TRUE(ZipKind().Execute(Expanded(config), two));
  EXPECT_NE(two.outputs["sha256"], one.outputs["sha256"]);
}

TEST_F(ZipTest, WithoutSourceDateEpochTimesAre1980) {
  WriteTextFile(workspace_ / "a.txt", "a\n");
  ASSERT_TRUE(ZipOk({{"dest", "a.zip"}, {"files", {"a.txt"}}}));
  Command info = Shell("TZ=UTC zipinfo -T " + Quote(workspace_ / "a.zip"));
  EXPECT_NE(info.output.find("19800101.000000 a.txt"), std::string::npos) << info.output;
  io_.env_["SOURCE_DATE_EPOCH"] = "yesterday";
  EXPECT_NE(Error({{"dest", "a.zip"}, {"files", {"a.txt"}}}).find("SOURCE_DATE_EPOCH"),
            std::string::npos);
}

TEST_F(ZipTest, OutputDoesNotDependOnThreadsOrChunks) {
  // A file split into many pieces is one deflate stream: same bytes with 1, 2 or 3 threads, at
  // each chunk size and level, and unzip and libarchive read it back. big.bin mixes text with
  // incompressible runs, so that pieces end in stored blocks as well as Huffman ones.
  std::string data;
  for (unsigned i = 0; i < 400000; ++i)
    data += std::to_string(i * 2654435761u) + (i % 7 ? " " : "\n");
  std::string mixed;
  std::uint64_t state = 88172645463325252u;
  for (unsigned block = 0; block < 24; ++block) {
    for (unsigned i = 0; i < 40000; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      mixed.push_back(block % 3 == 0 ? static_cast<char>(state) : "abcab\n"[i % 6]);
    }
  }
  WriteTextFile(workspace_ / "big.txt", data);
  WriteTextFile(workspace_ / "big.bin", mixed);
  WriteTextFile(workspace_ / "small.txt", "small\n");
  ZipOptions options;
  options.files = {
      {"big.txt", std::nullopt}, {"big.bin", std::nullopt}, {"small.txt", std::nullopt}};
  auto entries = CollectZipEntries(options, workspace_.path(), workspace_.path(), "");
  ASSERT_TRUE(entries) << entries.error();
  for (int level : {1, 6, 9}) {
    for (std::size_t chunk : {64 * 1024, 200 * 1024}) {
      std::vector<std::string> digests;
      for (int threads : {1, 2, 3}) {
        std::string path = workspace_ / fmt::format("l{}-c{}-t{}.zip", level, chunk, threads);
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        ZipWriteOptions write;
        write.level = level;
        write.threads = threads;
        write.chunk_size = chunk;
        auto stats = WriteZip(*entries, write, fd);
        ::close(fd);
        ASSERT_TRUE(stats) << stats.error();
        ExpectUnzipTestPasses(path);
        auto read = ReadBack(path);
        EXPECT_EQ(read["big.txt"].content, data) << path;
        EXPECT_EQ(read["big.bin"].content, mixed) << path;
        EXPECT_EQ(read["small.txt"].content, "small\n") << path;
        digests.push_back(*FileSha256Hex(path));
      }
      EXPECT_EQ(digests[0], digests[1]) << "level " << level << ", chunk " << chunk;
      EXPECT_EQ(digests[0], digests[2]) << "level " << level << ", chunk " << chunk;
    }
  }
}

TEST_F(ZipTest, GlobsAndDestForms) {
  WriteTextFile(workspace_ / "src/main.c", "int main;\n");
  WriteTextFile(workspace_ / "src/util.c", "int util;\n");
  WriteTextFile(workspace_ / "src/util.h", "int util(void);\n");
  WriteTextFile(workspace_ / "src/sub/deep.c", "int deep;\n");
  WriteTextFile(workspace_ / "conf/a.yml", "a: 1\n");
  WriteTextFile(workspace_ / "conf/nested/b.yml", "b: 2\n");
  WriteTextFile(workspace_ / "README", "read me\n");
  ASSERT_TRUE(ZipOk(nlohmann::ordered_json::parse(R"({
    "dest": "out.zip",
    "files": [
      "src/*.c",
      {"src": "conf/**/*.yml", "dest": "etc/"},
      {"README": "doc/"},
      {"src": "README", "dest": "doc/README.txt"},
      {"src": "src/sub", "dest": "lib"}
    ]})")));
  EXPECT_EQ(Names(ReadBack(workspace_ / "out.zip")),
            (std::vector<std::string>{"doc/", "doc/README", "doc/README.txt", "etc/", "etc/a.yml",
                                      "etc/nested/", "etc/nested/b.yml", "lib/", "lib/deep.c",
                                      "src/", "src/main.c", "src/util.c"}));
}

TEST_F(ZipTest, ExcludesMatchArchiveAndSourcePaths) {
  WriteTextFile(workspace_ / "dist/app", "app\n");
  WriteTextFile(workspace_ / "dist/app.debug", "symbols\n");
  WriteTextFile(workspace_ / "dist/cache/x.o", "obj\n");
  WriteTextFile(workspace_ / "dist/keep/y.txt", "keep\n");
  WriteTextFile(workspace_ / "dist/.git/HEAD", "ref\n");
  ASSERT_TRUE(ZipOk(nlohmann::ordered_json::parse(R"({
    "dest": "out.zip",
    "files": [{"src": "dist/", "dest": "app/"}],
    "exclude": ["app/*.debug", "dist/cache", "**/.git"]})")));
  EXPECT_EQ(Names(ReadBack(workspace_ / "out.zip")),
            (std::vector<std::string>{"app/", "app/app", "app/keep/", "app/keep/y.txt"}));
}

TEST_F(ZipTest, WholeDirectoryAtTheRoot) {
  WriteTextFile(workspace_ / "site/index.html", "<html>\n");
  WriteTextFile(workspace_ / "site/css/a.css", "a{}\n");
  ASSERT_TRUE(ZipOk({{"dest", "site.zip"}, {"files", {{{"src", "site"}, {"dest", "/"}}}}}));
  EXPECT_EQ(Names(ReadBack(workspace_ / "site.zip")),
            (std::vector<std::string>{"css/", "css/a.css", "index.html"}));
}

TEST_F(ZipTest, DestInsideTheZippedTreeIsNotIncluded) {
  WriteTextFile(workspace_ / "a.txt", "a\n");
  ASSERT_TRUE(ZipOk({{"dest", "self.zip"}, {"files", {"."}}}));
  ASSERT_TRUE(ZipOk({{"dest", "self.zip"}, {"files", {"."}}}));  // the old archive exists now
  EXPECT_EQ(Names(ReadBack(workspace_ / "self.zip")), std::vector<std::string>{"a.txt"});
}

TEST_F(ZipTest, StepDirectoryAndWorkspaceRelativeOutputs) {
  WriteTextFile(workspace_ / "svc/bin/app", "app\n");
  // FakeStepIo's workspace is its dir; emulate `dir: svc` under the workspace.
  struct SubdirIo : FakeStepIo {
    SubdirIo(std::string dir, std::string workspace) : FakeStepIo(std::move(dir)), ws(workspace) {}
    const std::string& workspace() const override { return ws; }
    std::string ws;
  } sub(workspace_ / "svc", workspace_.path());
  Status status = ZipKind().Execute(Expanded({{"dest", "dist/app.zip"}, {"files", {"bin/"}}}), sub);
  ASSERT_TRUE(status) << status.error();
  EXPECT_EQ(sub.outputs["path"], "svc/dist/app.zip");
  EXPECT_EQ(sub.artifacts.at(0).path, "svc/dist/app.zip");
  ExpectUnzipTestPasses(workspace_ / "svc/dist/app.zip");
}

TEST_F(ZipTest, SymlinkInsideStoresTargetContent) {
  WriteTextFile(workspace_ / "real/config.yml", "real: true\n");
  MakeExecutable(workspace_ / "real/config.yml");
  fs::create_directories(workspace_ / "pkg");
  fs::create_symlink("../real/config.yml", workspace_ / "pkg/config.yml");
  fs::create_directory_symlink("../real", workspace_ / "pkg/linked-dir");
  ASSERT_TRUE(ZipOk({{"dest", "out.zip"}, {"files", {"pkg/"}}}));
  auto entries = ReadBack(workspace_ / "out.zip");
  EXPECT_EQ(entries["pkg/config.yml"].content, "real: true\n");
  EXPECT_EQ(entries["pkg/config.yml"].mode, S_IFREG | 0755);
  EXPECT_EQ(entries["pkg/linked-dir/config.yml"].content, "real: true\n");
}

TEST_F(ZipTest, SymlinkOutsideTheWorkspaceIsAnError) {
  WriteTextFile(workspace_ / "pkg/a.txt", "a\n");
  fs::create_symlink("/etc/hostname", workspace_ / "pkg/hostname");
  std::string error = Error({{"dest", "dist/out.zip"}, {"files", {"pkg/"}}});
  EXPECT_NE(error.find("pkg/hostname"), std::string::npos) << error;
  EXPECT_NE(error.find("outside the workspace"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(workspace_ / "dist/out.zip"));

  fs::create_symlink("../../../../../../../etc", workspace_ / "etc-link");
  error = Error({{"dest", "out.zip"}, {"files", {"etc-link/hostname"}}});
  EXPECT_NE(error.find("outside the workspace"), std::string::npos) << error;

  fs::remove(workspace_ / "pkg/hostname");
  fs::create_symlink("missing.txt", workspace_ / "pkg/dangling");
  error = Error({{"dest", "out.zip"}, {"files", {"pkg/"}}});
  EXPECT_NE(error.find("pkg/dangling"), std::string::npos) << error;
}

TEST_F(ZipTest, DestOutsideTheWorkspaceIsRefusedAndNothingIsWritten) {
  WriteTextFile(workspace_ / "a.txt", "a\n");
  TempDir outside;
  fs::create_directory_symlink(outside.path(), workspace_ / "out");
  fs::create_directory_symlink("..", workspace_ / "up");
  for (const std::string dest : {"../escape.zip", "../../escape.zip", "dist/../../escape.zip",
                                 "out/x.zip", "out/sub/x.zip", "up/escape.zip"}) {
    std::string error = Error({{"dest", dest}, {"files", {"a.txt"}}});
    EXPECT_NE(error.find("zip: dest '" + dest + "' resolves to"), std::string::npos) << error;
    EXPECT_NE(error.find("outside the workspace"), std::string::npos) << error;
  }
  EXPECT_FALSE(fs::exists(workspace_ / "../escape.zip"));
  EXPECT_TRUE(fs::is_empty(outside.path()));
  // A link that stays inside the workspace is fine.
  fs::create_directory_symlink("dist", workspace_ / "dist-link");
  fs::create_directories(workspace_ / "dist");
  EXPECT_TRUE(ZipOk({{"dest", "dist-link/in.zip"}, {"files", {"a.txt"}}}));
  EXPECT_TRUE(fs::exists(workspace_ / "dist/in.zip"));
}

TEST_F(ZipTest, TheWorkspaceRootLeavesOutGitAndTheRunnerState) {
  WriteTextFile(workspace_ / "app.txt", "app\n");
  WriteTextFile(workspace_ / ".git/HEAD", "ref: refs/heads/main\n");
  WriteTextFile(workspace_ / ".runner/builds/b1/report.json", "{}");
  WriteTextFile(workspace_ / ".runner/store/main/manifest.json", "{}");
  WriteTextFile(workspace_ / "lib/.git", "gitdir: elsewhere\n");  // below the root: kept
  WriteTextFile(workspace_ / ".gitignore", "dist/\n");
  const std::vector<std::string> expected = {".gitignore", "app.txt", "lib/", "lib/.git"};
  for (const nlohmann::ordered_json& files :
       {nlohmann::ordered_json{"."}, nlohmann::ordered_json{"**"},
        nlohmann::ordered_json{{{"src", "."}, {"dest", "/"}}}}) {
    fs::remove(workspace_ / "root.zip");
    ASSERT_TRUE(ZipOk({{"dest", "root.zip"}, {"files", files}})) << files.dump();
    EXPECT_EQ(Names(ReadBack(workspace_ / "root.zip")), expected) << files.dump();
  }
  // A worktree's .git is a file; a link to the state dir is left out as the dir is.
  fs::remove_all(workspace_ / ".git");
  WriteTextFile(workspace_ / ".git", "gitdir: /elsewhere\n");
  fs::create_directory_symlink(".runner", workspace_ / "state-link");
  fs::remove(workspace_ / "root.zip");
  ASSERT_TRUE(ZipOk({{"dest", "root.zip"}, {"files", {"."}}}));
  EXPECT_EQ(Names(ReadBack(workspace_ / "root.zip")), expected);
  // Named itself, the state dir is archived: the exclusion is for walks only.
  ASSERT_TRUE(ZipOk({{"dest", "store.zip"}, {"files", {".runner/store"}}}));
  EXPECT_EQ(Names(ReadBack(workspace_ / "store.zip")),
            (std::vector<std::string>{".runner/", ".runner/store/", ".runner/store/main/",
                                      ".runner/store/main/manifest.json"}));
}

TEST_F(ZipTest, SourceErrorsNameTheSource) {
  WriteTextFile(workspace_ / "a/x.txt", "a\n");
  WriteTextFile(workspace_ / "b/x.txt", "b\n");
  WriteTextFile(workspace_ / "notes.tmp", "b\n");
  std::string error = Error({{"dest", "out.zip"}, {"files", {"a/x.txt", "dist/ap"}}});
  EXPECT_NE(error.find("source 'dist/ap' does not exist"), std::string::npos) << error;

  error = Error({{"dest", "out.zip"}, {"files", {"deploy/**/*.sh"}}});
  EXPECT_NE(error.find("'deploy/**/*.sh' matches no file"), std::string::npos) << error;
  error = Error({{"dest", "out.zip"}, {"files", {"*.tmp"}}, {"exclude", {"*.tmp"}}});
  EXPECT_NE(error.find("'*.tmp' matches only excluded files"), std::string::npos) << error;

  error = Error({{"dest", "out.zip"},
                 {"files", {{{"src", "a/x.txt"}, {"dest", "x.txt"}}, {{"b/x.txt", "/"}}}}});
  EXPECT_NE(error.find("'a/x.txt' and 'b/x.txt' both map to 'x.txt'"), std::string::npos) << error;
  error =
      Error({{"dest", "out.zip"},
             {"files", {{{"src", "a/*.txt"}, {"dest", "c/"}}, {{"src", "b/"}, {"dest", "c"}}}}});
  EXPECT_NE(error.find("'a/x.txt' and 'b/x.txt' both map to 'c/x.txt'"), std::string::npos)
      << error;

  error = Error({{"dest", "out.zip"}, {"files", {{{"a/x.txt", "conf"}}, {{"b/x.txt", "conf/"}}}}});
  EXPECT_NE(error.find("'conf'"), std::string::npos) << error;

  error = Error({{"dest", "out.zip"}, {"files", {"../outside.txt"}}});
  EXPECT_NE(error.find("outside.txt"), std::string::npos) << error;
  error = Error({{"dest", "out.zip"}, {"files", {{{"a/x.txt", "../x.txt"}}}}});
  EXPECT_NE(error.find("'..'"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(workspace_ / "out.zip"));
  for (const std::string& name : Listing(workspace_.path())) {
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << "temporary left: " << name;
  }
}

TEST_F(ZipTest, CancelledLeavesNothing) {
  std::string data(3 << 20, 'x');
  WriteTextFile(workspace_ / "big.bin", data);
  io_.cancel = true;
  std::string error = Error({{"dest", "dist/out.zip"}, {"files", {"big.bin"}}});
  EXPECT_NE(error.find("cancelled"), std::string::npos) << error;
  EXPECT_TRUE(Listing(workspace_ / "dist").empty());

  // Cancelled half-way through writing.
  ZipOptions options;
  options.files = {{"big.bin", std::nullopt}};
  auto entries = CollectZipEntries(options, workspace_.path(), workspace_.path(), "");
  ASSERT_TRUE(entries);
  int polls = 0;
  ZipWriteOptions write;
  write.chunk_size = 64 * 1024;
  write.cancelled = [&] { return ++polls > 3; };
  int fd = ::open((workspace_ / "partial.zip").c_str(), O_RDWR | O_CREAT, 0644);
  auto stats = WriteZip(*entries, write, fd);
  ::close(fd);
  ASSERT_FALSE(stats);
  EXPECT_NE(stats.error().find("cancelled"), std::string::npos);
}

TEST_F(ZipTest, LevelZeroStores) {
  MakeTree(workspace_.path());
  auto config = TreeConfig("stored.zip");
  config["level"] = "0";
  ASSERT_TRUE(ZipOk(config));
  Command info = Shell("zipinfo " + Quote(workspace_ / "stored.zip"));
  EXPECT_EQ(info.output.find("defN"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("stor"), std::string::npos);
  EXPECT_EQ(ReadBack(workspace_ / "stored.zip")["app/share/big.log"].content,
            ReadTextFile(workspace_ / "app/share/big.log"));
  config["dest"] = "deflated.zip";
  config["level"] = "9";
  ASSERT_TRUE(ZipOk(config));
  EXPECT_LT(fs::file_size(workspace_ / "deflated.zip"), fs::file_size(workspace_ / "stored.zip"));
}

// A sparse file over 4 GiB needs zip64 sizes. Level 1 deflates its zeros at several GB/s, so
// this stays within seconds; libarchive then inflates all of it and checks the CRC.
TEST_F(ZipTest, Zip64ForFilesOver4GiB) {
  auto started = std::chrono::steady_clock::now();
  std::string huge = workspace_ / "data/huge.bin";
  fs::create_directories(workspace_ / "data");
  std::uint64_t size = (9ull << 29) + 5;  // 4.5 GiB and a tail
  {
    int fd = ::open(huge.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size - 5)), 0);
    ASSERT_EQ(::pwrite(fd, "tail\n", 5, static_cast<off_t>(size - 5)), 5);
    ::close(fd);
  }
  WriteTextFile(workspace_ / "data/small.txt", "after the big one\n");
  ASSERT_TRUE(Zip({{"dest", "big.zip"}, {"files", {"data/"}}, {"level", "1"}}));
  std::string zip = workspace_ / "big.zip";
  Command info = Shell("zipinfo -v " + Quote(zip));
  EXPECT_NE(info.output.find("uncompressed size:                              4831838213 bytes"),
            std::string::npos)
      << info.output;
  EXPECT_NE(info.output.find("PKWARE 64-bit sizes"), std::string::npos) << info.output;

  std::unique_ptr<archive, int (*)(archive*)> reader(archive_read_new(), archive_read_free);
  archive_read_support_format_zip_seekable(reader.get());
  ASSERT_EQ(archive_read_open_filename(reader.get(), zip.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* entry;
  std::map<std::string, std::uint64_t> sizes;
  std::string tail;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    std::uint64_t total = 0;
    std::vector<char> buffer(1 << 20);
    la_ssize_t n;
    while ((n = archive_read_data(reader.get(), buffer.data(), buffer.size())) > 0) {
      total += static_cast<std::uint64_t>(n);
      tail.assign(buffer.data() + std::max<la_ssize_t>(0, n - 5), buffer.data() + n);
    }
    ASSERT_EQ(n, 0) << name << ": " << archive_error_string(reader.get());
    sizes[name] = total;
    if (name == "data/huge.bin") {
      EXPECT_EQ(tail, "tail\n");
    }
  }
  EXPECT_EQ(sizes["data/huge.bin"], size);
  EXPECT_EQ(sizes["data/small.txt"], 18u);
  Command list = Shell("unzip -l " + Quote(zip));
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("4831838213"), std::string::npos) << list.output;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  RecordProperty("seconds", std::to_string(seconds));
}

// More than 65535 entries need the zip64 end records. Directory entries read no files, so
// this needs no tree on disk.
TEST_F(ZipTest, Zip64ForMoreThan65535Entries) {
  std::vector<ZipEntry> entries;
  for (int i = 0; i < 70000; ++i) {
    ZipEntry entry;
    entry.archive_path = fmt::format("d{:05}", i);
    entry.directory = true;
    entries.push_back(entry);
  }
  std::string path = workspace_ / "many.zip";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  auto stats = WriteZip(entries, ZipWriteOptions(), fd);
  ::close(fd);
  ASSERT_TRUE(stats) << stats.error();
  ExpectUnzipTestPasses(path);
  auto read = ReadBack(path, false);
  EXPECT_EQ(read.size(), 70000u);
  EXPECT_TRUE(read.contains("d69999/"));
}

// Parse on an expanded configuration, as Execute reads it; nullopt when it reports an error.
std::optional<ZipOptions> ParseZipOptions(const nlohmann::ordered_json& config) {
  Diagnostics diags("pipeline.yml", "");
  ZipOptions options = ZipKind().Parse(Expanded(config), diags);
  if (diags.HasErrors()) return std::nullopt;
  return options;
}

TEST(ZipOptionsTest, ParsesEveryForm) {
  auto options = ParseZipOptions(nlohmann::ordered_json::parse(R"({
    "dest": "dist/app.zip",
    "files": ["a", {"b": "c/"}, {"src": "d/**", "dest": "e/"}, {"src": "f"}],
    "exclude": "**/*.tmp", "level": "9", "codedeploy": "true"})"));
  ASSERT_TRUE(options);
  EXPECT_EQ(options->dest, "dist/app.zip");
  ASSERT_EQ(options->files.size(), 4u);
  EXPECT_EQ(options->files[0].src, "a");
  EXPECT_FALSE(options->files[0].dest);
  EXPECT_EQ(options->files[1].src, "b");
  EXPECT_EQ(options->files[1].dest, "c/");
  EXPECT_EQ(options->files[2].dest, "e/");
  EXPECT_FALSE(options->files[3].dest);
  EXPECT_EQ(options->exclude, std::vector<std::string>{"**/*.tmp"});
  EXPECT_EQ(options->level, 9);
  EXPECT_TRUE(options->codedeploy);

  EXPECT_FALSE(ParseZipOptions({{"dest", "a.zip"}, {"files", {"a"}}, {"level", "10"}}));
  EXPECT_FALSE(ParseZipOptions({{"dest", "a.zip"}, {"files", {"a"}}, {"codedeploy", "yes"}}));
  EXPECT_FALSE(ParseZipOptions({{"files", {"a"}}}));
  EXPECT_FALSE(ParseZipOptions({{"dest", "a.zip"}, {"files", nlohmann::ordered_json::array()}}));
}

ConfigNode Scalar(std::string text, int line, int column) {
  ConfigNode node;
  node.scalar.text = std::move(text);
  node.where = {line, column};
  node.scalar.where = node.where;
  return node;
}

ConfigNode Map(std::vector<std::pair<std::string, ConfigNode>> fields, int line) {
  ConfigNode node;
  node.type = ConfigNode::Type::kMap;
  node.where = {line, 5};
  for (auto& [key, value] : fields) {
    node.key_locations.push_back({value.where.line, 3});
    node.fields.emplace_back(key, std::move(value));
  }
  return node;
}

ConfigNode List(std::vector<ConfigNode> items, int line) {
  ConfigNode node;
  node.type = ConfigNode::Type::kList;
  node.where = {line, 5};
  node.items = std::move(items);
  return node;
}

std::string Validate(const ConfigNode& config) {
  Diagnostics diags("pipeline.yml", "");
  ZipKind().Check(config, diags);
  std::string out;
  for (const Diagnostic& d : diags.diagnostics()) {
    out += std::to_string(d.where.line) + ":" + std::to_string(d.where.column) + ": " + d.message +
           "\n";
  }
  return out;
}

TEST(ZipValidateTest, ReportsEachProblemWhereItIs) {
  EXPECT_EQ(
      Validate(Map({{"dest", Scalar("dist/app.zip", 2, 11)},
                    {"files", List({Scalar("app/", 3, 14),
                                    Map({{"deploy/appspec.yml", Scalar("appspec.yml", 4, 30)}}, 4),
                                    Map({{"src", Scalar("scripts/**", 5, 20)},
                                         {"dest", Scalar("scripts/", 5, 40)}},
                                        5)},
                                   3)},
                    {"level", Scalar("6", 6, 12)},
                    {"codedeploy", Scalar("true", 7, 17)}},
                   1)),
      "");
  std::string out = Validate(
      Map({{"dest", Scalar("dist/", 2, 11)},
           {"files", List({Map({{"scr", Scalar("a", 3, 10)}, {"dest", Scalar("b", 3, 20)}}, 3),
                           Scalar("/etc/passwd", 4, 9)},
                          3)},
           {"levle", Scalar("6", 5, 12)},
           {"level", Scalar("12", 6, 12)},
           {"codedeploy", Scalar("yes", 7, 17)}},
          1));
  EXPECT_NE(out.find("2:11: 'zip.dest' must name the archive file"), std::string::npos) << out;
  EXPECT_NE(out.find("3:3: unknown key 'scr' in zip.files[0] (did you mean 'src'?)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("zip.files[0]: missing 'src'"), std::string::npos) << out;
  EXPECT_NE(out.find("4:9: 'zip.files[1]' must be relative"), std::string::npos) << out;
  EXPECT_NE(out.find("5:3: unknown key 'levle' in zip (did you mean 'level'?)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("6:12: 'zip.level' must be a whole number from 0 to 9"), std::string::npos)
      << out;
  EXPECT_NE(out.find("7:17: 'zip.codedeploy' must be true or false"), std::string::npos) << out;
  EXPECT_NE(Validate(Map({{"dest", Scalar("a.zip", 2, 11)}}, 1)).find("zip: missing 'files'"),
            std::string::npos);
}

// One Parse serves both: at validate time an expression is checked for its type only; at run
// time its value is checked by the same code, with the same message at the same place.
TEST(ZipValidateTest, AnAbsoluteDestIsAnError) {
  for (const char* dest : {"/tmp/app.zip", "//app.zip", "/"}) {
    std::string out = Validate(
        Map({{"dest", Scalar(dest, 2, 11)}, {"files", List({Scalar("a.txt", 3, 7)}, 3)}}, 1));
    EXPECT_NE(out.find("2:11: 'zip.dest' must"), std::string::npos) << dest << ": " << out;
  }
  EXPECT_NE(Validate(Map({{"dest", Scalar("/tmp/app.zip", 2, 11)},
                          {"files", List({Scalar("a.txt", 3, 7)}, 3)}},
                         1))
                .find("relative to the step's directory (inside the workspace), got the "
                      "absolute path '/tmp/app.zip'"),
            std::string::npos);
}

TEST(ZipValidateTest, ExpressionsAreCheckedOnceExpanded) {
  const std::string pipeline =
      "dest: app.zip\n"
      "files: [a.txt]\n"
      "level: ${{ vars.level }}\n"
      "codedeploy: ${{ vars.deploy }}\n";
  Diagnostics check("pipeline.yml", "");
  ZipKind().Check(testing::ConfigFromYaml(pipeline), check);
  EXPECT_EQ(check.Format(), "");

  Diagnostics literal("pipeline.yml", "");
  ZipKind().Check(testing::ConfigFromYaml("dest: app.zip\n"
                                          "files: [a.txt]\n"
                                          "level: 12\n"),
                  literal);
  ASSERT_TRUE(literal.HasErrors());
  EXPECT_NE(literal.Format().find("pipeline.yml:3:8: error: 'zip.level' must be a whole number "
                                  "from 0 to 9, got '12'"),
            std::string::npos)
      << literal.Format();

  TempDir workspace;
  WriteTextFile(workspace / "a.txt", "a\n");
  FakeStepIo io(workspace.path());
  Status status = ZipKind().Execute(testing::ExpandedConfig("dest: app.zip\n"
                                                            "files: [a.txt]\n"
                                                            "level: 12\n"
                                                            "codedeploy: false\n"),
                                    io);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(), literal.Format());
  EXPECT_FALSE(fs::exists(workspace / "app.zip"));

  // An expression's value is final once expanded, even one that reads like an expression.
  Diagnostics expanded("pipeline.yml", "");
  ZipKind().Check(testing::ExpandedConfig("dest: ${{ x }}.zip\nfiles: [a.txt]\n"), expanded);
  EXPECT_FALSE(expanded.HasErrors()) << expanded.Format();
}

TEST(ZipValidateTest, UnknownScalarsAreCheckedForTypeOnly) {
  Diagnostics diags("pipeline.yml", "");
  ZipKind().Check(testing::ConfigFromYaml("dest: ${{ vars.dest }}\n"
                                          "files: ['${{ vars.src }}', {src: x, dest: "
                                          "'${{ vars.d }}'}]\n"
                                          "level: [1]\n"
                                          "codedeploy: {a: b}\n"),
                  diags);
  std::string out = diags.Format();
  EXPECT_NE(out.find("3:8: error: expected a string for 'zip.level', got a list"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("4:13: error: expected a string for 'zip.codedeploy', got a mapping"),
            std::string::npos)
      << out;
  EXPECT_EQ(diags.diagnostics().size(), 2u) << out;
}

}  // namespace
}  // namespace runner
