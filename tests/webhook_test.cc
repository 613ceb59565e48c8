#include "runner/serve/webhook.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace runner::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using runner::testing::ReadTextFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Real deliveries from octokit/webhooks, in the shared test data next to the repository.
const fs::path kPayloadDir =
    (fs::path(RUNNER_SOURCE_DIR) / ".." / "shared" / "testdata" / "github-webhooks")
        .lexically_normal();

std::string Payload(const std::string& name) { return ReadTextFile(kPayloadDir / name); }

std::vector<fs::path> PayloadFiles() {
  std::vector<fs::path> files;
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(kPayloadDir, ignored)) {
    std::string name = entry.path().filename().string();
    if ((name.starts_with("push") || name.starts_with("ping")) && name.ends_with("payload.json")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What GitHub sends for a form-encoded hook: payload=URL-ENCODED-JSON, spaces as '+'.
std::string FormEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

constexpr std::string_view kVectorSecret = "It's a Secret to Everybody";
constexpr std::string_view kVectorBody = "Hello, World!";
constexpr std::string_view kVectorSignature =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
constexpr std::string_view kNewBranchSha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

TEST(WebhookSignature, GitHubsPublishedVectorPassesAndAnyChangeFails) {
  EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, kVectorSignature, false),
            SignatureCheck::kOk);
  // An X-Hub-Signature beside it changes nothing.
  EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, kVectorSignature, true),
            SignatureCheck::kOk);
  EXPECT_EQ(CheckSignature("Hello, World?", kVectorSecret, kVectorSignature, false),
            SignatureCheck::kMismatch);
  EXPECT_EQ(CheckSignature("Hello, World! ", kVectorSecret, kVectorSignature, false),
            SignatureCheck::kMismatch);
  std::string flipped(kVectorSignature);
  flipped.back() = '6';
  EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, flipped, false), SignatureCheck::kMismatch);
  EXPECT_EQ(CheckSignature(kVectorBody, "It's a Secret to Everybody!", kVectorSignature, false),
            SignatureCheck::kMismatch);
}

TEST(WebhookSignature, SignsTheRawBytesOfARealPayload) {
  // Computed independently: python3 hmac.new(secret, file bytes, sha256).
  std::string body = Payload("push-with-new-branch.payload.json");
  std::string signature = "sha256=ac28e117b74019bb43a303a24421fe9ba93fa564790b43f3addd70c02c0ed839";
  EXPECT_EQ(CheckSignature(body, "ORDERS_HOOK_SECRET-42", signature, false), SignatureCheck::kOk);
  // The same JSON re-serialized is not the body GitHub signed.
  std::string reformatted = json::parse(body).dump();
  EXPECT_EQ(CheckSignature(reformatted, "ORDERS_HOOK_SECRET-42", signature, false),
            SignatureCheck::kMismatch);
}

TEST(WebhookSignature, MissingSha1OnlyAndMalformedHeadersAreTold) {
  EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, "", false), SignatureCheck::kMissing);
  EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, "", true), SignatureCheck::kSha1Only);
  std::string hex(kVectorSignature.substr(7));
  std::string upper = hex;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  for (std::string header :
       {std::string("sha256=zz"), "sha256=" + hex.substr(1), "sha256=" + hex + "0",
        "sha256=" + upper, "SHA256=" + hex, "sha1=" + hex.substr(0, 40), hex,
        "sha256= " + hex.substr(1), "sha256=" + hex.substr(0, 62) + "zz", std::string("sha256=")}) {
    EXPECT_EQ(CheckSignature(kVectorBody, kVectorSecret, header, false), SignatureCheck::kMalformed)
        << header;
  }
}

TEST(WebhookSignature, AnEmptySecretMatchesNothing) {
  // HMAC-SHA256 with an empty key, computed independently: a missing secret must not make this
  // the accepted signature.
  EXPECT_EQ(CheckSignature(
                kVectorBody, "",
                "sha256=2bbcfa9524f3218c7a34b30e6936f8b1a4516cb097f1a85a1c7d98b5977ec769", false),
            SignatureCheck::kMismatch);
}

TEST(WebhookSignature, EachOutcomeHasItsOwnDescription) {
  std::vector<std::string> texts;
  for (SignatureCheck check :
       {SignatureCheck::kOk, SignatureCheck::kMissing, SignatureCheck::kSha1Only,
        SignatureCheck::kMalformed, SignatureCheck::kMismatch}) {
    texts.emplace_back(DescribeSignatureCheck(check));
  }
  EXPECT_THAT(texts[1], HasSubstr("X-Hub-Signature-256"));
  EXPECT_THAT(texts[2], HasSubstr("SHA-1"));
  EXPECT_THAT(texts[4], HasSubstr("secret"));
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(std::unique(texts.begin(), texts.end()), texts.end());
}

TEST(WebhookPayload, JsonBodyIsThePayload) {
  std::string body = Payload("push-payload.json");
  for (std::string_view type :
       {"application/json", "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"}) {
    auto payload = PayloadJson(type, body);
    ASSERT_TRUE(payload.has_value()) << type << ": " << payload.error();
    EXPECT_EQ(*payload, body);
  }
}

TEST(WebhookPayload, FormBodyGivesTheSameJson) {
  for (const fs::path& file : PayloadFiles()) {
    std::string body = ReadTextFile(file);
    auto payload = PayloadJson("application/x-www-form-urlencoded", "payload=" + FormEncode(body));
    ASSERT_TRUE(payload.has_value()) << file << ": " << payload.error();
    EXPECT_EQ(*payload, body) << file;
  }
  // Another field first, a bare '+' and a literal '%2B'.
  auto payload = PayloadJson("application/x-www-form-urlencoded; charset=utf-8",
                             "other=x%26y&payload=%7B%22a%22%3A%22b+c%2Bd%22%7D&payload=no");
  ASSERT_TRUE(payload.has_value()) << payload.error();
  EXPECT_EQ(*payload, R"({"a":"b c+d"})");
}

TEST(WebhookPayload, LargeFormBodyIsDecodedWhole) {
  json document = json::parse(Payload("push-with-new-branch.payload.json"));
  document["head_commit"]["message"] = std::string(3 << 20, 'x') + " & % + =";
  std::string body = document.dump();
  auto payload = PayloadJson("application/x-www-form-urlencoded", "payload=" + FormEncode(body));
  ASSERT_TRUE(payload.has_value()) << payload.error();
  EXPECT_EQ(*payload, body);
  auto event = ParsePushEvent(*payload);
  ASSERT_TRUE(event.has_value()) << event.error();
  EXPECT_EQ(event->head_message.size(), (3u << 20) + 8);
}

TEST(WebhookPayload, OtherTypesAndBrokenFormsAreErrors) {
  auto plain = PayloadJson("text/plain", "{}");
  ASSERT_FALSE(plain.has_value());
  EXPECT_THAT(plain.error(), HasSubstr("'text/plain'"));
  auto none = PayloadJson("", "{}");
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error(), HasSubstr("neither application/json nor"));
  auto missing = PayloadJson("application/x-www-form-urlencoded", "payloads=1&x=2");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error(), HasSubstr("no 'payload' field"));
  for (std::string_view body : {"payload=%7", "payload=%zz", "payload=%", "pay%2load=1"}) {
    auto broken = PayloadJson("application/x-www-form-urlencoded", body);
    ASSERT_FALSE(broken.has_value()) << body;
    EXPECT_THAT(broken.error(), HasSubstr("not followed by two hex digits")) << body;
  }
  auto where = PayloadJson("application/x-www-form-urlencoded", "a=1&payload=ab%g0");
  ASSERT_FALSE(where.has_value());
  EXPECT_THAT(where.error(), HasSubstr("at byte 14"));
}

TEST(WebhookPush, EveryRealPayloadParses) {
  std::vector<fs::path> files = PayloadFiles();
  // Nine deliveries in the copy this was written against; a missing copy is a failure.
  ASSERT_GE(files.size(), 9u) << "GitHub webhook payloads not found at " << kPayloadDir;
  int pushes = 0;
  for (const fs::path& file : files) {
    std::string body = ReadTextFile(file);
    json document = json::parse(body);
    std::string expected_repository;
    if (document.contains("repository")) {
      expected_repository = document["repository"]["full_name"].get<std::string>();
    }
    auto repository = DeliveryRepository(body);
    ASSERT_TRUE(repository.has_value()) << file << ": " << repository.error();
    EXPECT_EQ(*repository, expected_repository) << file;

    auto event = ParsePushEvent(body);
    if (file.filename().string().starts_with("ping")) {
      ASSERT_FALSE(event.has_value()) << file;
      continue;
    }
    ++pushes;
    ASSERT_TRUE(event.has_value()) << file << ": " << event.error();
    EXPECT_EQ(event->repository, "Codertocat/Hello-World") << file;
    EXPECT_EQ(event->clone_url, "https://github.com/Codertocat/Hello-World.git") << file;
    EXPECT_EQ(event->default_branch, "master") << file;
    EXPECT_EQ(event->pusher, "Codertocat") << file;
    EXPECT_EQ(event->ref, document["ref"].get<std::string>()) << file;
    EXPECT_EQ(event->before, document["before"].get<std::string>()) << file;
    EXPECT_EQ(event->after, document["after"].get<std::string>()) << file;
    EXPECT_EQ(event->created, document["created"].get<bool>()) << file;
    EXPECT_EQ(event->deleted, document["deleted"].get<bool>()) << file;
  }
  EXPECT_EQ(pushes, 6);
}

TEST(WebhookPush, TagDeletion) {
  auto event = ParsePushEvent(Payload("push-payload.json"));
  ASSERT_TRUE(event.has_value()) << event.error();
  EXPECT_EQ(event->ref, "refs/tags/simple-tag");
  EXPECT_EQ(event->name, "simple-tag");
  EXPECT_TRUE(event->tag);
  EXPECT_TRUE(event->deleted);
  EXPECT_FALSE(event->created);
  EXPECT_TRUE(IsZeroCommit(event->after));
  EXPECT_EQ(event->before, kNewBranchSha);
  EXPECT_EQ(event->head_message, "");
}

TEST(WebhookPush, NewBranch) {
  for (std::string name :
       {"push-with-new-branch.payload.json", "push-with-no-username-committer.payload.json"}) {
    auto event = ParsePushEvent(Payload(name));
    ASSERT_TRUE(event.has_value()) << name << ": " << event.error();
    EXPECT_TRUE(event->created) << name;
    EXPECT_FALSE(event->deleted) << name;
    EXPECT_TRUE(IsZeroCommit(event->before)) << name;
    EXPECT_EQ(event->before, std::string(40, '0')) << name;
    EXPECT_EQ(event->after, kNewBranchSha) << name;
    EXPECT_FALSE(event->tag) << name;
    EXPECT_EQ(event->name, "master") << name;
    EXPECT_EQ(event->head_message, "Initial commit") << name;
  }
}

// push-payload.json turned into the push of a new tag (or anything else) by `edit`.
std::string EditedPush(const std::function<void(json&)>& edit) {
  json document = json::parse(Payload("push-payload.json"));
  document["deleted"] = false;
  document["created"] = true;
  document["before"] = std::string(40, '0');
  document["after"] = "a10867b14bb761a232cd80139fbd4c0d33264240";
  document["head_commit"] = {{"id", document["after"]}, {"message", "Release v1\n\nNotes"}};
  edit(document);
  return document.dump();
}

TEST(WebhookPush, TagAndBranchPushes) {
  auto tag = ParsePushEvent(EditedPush([](json& d) { d["ref"] = "refs/tags/v1"; }));
  ASSERT_TRUE(tag.has_value()) << tag.error();
  EXPECT_TRUE(tag->tag);
  EXPECT_EQ(tag->name, "v1");
  EXPECT_EQ(tag->after, "a10867b14bb761a232cd80139fbd4c0d33264240");
  EXPECT_EQ(tag->head_message, "Release v1\n\nNotes");
  EXPECT_FALSE(IsZeroCommit(tag->after));

  auto branch = ParsePushEvent(EditedPush([](json& d) {
    d["ref"] = "refs/heads/feature/<script>";
    d["after"] = "A10867B14BB761A232CD80139FBD4C0D33264240";
    d["repository"].erase("default_branch");
  }));
  ASSERT_TRUE(branch.has_value()) << branch.error();
  EXPECT_FALSE(branch->tag);
  EXPECT_EQ(branch->name, "feature/<script>");
  EXPECT_EQ(branch->after, "a10867b14bb761a232cd80139fbd4c0d33264240");
  EXPECT_EQ(branch->default_branch, "");
}

TEST(WebhookPush, WrongFieldsAreNamed) {
  struct Case {
    std::function<void(json&)> edit;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](json& d) { d["after"] = "abc"; },
       "push payload: 'after' must be a 40-character hex commit id"},
      {[](json& d) { d["before"] = std::string(39, '0') + "g"; },
       "push payload: 'before' must be a 40-character hex commit id"},
      {[](json& d) { d.erase("after"); }, "push payload: 'after' is missing"},
      {[](json& d) { d["ref"] = "refs/pull/1/head"; },
       "push payload: 'ref' must be refs/heads/NAME or refs/tags/NAME, not 'refs/pull/1/head'"},
      {[](json& d) { d["ref"] = "refs/heads/"; },
       "push payload: 'ref' must be refs/heads/NAME or refs/tags/NAME, not 'refs/heads/'"},
      {[](json& d) { d["ref"] = 7; }, "push payload: 'ref' must be a string"},
      {[](json& d) { d.erase("repository"); }, "push payload: 'repository' is missing"},
      {[](json& d) { d["repository"]["clone_url"] = nullptr; },
       "push payload: 'repository.clone_url' is missing"},
      {[](json& d) { d["repository"]["full_name"] = ""; },
       "push payload: 'repository.full_name' is empty"},
      {[](json& d) { d["pusher"]["name"] = 3; }, "push payload: 'pusher.name' must be a string"},
      {[](json& d) { d["pusher"] = "me"; }, "push payload: 'pusher' must be an object"},
      {[](json& d) { d.erase("created"); }, "push payload: 'created' must be true or false"},
      {[](json& d) { d["deleted"] = "no"; }, "push payload: 'deleted' must be true or false"},
      {[](json& d) { d["head_commit"] = 1; }, "push payload: 'head_commit' must be an object"},
      {[](json& d) { d["head_commit"]["message"] = 1; },
       "push payload: 'head_commit.message' must be a string"},
  };
  for (const Case& c : cases) {
    auto event = ParsePushEvent(EditedPush(c.edit));
    ASSERT_FALSE(event.has_value()) << c.message;
    EXPECT_EQ(event.error(), c.message);
  }
}

TEST(WebhookPush, NotJsonOrNotAnObjectIsAnError) {
  std::string body = Payload("push-with-new-branch.payload.json");
  for (std::string text : {body.substr(0, body.size() / 2), std::string("[1]"), std::string(""),
                           std::string("\"x\""), body + "x"}) {
    auto event = ParsePushEvent(text);
    ASSERT_FALSE(event.has_value());
    EXPECT_THAT(event.error(), StartsWith("push payload: "));
    EXPECT_FALSE(DeliveryRepository(text).has_value());
  }
  auto truncated = DeliveryRepository(body.substr(0, 100));
  ASSERT_FALSE(truncated.has_value());
  EXPECT_THAT(truncated.error(), HasSubstr("delivery: not valid JSON: parse error at line"));
  auto bad_utf8 = DeliveryRepository("{\"repository\":{\"full_name\":\"a/\xC3\x28\"}}");
  ASSERT_FALSE(bad_utf8.has_value());
  EXPECT_THAT(bad_utf8.error(), HasSubstr("not valid JSON"));
}

TEST(WebhookRepository, FindsTheNameWhereverTheMembersAre) {
  auto name = DeliveryRepository(
      R"({"zen":"x","sender":{"full_name":"not/this"},"repository":{"owner":{"full_name":"no/pe"},)"
      R"("id":1,"full_name":"acme/orders","topics":[{"full_name":"x/y"}]},"x":[[{"repository":1}]]})");
  ASSERT_TRUE(name.has_value()) << name.error();
  EXPECT_EQ(*name, "acme/orders");
  auto none = DeliveryRepository(R"({"zen":"x","repository":null})");
  ASSERT_TRUE(none.has_value()) << none.error();
  EXPECT_EQ(*none, "");
}

TEST(WebhookRepository, AmbiguousOrWrongRepositoryIsRefused) {
  // Two names: the secret chosen from one must not authenticate a build of the other.
  auto twice = DeliveryRepository(
      R"({"repository":{"full_name":"acme/public"},"repository":{"full_name":"acme/secret"}})");
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error(), "delivery: more than one 'repository' member");
  auto two_names =
      DeliveryRepository(R"({"repository":{"full_name":"acme/public","full_name":"acme/x"}})");
  ASSERT_FALSE(two_names.has_value());
  EXPECT_EQ(two_names.error(), "delivery: more than one 'repository.full_name' member");
  // The same check guards the push parser, which nlohmann would otherwise let the last one win.
  auto push = ParsePushEvent(EditedPush([](json& d) {
                               d["ref"] = "refs/heads/main";
                             }).insert(1, R"("repository":{"full_name":"acme/public"},)"));
  ASSERT_FALSE(push.has_value());
  EXPECT_EQ(push.error(), "push payload: more than one 'repository' member");

  for (std::string text :
       {R"({"repository":"acme/orders"})", R"({"repository":[]})", R"({"repository":5})",
        R"({"repository":true})", R"({"repository":{"full_name":null}})",
        R"({"repository":{"full_name":["a/b"]}})", R"({"repository":{"full_name":{"a":"b"}}})",
        R"({"repository":{"full_name":5}})"}) {
    auto wrong = DeliveryRepository(text);
    ASSERT_FALSE(wrong.has_value()) << text;
    EXPECT_THAT(wrong.error(), HasSubstr("must be")) << text;
  }
}

TEST(WebhookRepository, DeepNestingIsAnErrorNotACrash) {
  // 25 MiB, the most GitHub sends: nesting this deep would overflow a recursive parser's stack
  // or exhaust memory in a DOM.
  const std::size_t size = 25u << 20;
  std::string arrays(size, '[');
  std::string objects = R"({"repository":)";
  while (objects.size() + 6 < size) objects += R"({"a":)";
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : {Case{arrays, "the payload must be a JSON object"},
                        Case{objects, "JSON nested deeper than 64"},
                        Case{R"({"x":)" + arrays.substr(5), "JSON nested deeper than 64"}}) {
    auto repository = DeliveryRepository(c.text);
    ASSERT_FALSE(repository.has_value());
    EXPECT_EQ(repository.error(), "delivery: " + c.message);
    auto event = ParsePushEvent(c.text);
    ASSERT_FALSE(event.has_value());
    EXPECT_EQ(event.error(), "push payload: " + c.message);
  }
  // Moderate nesting inside a real payload is fine.
  std::string deep = std::string(30, '[') + std::string(30, ']');
  auto event = ParsePushEvent(EditedPush([&](json& d) { d["extra"] = json::parse(deep); }));
  ASSERT_TRUE(event.has_value()) << event.error();
}

TEST(WebhookPush, ZeroCommits) {
  EXPECT_TRUE(IsZeroCommit(std::string(40, '0')));
  EXPECT_FALSE(IsZeroCommit(kNewBranchSha));
  EXPECT_FALSE(IsZeroCommit(""));
  EXPECT_FALSE(IsZeroCommit("000000000000000000000000000000000000000a"));
}

}  // namespace
}  // namespace runner::serve
