// The artifact store: a local directory (atomic puts, put-if-absent, listing) and S3 through a
// scripted HttpClient (the requests sent, 412 and 404 read as "exists" and "absent") and against
// s3rver (listing page after page).
#include "runner/store/artifact_store.h"

#include <dirent.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/sha256.h"
#include "tests/s3_fakes.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using aws::HttpRequest;
using aws::HttpResponse;
using aws::s3_testing::FakeHttpClient;
using aws::s3_testing::StaticCredentials;
using ::testing::HasSubstr;
using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return names;
  while (struct dirent* entry = ::readdir(handle)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

// The names List gives, or none (and a failure) when it fails.
std::vector<std::string> Names(ArtifactStore& store, const std::string& prefix) {
  auto names = store.List(prefix);
  if (!names) {
    ADD_FAILURE() << "List(\"" << prefix << "\"): " << names.error();
    return {};
  }
  return *names;
}

std::unique_ptr<ArtifactStore> OpenLocal(const TempDir& dir, std::string url = "store") {
  ArtifactStoreOptions options;
  options.workspace = dir.path();
  auto store = OpenArtifactStore(url, std::move(options));
  EXPECT_TRUE(store.has_value()) << store.error();
  return std::move(*store);
}

TEST(LocalStoreTest, UrlsForRelativeAndFileUrls) {
  TempDir dir;
  EXPECT_EQ(OpenLocal(dir, "store/")->url(), "file://" + dir.path() + "/store/");
  EXPECT_EQ(OpenLocal(dir, "file://" + dir.path() + "/b")->url(), "file://" + dir.path() + "/b/");
  EXPECT_EQ(OpenLocal(dir)->UrlOf("x/y.zip"), "file://" + dir.path() + "/store/x/y.zip");
  ArtifactStoreOptions options;
  EXPECT_THAT(OpenArtifactStore("ftp://host/x", options).error(), HasSubstr("unknown scheme"));
  EXPECT_THAT(OpenArtifactStore("file://", options).error(), HasSubstr("names no directory"));
}

TEST(LocalStoreTest, PutFileIsWholeAndLeavesNoTemporaryFile) {
  TempDir dir;
  WriteTextFile(dir / "dist/app.zip", "zip bytes");
  auto store = OpenLocal(dir);
  auto object = store->PutFile("apps/app.zip", dir / "dist/app.zip", "application/zip");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->name, "apps/app.zip");
  EXPECT_EQ(object->key, "apps/app.zip");
  EXPECT_EQ(object->url, "file://" + dir.path() + "/store/apps/app.zip");
  EXPECT_EQ(object->size, 9u);
  EXPECT_EQ(object->sha256, Sha256Hex("zip bytes"));
  EXPECT_EQ(object->etag, "\"" + aws::Md5Hex("zip bytes") + "\"");
  EXPECT_EQ(ReadTextFile(dir / "store/apps/app.zip"), "zip bytes");
  EXPECT_EQ(Entries(dir / "store/apps"), std::vector<std::string>{"app.zip"});

  auto info = store->Stat("apps/app.zip");
  ASSERT_TRUE(info.has_value()) << info.error();
  ASSERT_TRUE(info->has_value());
  EXPECT_EQ((*info)->size, 9u);
  EXPECT_EQ((*info)->etag, object->etag);
  EXPECT_EQ(store->Stat("apps/none.zip").value(), std::nullopt);
  EXPECT_EQ(store->Get("apps/app.zip").value(), "zip bytes");
  EXPECT_THAT(store->Get("apps/none.zip").error(), HasSubstr("apps/none.zip"));
  ASSERT_TRUE(store->GetToFile("apps/app.zip", dir / "out/copy.zip").has_value());
  EXPECT_EQ(ReadTextFile(dir / "out/copy.zip"), "zip bytes");
}

TEST(LocalStoreTest, AFailedPutLeavesNothing) {
  TempDir dir;
  auto store = OpenLocal(dir);
  EXPECT_THAT(store->PutFile("a.zip", dir / "missing.zip", "").error(), HasSubstr("cannot open"));
  EXPECT_TRUE(Entries(dir / "store").empty());
  EXPECT_THAT(store->Put("../escape", "x", "").error(), HasSubstr("not a name in a store"));
  EXPECT_THAT(store->Put("/abs", "x", "").error(), HasSubstr("not a name in a store"));
}

TEST(LocalStoreTest, PutReplacesPutIfAbsentRefusesTheSecond) {
  TempDir dir;
  auto store = OpenLocal(dir);
  ASSERT_TRUE(store->Put("notes.txt", "one", "text/plain").has_value());
  ASSERT_TRUE(store->Put("notes.txt", "two", "text/plain").has_value());
  EXPECT_EQ(ReadTextFile(dir / "store/notes.txt"), "two");

  auto first = store->PutIfAbsent("b1/manifest.json", "{\"first\":1}", "application/json");
  ASSERT_TRUE(first.has_value()) << first.error();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->sha256, Sha256Hex("{\"first\":1}"));
  auto second = store->PutIfAbsent("b1/manifest.json", "{\"second\":2}", "application/json");
  ASSERT_TRUE(second.has_value()) << second.error();
  EXPECT_FALSE(second->has_value());
  EXPECT_EQ(ReadTextFile(dir / "store/b1/manifest.json"), "{\"first\":1}");
  EXPECT_EQ(Entries(dir / "store/b1"), std::vector<std::string>{"manifest.json"});
}

TEST(LocalStoreTest, FindGivesTheBytesOrNothingAndRefusesWhatGetRefuses) {
  TempDir dir;
  auto store = OpenLocal(dir);
  ASSERT_TRUE(store->Put("b1/report.json", "{}\n", "application/json").has_value());
  auto found = store->Find("b1/report.json");
  ASSERT_TRUE(found.has_value()) << found.error();
  EXPECT_EQ(found->value_or("none"), "{}\n");
  auto missing = store->Find("b1/cancel");
  ASSERT_TRUE(missing.has_value()) << missing.error();
  EXPECT_EQ(*missing, std::nullopt);
  EXPECT_EQ(store->Find("b2/x").value(), std::nullopt) << "a directory not made yet";
  auto directory = store->Find("b1");
  ASSERT_FALSE(directory.has_value()) << "a directory is no object";
  EXPECT_THAT(directory.error(), HasSubstr("cannot read file://"));
  EXPECT_FALSE(store->Find("../outside").has_value());
}

// Names built from push data that would leave the store or mean something else on S3.
const std::vector<std::string> kBadNames = {
    "../../..",       "a/../../b", "/etc/passwd", "//x",  "a//b", std::string("x\0y", 3),
    "a/./b",          ".",         "..",          "dir/", "",     "main/../../../etc/cron.d/x",
    "./manifest.json"};

TEST(LocalStoreTest, NamesThatWouldLeaveTheStoreAreRefused) {
  TempDir dir;
  auto store = OpenLocal(dir, "store/builds");
  WriteTextFile(dir / "outside.txt", "kept");
  for (const std::string& name : kBadNames) {
    std::string shown = name.find('\0') == std::string::npos ? name : "x\\0y";
    EXPECT_THAT(store->Put(name, "x", "").error(), HasSubstr("'" + shown + "' is not a name"));
    EXPECT_FALSE(store->PutIfAbsent(name, "x", "").has_value()) << shown;
    EXPECT_FALSE(store->Get(name).has_value()) << shown;
    EXPECT_FALSE(store->Stat(name).has_value()) << shown;
    EXPECT_FALSE(store->PutFile(name, dir / "outside.txt", "").has_value()) << shown;
  }
  EXPECT_EQ(ReadTextFile(dir / "outside.txt"), "kept");
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"outside.txt"});
}

TEST(LocalStoreTest, ANameThroughASymlinkOutTheStoreIsRefused) {
  TempDir dir;
  TempDir outside;
  auto store = OpenLocal(dir);
  ASSERT_TRUE(store->Put("main/b1/app.zip", "zip", "").has_value());
  WriteTextFile(outside / "f.txt", "kept");
  std::filesystem::create_directory_symlink(outside.path(), dir / "store/evil");
  std::filesystem::create_symlink(outside / "f.txt", dir / "store/main/f.txt");
  for (const std::string name : {"evil/app.zip", "evil/sub/manifest.json", "main/f.txt"}) {
    EXPECT_THAT(store->Put(name, "x", "").error(), HasSubstr("outside the store")) << name;
    EXPECT_FALSE(store->PutIfAbsent(name, "x", "").has_value()) << name;
  }
  EXPECT_EQ(Entries(outside.path()), std::vector<std::string>{"f.txt"});
  EXPECT_EQ(ReadTextFile(outside / "f.txt"), "kept");
  // A link that stays inside the store is followed.
  std::filesystem::create_directory_symlink("main", dir / "store/latest");
  EXPECT_EQ(*store->Get("latest/b1/app.zip"), "zip");
}

TEST(LocalStoreTest, ListWalksTheDirectoryOfThePrefix) {
  TempDir dir;
  auto store = OpenLocal(dir);
  EXPECT_EQ(Names(*store, ""), std::vector<std::string>{});  // no root yet
  for (const std::string name : {"stg/20261201T130501Z-b2.json", "stg/20261130T090000Z-b1.json",
                                 "stg/paused.json", "stg-old/x.json", "prd/a/b/c.json", "Z.txt"}) {
    ASSERT_TRUE(store->Put(name, "{}", "application/json").has_value()) << name;
  }
  // Being written, linked, a directory of its own: none is a stored object.
  WriteTextFile(dir / "store/stg/.20261202T000000Z-b3.json.tmp.Ab12Cd", "partial");
  std::filesystem::create_symlink(dir / "store/Z.txt", dir / "store/stg/link.json");
  std::filesystem::create_directory_symlink(dir / "store/prd", dir / "store/stg/prd-link");
  std::filesystem::create_directories(dir / "store/stg/empty");

  EXPECT_EQ(Names(*store, "stg/"),
            (std::vector<std::string>{"stg/20261130T090000Z-b1.json",
                                      "stg/20261201T130501Z-b2.json", "stg/paused.json"}));
  EXPECT_EQ(Names(*store, "stg/2026120"), std::vector<std::string>{"stg/20261201T130501Z-b2.json"});
  EXPECT_EQ(Names(*store, "stg"),
            (std::vector<std::string>{"stg-old/x.json", "stg/20261130T090000Z-b1.json",
                                      "stg/20261201T130501Z-b2.json", "stg/paused.json"}));
  EXPECT_EQ(Names(*store, ""),
            (std::vector<std::string>{"Z.txt", "prd/a/b/c.json", "stg-old/x.json",
                                      "stg/20261130T090000Z-b1.json",
                                      "stg/20261201T130501Z-b2.json", "stg/paused.json"}));
  EXPECT_EQ(Names(*store, "prd/a/"), std::vector<std::string>{"prd/a/b/c.json"});
  EXPECT_EQ(Names(*store, "none/"), std::vector<std::string>{});
  EXPECT_EQ(Names(*store, "stg/paused.json/"), std::vector<std::string>{});
}

TEST(LocalStoreTest, ListRefusesPrefixesThatLeaveTheStore) {
  TempDir dir;
  TempDir outside;
  auto store = OpenLocal(dir);
  WriteTextFile(outside / "secret.json", "{}");
  ASSERT_TRUE(store->Put("stg/a.json", "{}", "").has_value());
  std::filesystem::create_directory_symlink(outside.path(), dir / "store/evil");
  for (const std::string prefix : {"../", "..", "/", "/stg/", "stg//", "a/../stg/", "./"}) {
    EXPECT_THAT(store->List(prefix).error(), HasSubstr("cannot start names in a store")) << prefix;
  }
  EXPECT_THAT(store->List("evil/").error(), HasSubstr("outside the store"));
  EXPECT_EQ(Names(*store, ""), std::vector<std::string>{"stg/a.json"});
}

TEST(StoreUrlTest, AStorePathThatClimbsIsRefusedNotNormalised) {
  TempDir dir;
  ArtifactStoreOptions options;
  options.workspace = dir.path();
  for (const std::string& url :
       std::vector<std::string>{"store/../../../etc", ".runner/store/main/../../../..",
                                "file://" + dir.path() + "/a/../b", "file:///a/./b", "store//x",
                                "s3://bkt/builds/../../x/", "s3://bkt/./x", "s3://bkt//x/",
                                "s3://bkt/a//b", std::string("s3://bkt/a\0b/", 14)}) {
    auto store = OpenArtifactStore(url, options);
    ASSERT_FALSE(store.has_value()) << url;
    EXPECT_THAT(store.error(), HasSubstr("cannot be used")) << url;
  }
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{});
}

// --- S3 through the scripted client -----------------------------------------------------

struct S3Fixture {
  explicit S3Fixture(FakeHttpClient::Handler handler) : http(std::move(handler)) {}

  std::unique_ptr<ArtifactStore> Open(std::string url = "s3://bkt/builds/b1") {
    ArtifactStoreOptions options;
    options.region = "eu-west-1";
    options.endpoint = "http://127.0.0.1:9000";
    options.http = &http;
    options.credentials = &credentials;
    options.sleep = [](std::chrono::milliseconds) {};
    auto store = OpenArtifactStore(url, std::move(options));
    EXPECT_TRUE(store.has_value()) << store.error();
    return std::move(*store);
  }

  FakeHttpClient http;
  StaticCredentials credentials;
};

HttpResponse S3Error(int status, std::string_view code) {
  return HttpResponse{status, {}, fmt::format("<Error><Code>{}</Code></Error>", code)};
}

TEST(S3StoreTest, PutsUnderThePrefix) {
  S3Fixture f([](const HttpRequest&, int) -> Result<HttpResponse> {
    return HttpResponse{200, {{"etag", "\"e1\""}}, ""};
  });
  auto store = f.Open();
  EXPECT_EQ(store->url(), "s3://bkt/builds/b1/");
  EXPECT_THAT(store->Describe(), HasSubstr("region eu-west-1"));
  auto object = store->Put("cfn/stack.yaml", "Resources: {}", "application/yaml");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->key, "builds/b1/cfn/stack.yaml");
  EXPECT_EQ(object->url, "s3://bkt/builds/b1/cfn/stack.yaml");
  EXPECT_EQ(object->etag, "\"e1\"");
  auto requests = f.http.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].request.url, "http://127.0.0.1:9000/bkt/builds/b1/cfn/stack.yaml");
  EXPECT_FALSE(requests[0].HasHeader("if-none-match"));
}

TEST(S3StoreTest, PutIfAbsentSendsIfNoneMatchAnd412MeansItExists) {
  S3Fixture f([](const HttpRequest&, int index) -> Result<HttpResponse> {
    if (index == 0) return HttpResponse{200, {{"etag", "\"m\""}}, ""};
    return S3Error(412, "PreconditionFailed");
  });
  auto store = f.Open();
  auto first = store->PutIfAbsent("manifest.json", "{}", "application/json");
  ASSERT_TRUE(first.has_value()) << first.error();
  EXPECT_TRUE(first->has_value());
  auto second = store->PutIfAbsent("manifest.json", "{}", "application/json");
  ASSERT_TRUE(second.has_value()) << second.error();
  EXPECT_FALSE(second->has_value());
  auto requests = f.http.requests();
  ASSERT_EQ(requests.size(), 2u);  // a 412 is an answer, not retried
  for (const auto& request : requests) {
    EXPECT_EQ(request.Header("if-none-match"), "*");
    EXPECT_THAT(request.Header("authorization"), HasSubstr("if-none-match"));
  }
}

TEST(S3StoreTest, BadNamesAreRefusedBeforeAnyRequest) {
  S3Fixture f([](const HttpRequest&, int) -> Result<HttpResponse> {
    return HttpResponse{200, {{"etag", "\"e\""}}, ""};
  });
  auto store = f.Open();
  TempDir dir;
  WriteTextFile(dir / "a.txt", "a");
  for (const std::string& name : kBadNames) {
    EXPECT_THAT(store->Put(name, "x", "").error(), HasSubstr("is not a name in a store"));
    EXPECT_FALSE(store->PutIfAbsent(name, "x", "").has_value());
    EXPECT_FALSE(store->PutFile(name, dir / "a.txt", "").has_value());
    EXPECT_FALSE(store->Get(name).has_value());
    EXPECT_FALSE(store->Stat(name).has_value());
  }
  EXPECT_TRUE(f.http.requests().empty());
  EXPECT_TRUE(store->Put("main/b1/app.zip", "x", "").has_value());
}

TEST(S3StoreTest, AFailedHeadIsExplainedByAGet) {
  S3Fixture f([](const HttpRequest& request, int) -> Result<HttpResponse> {
    if (request.method == "HEAD") return HttpResponse{403, {}, ""};
    return S3Error(403, "SignatureDoesNotMatch");
  });
  auto stat = f.Open()->Stat("manifest.json");
  ASSERT_FALSE(stat.has_value());
  EXPECT_THAT(stat.error(), HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(stat.error(), HasSubstr("GET s3://bkt/builds/b1/manifest.json"));
}

TEST(S3StoreTest, GetAndStat) {
  S3Fixture f([](const HttpRequest& request, int) -> Result<HttpResponse> {
    if (request.url.ends_with("/missing")) {
      return request.method == "HEAD" ? HttpResponse{404, {}, ""} : S3Error(404, "NoSuchKey");
    }
    if (request.method == "HEAD") {
      return HttpResponse{200, {{"content-length", "5"}, {"etag", "\"h\""}}, ""};
    }
    return HttpResponse{200, {}, "hello"};
  });
  auto store = f.Open();
  EXPECT_EQ(store->Get("app.zip").value(), "hello");
  EXPECT_THAT(store->Get("missing").error(),
              HasSubstr("NoSuchKey (GET s3://bkt/builds/b1/missing)"));
  auto info = store->Stat("app.zip");
  ASSERT_TRUE(info.has_value()) << info.error();
  ASSERT_TRUE(info->has_value());
  EXPECT_EQ((*info)->size, 5u);
  EXPECT_EQ((*info)->etag, "\"h\"");
  EXPECT_EQ(store->Stat("missing").value(), std::nullopt);
}

TEST(S3StoreTest, FindIsOneGetAnd404MeansAbsent) {
  S3Fixture f([](const HttpRequest& request, int) -> Result<HttpResponse> {
    if (request.url.ends_with("/missing")) return S3Error(404, "NoSuchKey");
    if (request.url.ends_with("/denied")) return S3Error(403, "AccessDenied");
    return HttpResponse{200, {}, "hello"};
  });
  auto store = f.Open();
  EXPECT_EQ(store->Find("app.zip").value(), std::optional<std::string>("hello"));
  EXPECT_EQ(store->Find("missing").value(), std::nullopt);
  auto denied = store->Find("denied");
  ASSERT_FALSE(denied.has_value());
  EXPECT_THAT(denied.error(), HasSubstr("AccessDenied (GET s3://bkt/builds/b1/denied)"));
  auto requests = f.http.requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].request.method, "GET");
  EXPECT_EQ(requests[1].request.method, "GET");
  EXPECT_EQ(requests[1].request.url, "http://127.0.0.1:9000/bkt/builds/b1/missing");
}

TEST(S3StoreTest, ListNamesBelowThePrefix) {
  S3Fixture f([](const HttpRequest&, int) -> Result<HttpResponse> {
    return HttpResponse{200,
                        {},
                        "<ListBucketResult><Contents><Key>builds/b1/stg/z.json</Key></Contents>"
                        "<Contents><Key>builds/b1/stg/</Key></Contents>"
                        "<Contents><Key>builds/b1/stg//x.json</Key></Contents>"
                        "<Contents><Key>builds/b1/stg/a.json</Key></Contents>"
                        "<IsTruncated>false</IsTruncated></ListBucketResult>"};
  });
  auto store = f.Open();
  // The console's folder marker and a key no name reaches are left out; the rest sorted.
  EXPECT_EQ(Names(*store, "stg/"), (std::vector<std::string>{"stg/a.json", "stg/z.json"}));
  auto requests = f.http.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].request.url,
            "http://127.0.0.1:9000/bkt?list-type=2&max-keys=1000&prefix=builds%2Fb1%2Fstg%2F");
  EXPECT_THAT(store->List("../").error(), HasSubstr("cannot start names in a store"));
  EXPECT_EQ(f.http.requests().size(), 1u);
}

TEST(S3StoreTest, AListingOutsideThePrefixIsAnError) {
  S3Fixture f([](const HttpRequest&, int) -> Result<HttpResponse> {
    return HttpResponse{200,
                        {},
                        "<ListBucketResult><Contents><Key>other/x.json</Key></Contents>"
                        "<IsTruncated>false</IsTruncated></ListBucketResult>"};
  });
  EXPECT_EQ(f.Open()->List("stg/").error(),
            "ListObjectsV2 s3://bkt/builds/b1/stg/: the answer holds 'other/x.json', which does "
            "not start with the prefix");
}

// --- S3 on s3rver -------------------------------------------------------------------------

class S3ServerListTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  ArtifactStoreOptions Options() {
    ArtifactStoreOptions options;
    options.env = {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};
    options.region = "us-east-1";
    options.endpoint = server_.endpoint();
    return options;
  }

  testing::S3rver server_;
};

TEST_F(S3ServerListTest, PagesOfTwoAndTheStoresListing) {
  auto store = OpenArtifactStore("s3://bkt/ledger", Options());
  ASSERT_TRUE(store.has_value()) << store.error();
  // No '&' or '<': s3rver escapes them twice (real S3 once, as the scripted tests have it).
  const std::vector<std::string> names = {"stg/a b.json", "stg/c+d=e,f.json", "stg/g.json",
                                          "stg/h.json", "stg/\xc3\xbc.json"};
  for (const std::string& name : names) {
    ASSERT_TRUE((*store)->Put(name, "{}", "application/json").has_value()) << name;
  }
  ASSERT_TRUE((*store)->Put("stg-old/x.json", "{}", "").has_value());
  ASSERT_TRUE((*store)->Put("prd/y.json", "{}", "").has_value());
  EXPECT_EQ(Names(**store, "stg/"), names);
  EXPECT_EQ(Names(**store, "").size(), names.size() + 2);

  StaticCredentials credentials("S3RVER", "S3RVER");
  auto http = aws::MakeCurlHttpClient();
  aws::S3ClientOptions options;
  options.endpoint = server_.endpoint();
  auto client = aws::S3Client::Create(*http, credentials, options);
  ASSERT_TRUE(client.has_value()) << client.error();
  auto keys = (*client)->ListObjects("bkt", "ledger/stg/", 2);  // three pages
  ASSERT_TRUE(keys.has_value()) << keys.error();
  std::vector<std::string> expected;
  for (const std::string& name : names) expected.push_back("ledger/" + name);
  EXPECT_EQ(*keys, expected);
}

TEST(S3StoreTest, BadUrlsAndOptionsAreErrors) {
  ArtifactStoreOptions options;
  EXPECT_THAT(OpenArtifactStore("s3:///x", options).error(), HasSubstr("names no bucket"));
  FakeHttpClient http;
  StaticCredentials credentials;
  options.http = &http;
  options.credentials = &credentials;
  options.sse = "rot13";
  EXPECT_THAT(OpenArtifactStore("s3://bkt/x", options).error(), HasSubstr("AES256"));
}

}  // namespace
}  // namespace runner
