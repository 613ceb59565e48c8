// The upload step: file selection, validation and the local store without a network; then
// against a real S3-compatible server (s3rver, which verifies SigV4) on 127.0.0.1, reading every
// object back with the Debian AWS CLI; then through a fault-injecting proxy; then the runner
// binary end to end.
#include "steps/upload.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "runner/aws/http.h"
#include "runner/aws/s3_client.h"
#include "runner/sha256.h"
#include "tests/config_from_yaml.h"
#include "tests/e2e_util.h"
#include "tests/fake_step_io.h"
#include "tests/s3_fakes.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::ordered_json;
using testing::CommandResult;
using testing::FaultProxy;
using testing::ReadTextFile;
using testing::RunAwsCli;
using testing::S3rver;
using testing::TempDir;
using testing::WriteTextFile;

constexpr std::uint64_t kMiB = 1024 * 1024;

// Bytes that do not compress or repeat, so a misplaced part shows.
std::string RandomBytes(size_t size, unsigned seed) {
  std::mt19937_64 random(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t value = random();
    std::memcpy(out.data() + i, &value, 8);
  }
  return out;
}

std::string Validate(const std::string& yaml) {
  Diagnostics diags("pipeline.yml", yaml);
  UploadKind().Check(testing::ConfigFromYaml(yaml, "upload"), diags);
  return diags.Format();
}

std::vector<std::string> Names(const std::vector<UploadSource>& sources) {
  std::vector<std::string> names;
  for (const auto& source : sources) names.push_back(source.name);
  return names;
}

// A StepIo whose cancellation another thread may set.
class CancellableStepIo : public FakeStepIo {
 public:
  using FakeStepIo::FakeStepIo;
  bool cancelled() const override { return cancel_flag.load(); }
  void ReportProgress(const Progress& report) override {
    std::lock_guard lock(progress_mutex);
    progress.push_back(report);
  }
  std::atomic<bool> cancel_flag{false};
  std::mutex progress_mutex;
  std::vector<Progress> progress;
};

// The environment a step gets to talk to s3rver: its keys and nothing from the machine.
void UseS3rverCredentials(FakeStepIo& io, const std::string& home, std::string secret = "S3RVER") {
  io.env_ = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
             {"HOME", home},
             {"AWS_ACCESS_KEY_ID", "S3RVER"},
             {"AWS_SECRET_ACCESS_KEY", std::move(secret)},
             {"AWS_REGION", "us-east-1"},
             {"AWS_EC2_METADATA_DISABLED", "true"}};
}

// The object's bytes as the AWS CLI reads them back.
std::optional<std::string> ReadBack(const std::string& endpoint, const std::string& key,
                                    const TempDir& scratch) {
  std::string out = scratch / "readback";
  std::filesystem::remove(out);
  CommandResult result =
      RunAwsCli(endpoint, {"s3api", "get-object", "--bucket", "bkt", "--key", key, out});
  if (result.status != 0) {
    ADD_FAILURE() << "aws s3api get-object " << key << ": " << result.output;
    return std::nullopt;
  }
  return ReadTextFile(out);
}

std::vector<Json> ProxyLog(const FaultProxy& proxy) {
  std::vector<Json> entries;
  std::ifstream in(proxy.log_path());
  for (std::string line; std::getline(in, line);) entries.push_back(Json::parse(line));
  return entries;
}

// --- no network -------------------------------------------------------------------------

TEST(UploadTest, ParsesByteSizes) {
  EXPECT_EQ(ParseByteSize("16MiB").value(), 16 * kMiB);
  EXPECT_EQ(ParseByteSize("16MB").value(), 16 * kMiB);
  EXPECT_EQ(ParseByteSize("5 mib").value(), 5 * kMiB);
  EXPECT_EQ(ParseByteSize("1GiB").value(), 1024 * kMiB);
  EXPECT_EQ(ParseByteSize("64K").value(), 64 * 1024u);
  EXPECT_EQ(ParseByteSize("8388608").value(), 8388608u);
  EXPECT_THAT(ParseByteSize("16 parsecs").error(), HasSubstr("unknown size unit"));
  EXPECT_FALSE(ParseByteSize("MiB").has_value());
}

// Issue 9, item 36: a size that wraps around in 64 bits must not come out small and valid.
TEST(UploadTest, SizesThatOverflowAreRefused) {
  for (const char* text : {"17179869185GiB", "999999999999GiB", "18014398509481984K"}) {
    auto size = ParseByteSize(text);
    EXPECT_FALSE(size.has_value()) << text << " = " << size.value_or(0);
  }
  EXPECT_THAT(ParseByteSize("17179869185GiB").error(), HasSubstr("too large"));
  EXPECT_EQ(ParseByteSize("17179869183GiB").value(), 17179869183ull * 1024 * kMiB);
}

TEST(UploadTest, PlainFilesKeepTheirBaseNameGlobsTheirPathBelowTheFixedPrefix) {
  TempDir dir;
  WriteTextFile(dir / "dist/app.zip", "zip");
  WriteTextFile(dir / "cfn/a.yaml", "a");
  WriteTextFile(dir / "cfn/nested/b.yaml", "b");
  WriteTextFile(dir / "cfn/c.json", "c");
  WriteTextFile(dir / "site/index.html", "i");
  WriteTextFile(dir / "site/css/x.css", "x");
  auto sources = CollectUploadSources({"dist/app.zip", "cfn/*.yaml", "cfn/**/*.yaml", "site/"},
                                      dir.path(), dir.path());
  ASSERT_TRUE(sources.has_value()) << sources.error();
  EXPECT_THAT(Names(*sources),
              ElementsAre("app.zip", "a.yaml", "nested/b.yaml", "css/x.css", "index.html"));
  EXPECT_EQ((*sources)[0].path, dir / "dist/app.zip");
  auto top = CollectUploadSources({"*/*.json"}, dir.path(), dir.path());
  ASSERT_TRUE(top.has_value()) << top.error();
  EXPECT_THAT(Names(*top), ElementsAre("cfn/c.json"));
}

TEST(UploadTest, SelectionErrors) {
  TempDir dir;
  WriteTextFile(dir / "a/x.txt", "1");
  WriteTextFile(dir / "b/x.txt", "2");
  WriteTextFile(dir / "manifest.json", "{}");
  EXPECT_THAT(CollectUploadSources({"a/x.txt", "b/x.txt"}, dir.path(), dir.path()).error(),
              HasSubstr("two files would be uploaded as 'x.txt'"));
  EXPECT_THAT(CollectUploadSources({"a/*.zip"}, dir.path(), dir.path()).error(),
              HasSubstr("'a/*.zip' matches no file"));
  EXPECT_THAT(CollectUploadSources({"missing.txt"}, dir.path(), dir.path()).error(),
              HasSubstr("'missing.txt' does not exist"));
  EXPECT_THAT(CollectUploadSources({"manifest.json"}, dir.path(), dir.path()).error(),
              HasSubstr("manifest.json, which the step writes itself"));
  // The same file twice is one object.
  auto twice = CollectUploadSources({"a/x.txt", "a/*.txt"}, dir.path(), dir.path());
  ASSERT_TRUE(twice.has_value()) << twice.error();
  EXPECT_EQ(twice->size(), 1u);
}

// SPEC: every path a step reads stays inside the workspace, symlinks resolved.
TEST(UploadTest, FilesOutsideTheWorkspaceAreRefused) {
  TempDir outside;
  TempDir workspace;
  WriteTextFile(outside / "secret.txt", "s");
  std::filesystem::create_symlink(outside / "secret.txt", workspace / "link.txt");
  EXPECT_THAT(CollectUploadSources({"link.txt"}, workspace.path(), workspace.path()).error(),
              HasSubstr("outside the workspace"));
  std::string up = "../" + std::filesystem::path(outside.path()).filename().string() + "/*.txt";
  EXPECT_THAT(CollectUploadSources({up}, workspace.path(), workspace.path()).error(),
              HasSubstr("outside the workspace"));
}

TEST(UploadTest, SourcesOfEveryKindOutsideTheWorkspaceAreRefused) {
  TempDir outside;
  TempDir root;
  std::string workspace = root / "a/b/ws";
  WriteTextFile(workspace + "/ok.txt", "ok");
  WriteTextFile(outside / "secret/passwd", "s");
  std::filesystem::create_symlink("/etc/passwd", workspace + "/passwd");
  std::filesystem::create_directory_symlink(outside / "secret", workspace + "/linked");
  for (const std::string pattern : {"../../../etc/pass*", "../../../etc/passwd", "passwd",
                                    "linked/passwd", "linked/*", "linked/", "linked/**"}) {
    auto sources = CollectUploadSources({"ok.txt", pattern}, workspace, workspace);
    ASSERT_FALSE(sources.has_value()) << pattern;
    EXPECT_THAT(sources.error(), HasSubstr("outside the workspace")) << pattern;
  }
  for (const std::string pattern : {"/etc/passwd", "/etc/pass*"}) {
    auto sources = CollectUploadSources({pattern}, workspace, workspace);
    ASSERT_FALSE(sources.has_value()) << pattern;
    EXPECT_THAT(sources.error(), HasSubstr("must be relative to")) << pattern;
  }
}

TEST(UploadTest, ASecondBuildOnOnePrefixIsRefusedAndTheFirstIsKept) {
  TempDir dir;
  WriteTextFile(dir / "dist/app.zip", "first");
  FakeStepIo io(dir.path());
  auto config = testing::ExpandedConfig(R"({"to": "store/main/b7/", "files": ["dist/app.zip"]})");
  ASSERT_TRUE(UploadKind().Execute(config, io).has_value()) << io.log;
  std::string root = dir / "store/main/b7";
  std::string manifest = ReadTextFile(root + "/manifest.json");

  WriteTextFile(dir / "dist/app.zip", "second");
  FakeStepIo again(dir.path());
  Status status = UploadKind().Execute(config, again);
  ASSERT_FALSE(status.has_value());
  EXPECT_THAT(status.error(), HasSubstr("file://" + root + "/manifest.json already exists"));
  EXPECT_THAT(status.error(), HasSubstr("nothing was uploaded"));
  EXPECT_EQ(ReadTextFile(root + "/app.zip"), "first");
  EXPECT_EQ(ReadTextFile(root + "/manifest.json"), manifest);
  // The same prefix written another way (a file:// URL) is the same build.
  FakeStepIo by_url(dir.path());
  EXPECT_FALSE(UploadKind()
                   .Execute(testing::ExpandedConfig(fmt::format(
                                R"({{"to": "file://{}", "files": ["dist/app.zip"]}})", root)),
                            by_url)
                   .has_value());
  EXPECT_EQ(ReadTextFile(root + "/app.zip"), "first");
}

TEST(UploadTest, AStorePathBuiltFromABranchCannotClimb) {
  TempDir dir;
  // The workspace sits three levels down, so that where a climb would land is ours to check.
  const std::string workspace = dir / "a/b/c";
  WriteTextFile(workspace + "/dist/app.zip", "zip");
  for (const std::string to :
       {"store/../../../x/", ".runner/store/a/../../b/", "store//x/", "s3://bkt/builds/../../x/",
        "s3://bkt/builds/./x/", "s3://bkt//x/"}) {
    FakeStepIo io(workspace);
    Status status = UploadKind().Execute(
        testing::ExpandedConfig(
            fmt::format(R"({{"to": "{}", "files": ["dist/app.zip"], "region": "us-east-1"}})", to)),
        io);
    ASSERT_FALSE(status.has_value()) << to;
    EXPECT_THAT(status.error(), HasSubstr("cannot be used")) << to;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "a/x"));
  EXPECT_FALSE(std::filesystem::exists(workspace + "/store"));
}

TEST(UploadTest, ValidatesConfiguration) {
  EXPECT_EQ(Validate("upload:\n"
                     "  to: s3://bucket/prefix/\n"
                     "  files: [dist/app.zip, \"cfn/*.yaml\"]\n"
                     "  region: eu-west-1\n"
                     "  endpoint: http://127.0.0.1:9000\n"
                     "  path_style: auto\n"
                     "  sse: aws:kms\n"
                     "  kms_key_id: alias/builds\n"
                     "  part_size: 16MiB\n"
                     "  concurrency: 8\n"),
            "");
  EXPECT_EQ(Validate("upload: {to: \"${{ vars.store }}/x/\", files: dist/app.zip}\n"), "");
  std::string errors = Validate(
      "upload:\n"
      "  to: gs://bucket/\n"
      "  fils: [a]\n"
      "  endpoint: 127.0.0.1:9000\n"
      "  path_style: yes\n"
      "  sse: AES256\n"
      "  kms_key_id: k\n"
      "  part_size: 1MiB\n"
      "  concurrency: 0\n");
  EXPECT_THAT(errors, HasSubstr("unknown key 'fils'"));
  EXPECT_THAT(errors, HasSubstr("did you mean 'files'"));
  EXPECT_THAT(errors, HasSubstr("missing 'files'"));
  EXPECT_THAT(errors, HasSubstr("unknown scheme"));
  EXPECT_THAT(errors, HasSubstr("upload.endpoint must start with http://"));
  EXPECT_THAT(errors, HasSubstr("path_style 'yes'"));
  EXPECT_THAT(errors, HasSubstr("kms_key_id needs 'sse: aws:kms'"));
  EXPECT_THAT(errors, HasSubstr("outside S3's limits"));
  EXPECT_THAT(errors, HasSubstr("concurrency"));
  EXPECT_THAT(Validate("upload: {to: \"s3://\", files: [a]}\n"), HasSubstr("names no bucket"));
}

TEST(UploadTest, LocalStoreCopiesAtomicallyWithAManifest) {
  TempDir dir;
  WriteTextFile(dir / "dist/app.zip", "zip bytes");
  WriteTextFile(dir / "cfn/stack.yaml", "Resources: {}\n");
  FakeStepIo io(dir.path());
  Status status =
      UploadKind().Execute(testing::ExpandedConfig(R"({"to": ".runner/store/main/orders-main-7/",
                      "files": ["dist/app.zip", "cfn/*.yaml"]})"),
                           io);
  ASSERT_TRUE(status.has_value()) << status.error();
  std::string root = dir / ".runner/store/main/orders-main-7";
  EXPECT_EQ(ReadTextFile(root + "/app.zip"), "zip bytes");
  EXPECT_EQ(ReadTextFile(root + "/stack.yaml"), "Resources: {}\n");
  EXPECT_EQ(io.outputs["url"], "file://" + root + "/");
  EXPECT_EQ(io.outputs["manifest_url"], "file://" + root + "/manifest.json");
  // Nothing but the files and the manifest: no temporary file left behind.
  std::vector<std::string> entries;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    entries.push_back(entry.path().filename().string());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_THAT(entries, ElementsAre("app.zip", "manifest.json", "stack.yaml"));

  Json manifest = Json::parse(ReadTextFile(root + "/manifest.json"));
  EXPECT_EQ(manifest["version"], 1);
  EXPECT_EQ(manifest["build"]["id"], "orders-main-7");
  EXPECT_EQ(manifest["build"]["commit"], "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(manifest["build"]["branch"], "main");
  EXPECT_EQ(manifest["url"], "file://" + root + "/");
  ASSERT_EQ(manifest["objects"].size(), 2u);
  const Json& app = manifest["objects"][0];
  EXPECT_EQ(app["name"], "app.zip");
  EXPECT_EQ(app["key"], "app.zip");
  EXPECT_EQ(app["url"], "file://" + root + "/app.zip");
  EXPECT_EQ(app["source"], "dist/app.zip");
  EXPECT_EQ(app["size"], 9);
  EXPECT_EQ(app["sha256"], Sha256Hex("zip bytes"));
  EXPECT_EQ(app["etag"], "\"" + aws::Md5Hex("zip bytes") + "\"");
  EXPECT_EQ(manifest["objects"][1]["source"], "cfn/stack.yaml");

  ASSERT_EQ(io.artifacts.size(), 2u);
  EXPECT_EQ(io.artifacts[0].path, "dist/app.zip");
  EXPECT_EQ(io.artifacts[0].size, 9u);
  EXPECT_EQ(io.artifacts[0].sha256, Sha256Hex("zip bytes"));
  EXPECT_EQ(io.artifacts[0].url, "file://" + root + "/app.zip");
}

TEST(UploadTest, TheBakesAmisGoIntoTheManifest) {
  TempDir dir;
  WriteTextFile(dir / "cfn/stack.yaml", "Resources: {}\n");
  FakeStepIo io(dir.path());
  Status status =
      UploadKind().Execute(testing::ExpandedConfig(R"({"to": "store/", "files": ["cfn/stack.yaml"],
                      "amis": "eu-west-1:ami-0west,us-east-1:ami-0east"})"),
                           io);
  ASSERT_TRUE(status.has_value()) << status.error();
  Json manifest = Json::parse(ReadTextFile(dir / "store/manifest.json"));
  EXPECT_EQ(manifest["amis"],
            Json::parse(R"({"eu-west-1": "ami-0west", "us-east-1": "ami-0east"})"));

  EXPECT_THAT(Validate("upload: {to: s/, files: [a], amis: \"ami-0west\"}\n"),
              HasSubstr("upload.amis 'ami-0west' is not a list of REGION:AMI pairs: give the "
                        "bake's `${{ steps.ID.outputs.artifact_id }}`"));
  EXPECT_THAT(Validate("upload: {to: s/, files: [a], amis: \"eu-west-1:ami-1,eu-west-1:ami-2\"}\n"),
              HasSubstr("upload.amis names two AMIs for eu-west-1: ami-1 and ami-2"));
  EXPECT_EQ(Validate("upload: {to: s/, files: [a], amis: \"${{ vars.amis }}\"}\n"), "");
}

TEST(UploadTest, LocalStoreByFileUrl) {
  TempDir dir;
  TempDir store;
  WriteTextFile(dir / "a.txt", "a");
  FakeStepIo io(dir.path());
  Status status =
      UploadKind().Execute(testing::ExpandedConfig(fmt::format(
                               R"({{"to": "file://{}/x", "files": "a.txt"}})", store.path())),
                           io);
  ASSERT_TRUE(status.has_value()) << status.error();
  EXPECT_EQ(ReadTextFile(store / "x/a.txt"), "a");
  EXPECT_EQ(io.outputs["url"], "file://" + store.path() + "/x/");
  EXPECT_TRUE(std::filesystem::exists(store / "x/manifest.json"));
}

TEST(UploadTest, RunTimeConfigurationErrors) {
  TempDir dir;
  WriteTextFile(dir / "a.txt", "a");
  FakeStepIo io(dir.path());
  EXPECT_THAT(UploadKind()
                  .Execute(testing::ExpandedConfig(R"({"to": "s3://b", "files": ["a.txt"]})"), io)
                  .error(),
              HasSubstr("not a valid bucket name"));
  EXPECT_THAT(UploadKind()
                  .Execute(testing::ExpandedConfig(
                               R"({"to": "out", "files": ["a.txt"], "part_size": "1MiB"})"),
                           io)
                  .error(),
              HasSubstr("outside S3's limits"));
  EXPECT_THAT(UploadKind()
                  .Execute(testing::ExpandedConfig(R"({"to": "out", "files": ["nothing/*"]})"), io)
                  .error(),
              HasSubstr("matches no file"));
}

// One Parse serves validate and the run: a value `validate` could not see is checked at run
// time with the same message, at the same place, as when written literally.
TEST(UploadTest, OneParseChecksAnExpressionsValueAtRun) {
  const std::string expression = "{to: out, files: [a.txt], part_size: \"${{ vars.p }}\"}";
  const std::string literal = "{to: out, files: [a.txt], part_size: \"1KiB\"}";
  Diagnostics at_validate("pipeline.yml", "");
  UploadKind().Check(testing::ConfigFromYaml(expression), at_validate);
  EXPECT_EQ(at_validate.Format(), "");

  Diagnostics literal_diags("pipeline.yml", "");
  UploadKind().Check(testing::ConfigFromYaml(literal), literal_diags);
  ASSERT_TRUE(literal_diags.HasErrors());
  EXPECT_THAT(literal_diags.Format(),
              HasSubstr("pipeline.yml:1:38: error: upload.part_size 1KiB is outside S3's limits"));

  TempDir dir;
  WriteTextFile(dir / "a.txt", "a");
  FakeStepIo io(dir.path());
  ConfigNode expanded = testing::ExpandedConfig(expression);
  for (auto& [key, value] : expanded.fields) {
    if (key == "part_size") value.scalar.text = "1KiB";  // what ${{ vars.p }} expanded to
  }
  Status status = UploadKind().Execute(expanded, io);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error(), literal_diags.Format());
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
}

TEST(UploadTest, CancelledLocalStoreLeavesNoManifest) {
  TempDir dir;
  WriteTextFile(dir / "a.txt", "a");
  FakeStepIo io(dir.path());
  io.cancel = true;
  Status status =
      UploadKind().Execute(testing::ExpandedConfig(R"({"to": "out", "files": ["a.txt"]})"), io);
  EXPECT_THAT(status.error(), HasSubstr("cancelled"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out/manifest.json"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out/a.txt"));
}

// --- a real S3-compatible server --------------------------------------------------------

class UploadS3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    UseS3rverCredentials(io_, home_.path());
  }

  Status Upload(const std::string& extra, const std::string& endpoint = "") {
    std::string config = fmt::format(R"({{"to": "s3://bkt/builds/main/7/", "endpoint": "{}" {}}})",
                                     endpoint.empty() ? server_.endpoint() : endpoint, extra);
    return UploadKind().Execute(testing::ExpandedConfig(config), io_);
  }

  S3rver server_;
  TempDir work_;
  TempDir home_;
  TempDir scratch_;
  CancellableStepIo io_{work_.path()};
};

TEST_F(UploadS3Test, SingleAndMultipartUploadsReadBackIdentical) {
  std::string small = RandomBytes(100 * 1024, 1);
  std::string large = RandomBytes(12 * kMiB + 12345, 2);
  WriteTextFile(work_ / "dist/small.bin", small);
  WriteTextFile(work_ / "dist/large.bin", large);
  WriteTextFile(work_ / "dist/empty.txt", "");
  Status status = Upload(R"(, "files": ["dist/small.bin", "dist/large.bin", "dist/empty.txt"],
                "part_size": "5MiB", "concurrency": "3")");
  ASSERT_TRUE(status.has_value()) << status.error() << "\n" << io_.log;

  for (const auto& [key, bytes] : {std::pair{"builds/main/7/small.bin", &small},
                                   std::pair{"builds/main/7/large.bin", &large}}) {
    auto back = ReadBack(server_.endpoint(), key, scratch_);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->size(), bytes->size()) << key;
    EXPECT_EQ(Sha256Hex(*back), Sha256Hex(*bytes)) << key;
  }
  EXPECT_EQ(ReadBack(server_.endpoint(), "builds/main/7/empty.txt", scratch_), "");

  EXPECT_EQ(io_.outputs["url"], "s3://bkt/builds/main/7/");
  EXPECT_EQ(io_.outputs["manifest_url"], "s3://bkt/builds/main/7/manifest.json");
  auto manifest_text = ReadBack(server_.endpoint(), "builds/main/7/manifest.json", scratch_);
  ASSERT_TRUE(manifest_text.has_value());
  Json manifest = Json::parse(*manifest_text);
  EXPECT_EQ(manifest["build"]["id"], "orders-main-7");
  EXPECT_EQ(manifest["url"], "s3://bkt/builds/main/7/");
  ASSERT_EQ(manifest["objects"].size(), 3u);
  const Json& large_entry = manifest["objects"][1];
  EXPECT_EQ(large_entry["key"], "builds/main/7/large.bin");
  EXPECT_EQ(large_entry["url"], "s3://bkt/builds/main/7/large.bin");
  EXPECT_EQ(large_entry["source"], "dist/large.bin");
  EXPECT_EQ(large_entry["size"], large.size());
  EXPECT_EQ(large_entry["sha256"], Sha256Hex(large));
  EXPECT_EQ(large_entry["parts"], 3);
  EXPECT_FALSE(large_entry["etag"].get<std::string>().empty());
  const Json& small_entry = manifest["objects"][0];
  EXPECT_EQ(small_entry["etag"], "\"" + aws::Md5Hex(small) + "\"");
  EXPECT_EQ(small_entry["parts"], 0);
  // The ETags the manifest records are the server's.
  CommandResult head = RunAwsCli(server_.endpoint(), {"s3api", "head-object", "--bucket", "bkt",
                                                      "--key", "builds/main/7/large.bin"});
  ASSERT_EQ(head.status, 0) << head.output;
  EXPECT_EQ(Json::parse(head.output)["ETag"], large_entry["etag"]);

  ASSERT_EQ(io_.artifacts.size(), 3u);
  EXPECT_EQ(io_.artifacts[1].url, "s3://bkt/builds/main/7/large.bin");
  EXPECT_EQ(io_.artifacts[1].sha256, Sha256Hex(large));
}

TEST_F(UploadS3Test, ProgressCountsEveryByteOnceAndEndsAtTheTotal) {
  WriteTextFile(work_ / "dist/small.bin", RandomBytes(100 * 1024, 1));
  WriteTextFile(work_ / "dist/large.bin", RandomBytes(12 * kMiB + 12345, 2));
  Status status = Upload(R"(, "files": ["dist/small.bin", "dist/large.bin"],
                "part_size": "5MiB", "concurrency": "2")");
  ASSERT_TRUE(status.has_value()) << status.error() << "\n" << io_.log;
  const std::uint64_t total = 100 * 1024 + 12 * kMiB + 12345;
  ASSERT_FALSE(io_.progress.empty());
  EXPECT_EQ(io_.progress.front(), (Progress{"sent", 0, total}));
  EXPECT_EQ(io_.progress.back(), (Progress{"sent", total, total}));
  bool between = false;
  for (size_t i = 1; i < io_.progress.size(); ++i) {
    EXPECT_GE(io_.progress[i].bytes, io_.progress[i - 1].bytes) << i;
    EXPECT_EQ(io_.progress[i].total_bytes, total);
    // A part of the large file, acknowledged before the whole file is.
    between = between || (io_.progress[i].bytes > 100 * 1024 && io_.progress[i].bytes < total);
  }
  EXPECT_TRUE(between);
}

TEST_F(UploadS3Test, ASecondBuildOnOnePrefixIsRefusedAndTheFirstIsKept) {
  WriteTextFile(work_ / "dist/app.zip", "first");
  ASSERT_TRUE(Upload(R"(, "files": ["dist/app.zip"])").has_value()) << io_.log;
  auto manifest = ReadBack(server_.endpoint(), "builds/main/7/manifest.json", scratch_);
  ASSERT_TRUE(manifest.has_value());

  WriteTextFile(work_ / "dist/app.zip", "second");
  io_.log.clear();
  Status status = Upload(R"(, "files": ["dist/app.zip"])");
  ASSERT_FALSE(status.has_value());
  EXPECT_THAT(status.error(),
              HasSubstr("s3://bkt/builds/main/7/manifest.json already exists: a build was "
                        "published under this prefix"));
  EXPECT_THAT(status.error(), HasSubstr("nothing was uploaded"));
  // Refused on the HEAD, before any PUT: s3rver would have let both through.
  EXPECT_EQ(ReadBack(server_.endpoint(), "builds/main/7/app.zip", scratch_), "first");
  EXPECT_EQ(ReadBack(server_.endpoint(), "builds/main/7/manifest.json", scratch_), *manifest);
}

TEST_F(UploadS3Test, KeysWithSpacesPlusEqualsAmpersandAndUtf8) {
  const std::vector<std::string> names = {"a b.txt", "c+d=e&f.txt",
                                          "\xC3\xBC/\xC3\xA9 \xE2\x82\xAC.txt", "q?x#y%20z.txt"};
  for (size_t i = 0; i < names.size(); ++i) {
    WriteTextFile(work_ / ("tree/" + names[i]), "content " + std::to_string(i));
  }
  Status status = Upload(R"(, "files": ["tree/**"])");
  ASSERT_TRUE(status.has_value()) << status.error() << "\n" << io_.log;
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(ReadBack(server_.endpoint(), "builds/main/7/" + names[i], scratch_),
              "content " + std::to_string(i))
        << names[i];
  }
}

TEST_F(UploadS3Test, EndpointFromTheEnvironment) {
  WriteTextFile(work_ / "a.txt", "a");
  io_.env_["AWS_ENDPOINT_URL_S3"] = server_.endpoint();
  io_.env_["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1";
  Status status = UploadKind().Execute(
      testing::ExpandedConfig(R"({"to": "s3://bkt/env/", "files": ["a.txt"]})"), io_);
  ASSERT_TRUE(status.has_value()) << status.error();
  EXPECT_EQ(ReadBack(server_.endpoint(), "env/a.txt", scratch_), "a");
}

TEST_F(UploadS3Test, WrongSecretFailsWithSignatureDoesNotMatch) {
  const std::string secret = "not-the-secret-Xy7Q2w9";
  UseS3rverCredentials(io_, home_.path(), secret);
  WriteTextFile(work_ / "dist/app.zip", "zip");
  Status status = Upload(R"(, "files": ["dist/app.zip"])");
  ASSERT_FALSE(status.has_value());
  EXPECT_THAT(status.error(),
              HasSubstr("SignatureDoesNotMatch: The request signature we calculated does not "
                        "match the signature you provided."));
  // The first request is the check that no build was published there (issue 9, item 10).
  EXPECT_THAT(status.error(), HasSubstr("(GET s3://bkt/builds/main/7/manifest.json)"));
  for (const std::string& text : {status.error(), io_.log}) {
    EXPECT_THAT(text, Not(HasSubstr(secret)));
    EXPECT_THAT(text, Not(HasSubstr("Signature=")));
    EXPECT_THAT(text, Not(HasSubstr("Credential=")));
  }
  EXPECT_TRUE(io_.outputs.empty());
}

// --- faults between client and server ---------------------------------------------------

aws::S3ClientOptions ProxyClientOptions(const std::string& endpoint) {
  aws::S3ClientOptions options;
  options.endpoint = endpoint;
  options.part_size = 5 * kMiB;
  options.concurrency = 3;
  options.stall_timeout = std::chrono::seconds(2);
  options.retry.base_delay = std::chrono::milliseconds(50);
  return options;
}

TEST_F(UploadS3Test, FaultProxyDropsRefusesAndStallsYetTheUploadCompletes) {
  FaultProxy proxy(server_.port(), R"([
      {"method": "PUT", "query": "partNumber=1&", "action": "drop"},
      {"method": "PUT", "query": "partNumber=2&", "action": "503", "times": 2},
      {"method": "PUT", "query": "partNumber=3&", "action": "stall"},
      {"method": "PUT", "query": "partNumber=4&", "action": "drop_mid_body"},
      {"method": "POST", "query": "uploadId=", "action": "500"},
      {"method": "PUT", "path": "single", "action": "stall"},
      {"method": "PUT", "path": "single", "action": "429"}
  ])");
  ASSERT_TRUE(proxy.ok());
  std::string large = RandomBytes(22 * kMiB, 3);
  std::string small = RandomBytes(1000, 4);
  auto http = aws::MakeCurlHttpClient();
  aws::s3_testing::StaticCredentials credentials("S3RVER", "S3RVER");
  std::vector<std::string> log;
  std::mutex log_mutex;
  auto options = ProxyClientOptions(proxy.endpoint());
  options.log = [&](std::string_view line) {
    std::lock_guard lock(log_mutex);
    log.emplace_back(line);
  };
  auto client = aws::S3Client::Create(*http, credentials, options);
  ASSERT_TRUE(client.has_value()) << client.error();

  auto multipart = (*client)->MultipartUpload("bkt", "faults/large.bin", large);
  ASSERT_TRUE(multipart.has_value()) << multipart.error();
  EXPECT_EQ(multipart->parts, 5);
  auto single = (*client)->PutObject("bkt", "faults/single.bin", small);
  ASSERT_TRUE(single.has_value()) << single.error();

  EXPECT_EQ(Sha256Hex(ReadBack(server_.endpoint(), "faults/large.bin", scratch_).value_or("")),
            Sha256Hex(large));
  EXPECT_EQ(ReadBack(server_.endpoint(), "faults/single.bin", scratch_), small);

  // Every fault fired, and every request carried a signature and the signed payload hash;
  // every PUT (object or part) an x-amz-checksum-crc32c, and the completion a Content-MD5, of
  // exactly the bytes that arrived.
  std::set<std::string> fired;
  for (const Json& entry : ProxyLog(proxy)) {
    if (!entry["action"].is_null()) fired.insert(entry["action"].get<std::string>());
    EXPECT_TRUE(entry["signed"].get<bool>()) << entry.dump();
    ASSERT_TRUE(entry["content_sha256"].is_string()) << entry.dump();
    const std::string url = entry["url"];
    const bool complete = entry["method"] == "POST" && url.find("uploadId=") != std::string::npos;
    const bool arrived = entry.contains("body_md5") && entry["action"] != "drop_mid_body";
    if (entry["method"] == "PUT") {
      ASSERT_TRUE(entry["content_crc32c"].is_string()) << entry.dump();
      if (arrived) {
        EXPECT_EQ(entry["content_crc32c"], entry["body_crc32c"]) << entry.dump();
      }
    } else if (complete) {
      ASSERT_TRUE(entry["content_md5"].is_string()) << entry.dump();
      if (arrived) {
        EXPECT_EQ(entry["content_md5"], entry["body_md5"]) << entry.dump();
      }
    }
  }
  EXPECT_THAT(fired, ::testing::ContainerEq(std::set<std::string>{"drop", "503", "stall",
                                                                  "drop_mid_body", "500", "429"}));
  std::string all_log;
  for (const auto& line : log) all_log += line + "\n";
  EXPECT_THAT(all_log, HasSubstr("SlowDown"));
  EXPECT_THAT(all_log, HasSubstr("stalled"));
  EXPECT_THAT(all_log, Not(HasSubstr("S3RVER")));
}

TEST_F(UploadS3Test, CompletionWhoseAnswerStallsIsRecovered) {
  FaultProxy proxy(server_.port(), R"([
      {"method": "POST", "query": "uploadId=", "action": "stall"}
  ])");
  ASSERT_TRUE(proxy.ok());
  std::string large = RandomBytes(11 * kMiB, 7);
  auto http = aws::MakeCurlHttpClient();
  aws::s3_testing::StaticCredentials credentials("S3RVER", "S3RVER");
  auto client = aws::S3Client::Create(*http, credentials, ProxyClientOptions(proxy.endpoint()));
  ASSERT_TRUE(client.has_value()) << client.error();
  auto object = (*client)->MultipartUpload("bkt", "lost/large.bin", large);
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_FALSE(object->etag.empty());
  EXPECT_EQ(Sha256Hex(ReadBack(server_.endpoint(), "lost/large.bin", scratch_).value_or("")),
            Sha256Hex(large));
}

TEST_F(UploadS3Test, StepThroughTheFaultProxy) {
  FaultProxy proxy(server_.port(), R"([
      {"method": "PUT", "action": "503", "skip": 1, "times": 3},
      {"method": "PUT", "action": "drop", "skip": 2, "times": 2}
  ])");
  ASSERT_TRUE(proxy.ok());
  for (int i = 0; i < 10; ++i) {
    WriteTextFile(work_ / fmt::format("many/f{}.txt", i), RandomBytes(5000 + i, 10 + i));
  }
  Status status = Upload(R"(, "files": ["many/*.txt"], "concurrency": "4")", proxy.endpoint());
  ASSERT_TRUE(status.has_value()) << status.error() << "\n" << io_.log;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(ReadBack(server_.endpoint(), fmt::format("builds/main/7/f{}.txt", i), scratch_),
              RandomBytes(5000 + i, 10 + i));
  }
  for (const Json& entry : ProxyLog(proxy)) {
    if (entry["method"] == "PUT") {
      EXPECT_TRUE(entry["content_crc32c"].is_string()) << entry.dump();
    }
  }
}

TEST_F(UploadS3Test, FailedPartAbortsTheMultipartUploadAndFailsTheStep) {
  FaultProxy proxy(server_.port(), R"([
      {"method": "PUT", "query": "partNumber=2&", "action": "403", "times": -1}
  ])");
  ASSERT_TRUE(proxy.ok());
  WriteTextFile(work_ / "big.bin", RandomBytes(11 * kMiB, 5));
  Status status = Upload(R"(, "files": ["big.bin"], "part_size": "5MiB")", proxy.endpoint());
  ASSERT_FALSE(status.has_value());
  EXPECT_THAT(status.error(),
              HasSubstr("AccessDenied: Access Denied (PUT s3://bkt/builds/main/7/big.bin part 2 "
                        "of 3)"));
  bool aborted = false;
  bool completed = false;
  for (const Json& entry : ProxyLog(proxy)) {
    std::string url = entry["url"];
    if (entry["method"] == "DELETE" && url.find("uploadId=") != std::string::npos) {
      aborted = true;
      EXPECT_TRUE(entry["signed"].get<bool>());
    }
    if (entry["method"] == "POST" && url.find("uploads") == std::string::npos) completed = true;
  }
  EXPECT_TRUE(aborted) << "no AbortMultipartUpload was sent";
  EXPECT_FALSE(completed);
  EXPECT_THAT(io_.log, HasSubstr("multipart upload of s3://bkt/builds/main/7/big.bin"));
}

TEST_F(UploadS3Test, CancellationStopsPromptlyAndAborts) {
  // Part 2 never gets an answer: without cancellation the step would wait for the stall.
  FaultProxy proxy(server_.port(), R"([
      {"method": "PUT", "query": "partNumber=2&", "action": "stall", "times": -1}
  ])");
  ASSERT_TRUE(proxy.ok());
  WriteTextFile(work_ / "big.bin", RandomBytes(11 * kMiB, 6));
  std::jthread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    io_.cancel_flag = true;
  });
  auto start = std::chrono::steady_clock::now();
  Status status = Upload(R"(, "files": ["big.bin"], "part_size": "5MiB", "concurrency": "1")",
                         proxy.endpoint());
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(status.has_value());
  EXPECT_THAT(status.error(), HasSubstr("cancelled"));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  bool aborted = false;
  for (const Json& entry : ProxyLog(proxy)) {
    if (entry["method"] == "DELETE") aborted = true;
  }
  EXPECT_TRUE(aborted);
}

// --- the runner binary ------------------------------------------------------------------

struct RunnerResult {
  int status = -1;
  std::string output;
};

RunnerResult RunRunner(const std::string& workspace, const std::map<std::string, std::string>& env,
                       const std::string& build_number) {
  std::vector<std::string> argv = {
      RUNNER_BIN,       "run",       workspace + "/pipeline.yml",
      "--workspace",    workspace,   "--branch",
      "main",           "--commit",  "0123456789abcdef0123456789abcdef01234567",
      "--build-number", build_number};
  testing::ChildProcess child(argv, env, workspace + "/../runner.out");
  RunnerResult result;
  result.status = child.Wait(std::chrono::minutes(2)).value_or(-1);
  result.output = child.output();
  return result;
}

// The environment the runner gets to talk to s3rver: its keys and nothing from the machine.
std::map<std::string, std::string> RunnerEnvironment(const std::string& home) {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
          {"HOME", home},
          {"AWS_ACCESS_KEY_ID", "S3RVER"},
          {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
          {"AWS_REGION", "us-east-1"},
          {"AWS_EC2_METADATA_DISABLED", "true"}};
}

// Every file below `dir` concatenated, to search for what must not be there.
std::string AllFiles(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) all += ReadTextFile(entry.path().string());
  }
  return all;
}

TEST_F(UploadS3Test, RunnerUploadsAndAWrongSecretExitsOneWithoutLeakingIt) {
  TempDir top;
  std::string workspace = top / "ws";
  WriteTextFile(workspace + "/dist/app.zip", "zip");
  WriteTextFile(workspace + "/pipeline.yml",
                fmt::format("version: 1\n"
                            "project: orders\n"
                            "steps:\n"
                            "  - id: publish\n"
                            "    upload:\n"
                            "      to: \"s3://bkt/${{{{ build.branch }}}}/${{{{ build.id }}}}/\"\n"
                            "      endpoint: {}\n"
                            "      files: [dist/app.zip]\n",
                            server_.endpoint()));
  std::map<std::string, std::string> env = RunnerEnvironment(home_.path());
  RunnerResult good = RunRunner(workspace, env, "3");
  ASSERT_EQ(good.status, 0) << good.output;
  EXPECT_EQ(ReadBack(server_.endpoint(), "main/orders-main-3/app.zip", scratch_), "zip");
  auto manifest = ReadBack(server_.endpoint(), "main/orders-main-3/manifest.json", scratch_);
  ASSERT_TRUE(manifest.has_value());
  EXPECT_EQ(Json::parse(*manifest)["build"]["number"], "3");

  const std::string secret = "wrong-secret-Zq8Vb3Kx";
  env["AWS_SECRET_ACCESS_KEY"] = secret;
  RunnerResult bad = RunRunner(workspace, env, "4");
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(bad.output, Not(HasSubstr(secret)));
  std::string records = AllFiles(workspace + "/.runner");
  EXPECT_THAT(records, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(records, Not(HasSubstr(secret)));
  EXPECT_THAT(records, Not(HasSubstr("Signature=")));
}

// Without a terminal (Jenkins), the transfer's progress is a line of its own: when first seen,
// then at most every few seconds, and its final state before the step's end.
TEST_F(UploadS3Test, RunnerPrintsRateLimitedProgressLinesWithoutATerminal) {
  TempDir top;
  std::string workspace = top / "ws";
  WriteTextFile(workspace + "/dist/big.bin", RandomBytes(24 * kMiB, 3));
  WriteTextFile(workspace + "/pipeline.yml",
                fmt::format("version: 1\n"
                            "project: orders\n"
                            "steps:\n"
                            "  - id: publish\n"
                            "    upload:\n"
                            "      to: \"s3://bkt/${{{{ build.id }}}}/\"\n"
                            "      endpoint: {}\n"
                            "      part_size: 5MiB\n"
                            "      concurrency: 2\n"
                            "      files: [dist/big.bin]\n",
                            server_.endpoint()));
  std::map<std::string, std::string> env = RunnerEnvironment(home_.path());
  auto started = std::chrono::steady_clock::now();
  RunnerResult run = RunRunner(workspace, env, "5");
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(run.status, 0) << run.output;
  std::vector<std::string> lines;
  std::istringstream output(run.output);
  for (std::string line; std::getline(output, line);) {
    if (line.starts_with("[publish] ") && line.find(" of 24.0 MiB sent") != std::string::npos) {
      lines.push_back(line);
    }
  }
  ASSERT_FALSE(lines.empty()) << run.output;
  EXPECT_THAT(lines.back(), HasSubstr("[publish] 24.0 MiB of 24.0 MiB sent, ")) << run.output;
  EXPECT_THAT(lines.back(), HasSubstr("/s (")) << run.output;
  // Rate-limited: the first, one per interval at most, and the last.
  EXPECT_LE(lines.size(), 2 + static_cast<size_t>(seconds / 5)) << run.output;
  EXPECT_LT(run.output.find(lines.back()), run.output.find("[publish] success")) << run.output;
  EXPECT_THAT(run.output, Not(HasSubstr("S3RVER"))) << run.output;
}

TEST_F(UploadS3Test, ExamplePipelinePublishesToS3WithVarStore) {
  TempDir top;
  std::string workspace = top / "example";
  testing::MakeExampleRepo(workspace);
  std::map<std::string, std::string> env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                                            {"HOME", home_.path()},
                                            {"AWS_ACCESS_KEY_ID", "S3RVER"},
                                            {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
                                            {"AWS_REGION", "us-east-1"},
                                            {"AWS_ENDPOINT_URL_S3", server_.endpoint()},
                                            {"AWS_EC2_METADATA_DISABLED", "true"}};
  testing::RunResult result = testing::RunRunner(
      {"run", "pipelines/example.yml", "--var", "store=s3://bkt/builds"}, workspace, env);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const std::string prefix = "builds/orders/main/orders-main-1/";
  for (const std::string name : {"orders.zip", "params.json", "release.json"}) {
    auto back = ReadBack(server_.endpoint(), prefix + name, scratch_);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(Sha256Hex(*back),
              Sha256Hex(ReadTextFile(workspace + "/pipelines/orders/dist/" + name)))
        << name;
  }
  auto manifest = ReadBack(server_.endpoint(), prefix + "manifest.json", scratch_);
  ASSERT_TRUE(manifest.has_value());
  EXPECT_EQ(Json::parse(*manifest)["build"]["id"], "orders-main-1");
  EXPECT_EQ(Json::parse(*manifest)["objects"].size(), 4u);
}

}  // namespace
}  // namespace runner
