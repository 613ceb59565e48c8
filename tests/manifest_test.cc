// The manifest format: rendering (the text upload has always written), reading it back, and
// the errors a damaged manifest gets.
#include "runner/store/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runner {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Manifest Sample() {
  Manifest manifest;
  manifest.build = {"orders", "main", "0123abc", "157", "orders-main-157", "push", "jenkins"};
  manifest.url = "s3://bkt/builds/orders-main-157/";
  manifest.created = "2026-12-01T09:00:00Z";
  ManifestObject app;
  app.name = "app.zip";
  app.key = "builds/orders-main-157/app.zip";
  app.url = "s3://bkt/builds/orders-main-157/app.zip";
  app.source = "dist/app.zip";
  app.size = 18000000;
  app.sha256 = std::string(64, 'a');
  app.etag = "\"abc-2\"";
  app.parts = 2;
  ManifestObject cfn = app;
  cfn.name = "cfn/stack.yaml";
  cfn.size = 120;
  cfn.parts = 0;
  cfn.version_id = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY";  // a versioned bucket's
  manifest.objects = {app, cfn};
  return manifest;
}

TEST(ManifestTest, RendersTheUploadStepsFormat) {
  Manifest manifest = Sample();
  manifest.objects.resize(1);
  EXPECT_EQ(RenderManifest(manifest),
            R"({
  "version": 1,
  "build": {
    "project": "orders",
    "branch": "main",
    "commit": "0123abc",
    "number": "157",
    "id": "orders-main-157",
    "event": "push",
    "trigger": "jenkins"
  },
  "url": "s3://bkt/builds/orders-main-157/",
  "created": "2026-12-01T09:00:00Z",
  "objects": [
    {
      "name": "app.zip",
      "key": "builds/orders-main-157/app.zip",
      "url": "s3://bkt/builds/orders-main-157/app.zip",
      "source": "dist/app.zip",
      "size": 18000000,
      "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "etag": "\"abc-2\"",
      "parts": 2
    }
  ]
}
)");
}

TEST(ManifestTest, RoundTrips) {
  Manifest manifest = Sample();
  auto parsed = ParseManifest(RenderManifest(manifest), "s3://bkt/m.json");
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  EXPECT_EQ(RenderManifest(*parsed), RenderManifest(manifest));
  EXPECT_EQ(parsed->build.id, "orders-main-157");
  ASSERT_NE(parsed->Find("cfn/stack.yaml"), nullptr);
  EXPECT_EQ(parsed->Find("cfn/stack.yaml")->size, 120u);
  EXPECT_EQ(parsed->Find("app.zip")->parts, 2);
  EXPECT_EQ(parsed->Find("app.zip")->version_id, "");
  EXPECT_EQ(parsed->Find("cfn/stack.yaml")->version_id, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
  EXPECT_EQ(parsed->Find("nope"), nullptr);
}

TEST(ManifestTest, TheBakesAmisRoundTripInItsOrder) {
  Manifest manifest = Sample();
  EXPECT_THAT(RenderManifest(manifest), Not(HasSubstr("amis"))) << "none given, none written";
  manifest.amis = {{"us-east-1", "ami-0east"}, {"eu-west-1", "ami-0west"}};
  std::string text = RenderManifest(manifest);
  EXPECT_THAT(text, HasSubstr(R"("amis": {
    "us-east-1": "ami-0east",
    "eu-west-1": "ami-0west"
  })"));
  auto parsed = ParseManifest(text, "m");
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  EXPECT_EQ(parsed->amis, manifest.amis);
  ASSERT_NE(parsed->AmiIn("eu-west-1"), nullptr);
  EXPECT_EQ(*parsed->AmiIn("eu-west-1"), "ami-0west");
  EXPECT_EQ(parsed->AmiIn("ap-south-1"), nullptr);

  auto with = [&](std::string from, std::string to) {
    std::string changed = text;
    changed.replace(changed.find(from), from.size(), to);
    return ParseManifest(changed, "m");
  };
  EXPECT_THAT(with("\"ami-0west\"", "7").error(),
              HasSubstr("m: amis.eu-west-1: expected a string"));
  EXPECT_THAT(with(R"("amis": {)", R"("amis": [], "x": {)").error(),
              HasSubstr("amis: expected an object of REGION: AMI"));
}

TEST(ManifestTest, BuildContextFields) {
  BuildContext context;
  context.project = "p";
  context.id = "p-main-1";
  context.trigger = "local";
  ManifestBuild build = ManifestBuildOf(context);
  EXPECT_EQ(build.project, "p");
  EXPECT_EQ(build.id, "p-main-1");
  EXPECT_EQ(build.trigger, "local");
}

TEST(ManifestTest, BadInputNamesWhereAndWhat) {
  EXPECT_THAT(ParseManifest("{not json", "file:///s/manifest.json").error(),
              HasSubstr("file:///s/manifest.json: not valid JSON"));
  EXPECT_THAT(ParseManifest("[]", "m").error(), HasSubstr("m: expected a JSON object"));

  std::string text = RenderManifest(Sample());
  auto with = [&](std::string from, std::string to) {
    std::string changed = text;
    size_t at = changed.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    changed.replace(at, from.size(), to);
    return ParseManifest(changed, "m");
  };
  EXPECT_THAT(with("\"version\": 1", "\"version\": 2").error(),
              HasSubstr("version 2 is not supported"));
  EXPECT_THAT(with("\"version\": 1,", "").error(), HasSubstr("version is missing"));
  EXPECT_THAT(with("\"size\": 120", "\"size\": -1").error(),
              HasSubstr("objects[1].size: expected a non-negative integer"));
  EXPECT_THAT(with("\"size\": 120", "\"size\": \"120\"").error(),
              HasSubstr("objects[1].size: expected a non-negative integer, found string"));
  EXPECT_THAT(with("\"id\": \"orders-main-157\"", "\"id\": 157").error(),
              HasSubstr("build.id: expected a string"));
  EXPECT_THAT(with("\"name\": \"cfn/stack.yaml\"", "\"name\": \"app.zip\"").error(),
              HasSubstr("objects[1]: a second object named 'app.zip'"));
  EXPECT_THAT(with("\"sha256\"", "\"sha\"").error(), HasSubstr("objects[0].sha256 is missing"));
}

}  // namespace
}  // namespace runner
