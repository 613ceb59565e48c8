#include "runner/cache/step_cache.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "runner/config_node.h"
#include "runner/sha256.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using ::testing::HasSubstr;
using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

namespace fs = std::filesystem;

ConfigNode Scalar(std::string text) {
  ConfigNode node;
  node.scalar.text = std::move(text);
  node.expanded = true;
  return node;
}

// `zip: {dest: ..., files: [...]}` with `dest` written as `dist/${{ vars.name }}.zip`, expanded
// with vars.name = `name`.
ConfigNode ZipConfig(const std::string& name) {
  ConfigNode dest;
  dest.scalar.text = "dist/${{ vars.name }}.zip";
  ConfigNode files;
  files.type = ConfigNode::Type::kList;
  files.items.push_back(dest);
  files.items.back().scalar.text = "bin/app";
  ConfigNode map;
  map.type = ConfigNode::Type::kMap;
  map.fields = {{"dest", dest}, {"files", files}};
  map.key_locations.resize(2);
  auto expanded = ExpandConfig(map, [&](std::string_view var) -> std::optional<std::string> {
    if (var == "vars.name") return name;
    return std::nullopt;
  });
  EXPECT_TRUE(expanded.has_value());
  return *expanded;
}

int Mode(const std::string& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return info.st_mode & 07777;
}

class StepKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTextFile(dir_ / "src/main.c", "int main() { return 0; }\n");
    WriteTextFile(dir_ / "src/util.c", "int util;\n");
    WriteTextFile(dir_ / "src/README.md", "notes\n");
    config_ = Scalar("cc -o dist/app src/*.c");
    parts_.kind = "run";
    parts_.config = &config_;
    parts_.dir = ".";
    parts_.env = {{"CFLAGS", "-O2"}};
    parts_.declared_env = {{"CC", "gcc"}};
    parts_.inputs = {"src/**", "!**/*.md"};
  }
  std::string Key() {
    FileDigests digests(dir_ / ".runner/cache/stat-data");
    auto key = StepKey(parts_, dir_.path(), dir_.path(), digests);
    EXPECT_TRUE(key.has_value()) << key.error();
    return key.value_or("");
  }

  TempDir dir_;
  ConfigNode config_;
  StepKeyParts parts_;
};

TEST_F(StepKeyTest, SameInputsSameKey) {
  std::string key = Key();
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(Key(), key);
}

TEST_F(StepKeyTest, AFilesContentChangesTheKey) {
  std::string before = Key();
  WriteTextFile(dir_ / "src/util.c", "int util = 1;\n");
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, AFilesPathChangesTheKey) {
  std::string before = Key();
  fs::create_directories(dir_ / "src/lib");
  fs::rename(dir_ / "src/util.c", dir_ / "src/lib/util.c");
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, AFilesExecBitChangesTheKey) {
  std::string before = Key();
  ::chmod((dir_ / "src/util.c").c_str(), 0755);
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, TheRunTextChangesTheKey) {
  std::string before = Key();
  config_ = Scalar("cc -O3 -o dist/app src/*.c");
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, ADeclaredEnvValueChangesTheKey) {
  std::string before = Key();
  parts_.declared_env = {{"CC", "clang"}};
  std::string clang = Key();
  EXPECT_NE(clang, before);
  parts_.declared_env = {{"CC", std::nullopt}};  // unset is not the same as empty
  std::string unset = Key();
  parts_.declared_env = {{"CC", ""}};
  EXPECT_NE(Key(), unset);
  EXPECT_NE(unset, before);
}

TEST_F(StepKeyTest, AVarUsedInTheConfigurationChangesTheKey) {
  config_ = ZipConfig("orders");
  std::string before = Key();
  config_ = ZipConfig("billing");
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, TheKindChangesTheKey) {
  std::string before = Key();
  parts_.kind = "zip";
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, TheKeyFormatsVersionChangesTheKey) {
  std::string before = Key();
  parts_.version = kCacheKeyVersion + 1;
  EXPECT_NE(Key(), before);
}

TEST_F(StepKeyTest, TheStepsEnvAndDirChangeTheKey) {
  std::string before = Key();
  parts_.env = {{"CFLAGS", "-O0"}};
  std::string env = Key();
  EXPECT_NE(env, before);
  parts_.dir = "services/orders";
  EXPECT_NE(Key(), env);
}

TEST_F(StepKeyTest, AnExcludedFileAndAnMtimeDoNotChangeTheKey) {
  std::string before = Key();
  WriteTextFile(dir_ / "src/README.md", "other notes\n");  // left out by !**/*.md
  timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / "src/main.c").c_str(), times, 0), 0);
  EXPECT_EQ(Key(), before);
}

TEST_F(StepKeyTest, TheWorkspacesLocationDoesNotChangeTheKey) {
  // Two machines check the same commit out in different places.
  std::string here = Key();
  TempDir other;
  fs::copy(dir_.path(), other.path(), fs::copy_options::recursive);
  FileDigests digests(other / ".runner/cache/stat-data");
  auto there = StepKey(parts_, other.path(), other.path(), digests);
  ASSERT_TRUE(there.has_value());
  EXPECT_EQ(*there, here);
}

TEST_F(StepKeyTest, AnInputPatternThatMatchesNothingIsAnError) {
  parts_.inputs = {"lib/**"};
  FileDigests digests(dir_ / "stat-data");
  auto key = StepKey(parts_, dir_.path(), dir_.path(), digests);
  ASSERT_FALSE(key.has_value());
  EXPECT_THAT(key.error(), HasSubstr("cache.inputs"));
  EXPECT_THAT(key.error(), HasSubstr("lib/**"));
}

// --- stores ----------------------------------------------------------------------------------

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTextFile(ws_ / "dist/app",
                  "\x7f"
                  "ELF binary bytes\n");
    ::chmod((ws_ / "dist/app").c_str(), 0755);
    WriteTextFile(ws_ / "dist/share/data.txt", "data\n");
    ::chmod((ws_ / "dist/share/data.txt").c_str(), 0640);
  }
  StepCacheOptions Local() {
    StepCacheOptions options;
    options.dir = ws_ / ".runner/cache";
    return options;
  }
  CacheLog Log() {
    return [this](std::string_view text) { log_ += text; };
  }
  CacheEntry Entry(const std::string& key) {
    return CacheEntry{key, "compile", "orders-main-1", {{"binary", "dist/app"}}, {}, {}, {}};
  }
  std::vector<std::string> StoreIn(StepCache& cache, const std::string& key) {
    return cache.Store(Entry(key), {"dist"}, "compiled\n", ws_.path(), ws_.path(), Log());
  }
  std::string EntryPath(const std::string& key) {
    return ws_ / (".runner/cache/entries/" + key + ".json");
  }
  std::string BlobPath(const std::string& text) {
    std::string sha = Sha256Hex(text);
    return ws_ / (".runner/cache/blobs/" + sha.substr(0, 2) + "/" + sha);
  }

  TempDir ws_;
  std::string log_;
  const std::string key_ = std::string(64, 'a');
};

TEST_F(StepCacheTest, AHitRestoresFilesWithModesOutputsAndTheLog) {
  StepCache cache(Local());
  EXPECT_EQ(StoreIn(cache, key_), std::vector<std::string>{"local"}) << log_;
  fs::remove_all(ws_ / "dist");

  auto hit = cache.Restore(key_, ws_.path(), ws_.path(), Log());
  ASSERT_TRUE(hit.has_value()) << log_;
  EXPECT_EQ(hit->store, "local");
  EXPECT_EQ(hit->log, "compiled\n");
  EXPECT_EQ(hit->entry.build, "orders-main-1");
  EXPECT_EQ(hit->entry.outputs, (Outputs{{"binary", "dist/app"}}));
  EXPECT_EQ(ReadTextFile(ws_ / "dist/app"),
            "\x7f"
            "ELF binary bytes\n");
  EXPECT_EQ(Mode(ws_ / "dist/app"), 0755);
  EXPECT_EQ(ReadTextFile(ws_ / "dist/share/data.txt"), "data\n");
  EXPECT_EQ(Mode(ws_ / "dist/share/data.txt"), 0640);
  EXPECT_EQ(log_, "");
}

TEST_F(StepCacheTest, AnAbsentEntryIsAQuietMiss) {
  StepCache cache(Local());
  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_EQ(log_, "");
}

TEST_F(StepCacheTest, ATruncatedBlobIsAMissWithAWarningAndNothingIsWritten) {
  StepCache cache(Local());
  StoreIn(cache, key_);
  ASSERT_EQ(::truncate(BlobPath("data\n").c_str(), 2), 0);
  WriteTextFile(ws_ / "dist/app", "changed by hand\n");

  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_THAT(log_, HasSubstr("warning"));
  EXPECT_THAT(log_, HasSubstr("has 2 bytes"));
  // Every blob is checked before any file is replaced.
  EXPECT_EQ(ReadTextFile(ws_ / "dist/app"), "changed by hand\n");
}

TEST_F(StepCacheTest, ABlobWithAFlippedByteIsAMissWithAWarning) {
  StepCache cache(Local());
  StoreIn(cache, key_);
  WriteTextFile(BlobPath("compiled\n"), "compiles\n");
  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_THAT(log_, HasSubstr("does not match its digest"));
}

TEST_F(StepCacheTest, AFlippedByteInTheEntryIsAMissWithAWarning) {
  StepCache cache(Local());
  StoreIn(cache, key_);
  std::string entry = ReadTextFile(EntryPath(key_));
  size_t at = entry.find("\"size\"");
  ASSERT_NE(at, std::string::npos);
  entry[at + 1] = 'S';  // "Size": the entry no longer says how big a blob is
  WriteTextFile(EntryPath(key_), entry);
  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_THAT(log_, HasSubstr("is corrupt"));

  log_.clear();
  WriteTextFile(EntryPath(key_), entry.substr(0, entry.size() / 2));  // truncated
  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_THAT(log_, HasSubstr("is corrupt"));
}

TEST_F(StepCacheTest, AnEntryThatLeadsOutOfTheWorkspaceIsRefused) {
  StepCache cache(Local());
  StoreIn(cache, key_);
  std::string entry = ReadTextFile(EntryPath(key_));
  size_t at = entry.rfind("\"dist/app\"");  // the file, not the output
  ASSERT_NE(at, std::string::npos);
  entry.replace(at, 10, "\"../../x\"");
  WriteTextFile(EntryPath(key_), entry);
  EXPECT_FALSE(cache.Restore(key_, ws_.path(), ws_.path(), Log()).has_value());
  EXPECT_THAT(log_, HasSubstr("'..'"));
}

TEST_F(StepCacheTest, EvictionRemovesTheLeastRecentlyUsedEntriesAndTheirBlobs) {
  StepCache cache(Local());
  std::vector<std::string> keys = {std::string(64, '1'), std::string(64, '2'),
                                   std::string(64, '3')};
  for (size_t i = 0; i < keys.size(); ++i) {
    WriteTextFile(ws_ / "dist/app", std::string(10000, static_cast<char>('a' + i)));
    StoreIn(cache, keys[i]);
    // Stored an hour apart, oldest first.
    timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= 3600 * static_cast<long>(keys.size() - i);
    times[1] = times[0];
    ::utimensat(AT_FDCWD, EntryPath(keys[i]).c_str(), times, 0);
  }
  // Using the oldest makes it the most recently used.
  ASSERT_TRUE(cache.Restore(keys[0], ws_.path(), ws_.path(), Log()).has_value()) << log_;

  // Room for two entries (each about 10 KB with its small blobs), not three.
  ASSERT_TRUE(cache.Evict(25000).has_value());
  EXPECT_TRUE(fs::exists(EntryPath(keys[0])));
  EXPECT_FALSE(fs::exists(EntryPath(keys[1])));
  EXPECT_TRUE(fs::exists(EntryPath(keys[2])));
  EXPECT_FALSE(fs::exists(BlobPath(std::string(10000, 'b'))));
  EXPECT_TRUE(fs::exists(BlobPath(std::string(10000, 'a'))));
  EXPECT_TRUE(fs::exists(BlobPath("data\n")));  // still named by the entries kept
  EXPECT_TRUE(cache.Restore(keys[2], ws_.path(), ws_.path(), Log()).has_value()) << log_;

  ASSERT_TRUE(cache.Evict(0).has_value());
  EXPECT_FALSE(fs::exists(EntryPath(keys[0])));
  EXPECT_FALSE(fs::exists(BlobPath("data\n")));
}

// --- the shared store, on s3rver ------------------------------------------------------------

class SharedCacheTest : public StepCacheTest {
 protected:
  void SetUp() override {
    StepCacheTest::SetUp();
    ASSERT_TRUE(server_.ok());
  }
  StepCacheOptions WithShared(const std::string& local, bool write) {
    auto shared =
        OpenArtifactStore("s3://bkt/cache/", testing::S3rverStoreOptions(server_.endpoint()));
    EXPECT_TRUE(shared.has_value());
    StepCacheOptions options;
    options.dir = local;
    options.shared = std::move(*shared);
    options.write_shared = write;
    return options;
  }
  std::vector<std::string> SharedNames() {
    auto listing = WithShared(ws_ / "unused", false).shared->List("");
    EXPECT_TRUE(listing.has_value());
    return listing.value_or(std::vector<std::string>());
  }

  testing::S3rver server_;
};

TEST_F(SharedCacheTest, AnotherMachineHitsTheSharedStoreAndKeepsALocalCopy) {
  {
    StepCache writer(WithShared(ws_ / ".runner/cache", true));
    EXPECT_EQ(StoreIn(writer, key_), (std::vector<std::string>{"local", "s3://bkt/cache/"}))
        << log_;
  }
  EXPECT_THAT(SharedNames(), ::testing::Contains("entries/" + key_ + ".json"));

  TempDir other;  // another machine: its own workspace and local cache
  StepCache reader(WithShared(other / ".runner/cache", false));
  auto hit = reader.Restore(key_, other.path(), other.path(), Log());
  ASSERT_TRUE(hit.has_value()) << log_;
  EXPECT_EQ(hit->store, "s3://bkt/cache/");
  EXPECT_EQ(ReadTextFile(other / "dist/app"),
            "\x7f"
            "ELF binary bytes\n");
  EXPECT_EQ(Mode(other / "dist/app"), 0755);
  auto again = reader.Restore(key_, other.path(), other.path(), Log());
  ASSERT_TRUE(again.has_value()) << log_;
  EXPECT_EQ(again->store, "local");
}

TEST_F(SharedCacheTest, ABuildThatMayNotWriteStoresLocallyOnly) {
  StepCache cache(WithShared(ws_ / ".runner/cache", false));
  EXPECT_EQ(StoreIn(cache, key_), std::vector<std::string>{"local"}) << log_;
  EXPECT_EQ(SharedNames(), std::vector<std::string>());
}

}  // namespace
}  // namespace runner
