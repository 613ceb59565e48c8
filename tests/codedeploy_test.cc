#include "steps/codedeploy.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "steps/zip.h"
#include "tests/config_from_yaml.h"
#include "tests/fake_step_io.h"
#include "tests/test_util.h"

namespace runner {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteTextFile;

const char kGoodAppSpec[] = R"(version: 0.0
os: linux
files:
  - source: bin
    destination: /opt/orders/bin
  - source: /
    destination: /opt/orders/revision
hooks:
  BeforeInstall:
    - location: scripts/before_install.sh
      timeout: 120
      runas: root
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 60
    - location: /scripts/warm.sh
      timeout: 60
  ValidateService:
    - location: scripts/validate.sh
)";

Revision MakeRevision(const std::string& appspec) {
  Revision revision;
  revision.has_appspec = true;
  revision.appspec = appspec;
  revision.files["appspec.yml"] = {false, false, "version: 0.0"};
  revision.files["bin"] = {true, true, ""};
  revision.files["bin/orders"] = {false, true,
                                  "\x7f"
                                  "ELF"};
  revision.files["scripts"] = {true, true, ""};
  for (const char* name : {"before_install.sh", "start.sh", "warm.sh", "validate.sh"}) {
    revision.files[std::string("scripts/") + name] = {false, true, "#!/bin/bash\nset -e\n"};
  }
  return revision;
}

// Each diagnostic as "LINE:COL: error|warning: MESSAGE".
std::vector<std::string> Check(const Revision& revision) {
  Diagnostics diags("appspec.yml", revision.appspec);
  ValidateAppSpec(revision, diags);
  std::vector<std::string> out;
  for (const Diagnostic& d : diags.diagnostics()) {
    out.push_back(std::to_string(d.where.line) + ":" + std::to_string(d.where.column) + ": " +
                  (d.severity == Diagnostic::Severity::kError ? "error: " : "warning: ") +
                  d.message);
  }
  return out;
}

std::vector<std::string> Check(const std::string& appspec) { return Check(MakeRevision(appspec)); }

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(CodeDeployTest, AValidRevisionHasNoFindings) {
  EXPECT_EQ(Check(kGoodAppSpec), std::vector<std::string>{});
}

TEST(CodeDeployTest, MissingAppSpec) {
  Revision revision = MakeRevision("");
  revision.has_appspec = false;
  revision.files.erase("appspec.yml");
  revision.files["deploy/appspec.yml"] = {};
  EXPECT_EQ(Check(revision),
            std::vector<std::string>{"0:0: error: the archive has no appspec.yml at its root "
                                     "(found 'deploy/appspec.yml': map it to dest appspec.yml)"});
}

TEST(CodeDeployTest, InvalidYaml) {
  EXPECT_EQ(Check("version: 0.0\nos: linux\n  bad: indent\n"),
            std::vector<std::string>{"3:6: error: invalid YAML: unexpected ':': check the "
                                     "indentation, or quote a value that contains ': '"});
  // yaml-cpp 0.7 would loop forever on a comma that starts a document: refused before parsing.
  std::vector<std::string> comma = Check(",version: 0.0\n");
  ASSERT_EQ(comma.size(), 1u);
  EXPECT_EQ(comma[0].substr(0, 10), "1:1: error");
}

TEST(CodeDeployTest, VersionAndOs) {
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "version: 0.0", "version: 1.0")),
            std::vector<std::string>{"1:10: error: 'version' must be 0.0, got '1.0'"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "os: linux", "os: linx")),
            std::vector<std::string>{
                "2:5: error: 'os' must be linux or windows, got 'linx' (did you mean 'linux'?)"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "version: 0.0\n", "")),
            std::vector<std::string>{"1:1: error: missing 'version: 0.0'"});
}

TEST(CodeDeployTest, UnknownKeys) {
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "hooks:", "hoks:")),
            std::vector<std::string>{
                "8:1: error: unknown key 'hoks' in appspec.yml (did you mean 'hooks'?)"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "      runas: root", "      run_as: root")),
            std::vector<std::string>{"12:7: error: unknown key 'run_as' in hook 'BeforeInstall' "
                                     "(did you mean 'runas'?)"});
}

TEST(CodeDeployTest, FilesSourceMustBeInTheArchive) {
  EXPECT_EQ(
      Check(Replace(kGoodAppSpec, "source: bin", "source: bin/ordres")),
      std::vector<std::string>{"4:13: error: files source 'bin/ordres' is not in the archive"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "destination: /opt/orders/bin", "destination: opt")),
            std::vector<std::string>{"5:18: error: files destination 'opt' must be an absolute "
                                     "path"});
}

TEST(CodeDeployTest, HookNamesFromTheLifecycle) {
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "  BeforeInstall:", "  Instal:")),
            std::vector<std::string>{
                "9:3: error: hook 'Instal' is not a lifecycle event (did you mean 'Install'?)"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "  BeforeInstall:", "  Install:")),
            std::vector<std::string>{"9:3: error: hook 'Install' is reserved for the CodeDeploy "
                                     "agent and cannot run scripts (use BeforeInstall or "
                                     "AfterInstall)"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "  BeforeInstall:", "  DownloadBundle:")).size(), 1u);
  for (const std::string& event : LifecycleEvents()) {
    // ApplicationStart and ValidateService are already in kGoodAppSpec: a second one is a
    // duplicated key, which the agent would silently drop.
    if (event == "Install" || event == "DownloadBundle" || event == "ApplicationStart" ||
        event == "ValidateService") {
      continue;
    }
    EXPECT_EQ(Check(Replace(kGoodAppSpec, "  BeforeInstall:", "  " + event + ":")),
              std::vector<std::string>{})
        << event;
  }
}

TEST(CodeDeployTest, HookLocationsMustBeInTheArchive) {
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "scripts/start.sh", "scripts/strat.sh")),
            std::vector<std::string>{
                "14:17: error: hook script 'scripts/strat.sh' is not in the archive"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "location: scripts/validate.sh", "timeout: 30")),
            std::vector<std::string>{"19:7: error: hook 'ValidateService': script without a "
                                     "'location'"});
}

TEST(CodeDeployTest, Timeouts) {
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "timeout: 120", "timeout: 4000")),
            std::vector<std::string>{"11:16: error: hook 'BeforeInstall': timeout must be a whole "
                                     "number of seconds from 1 to 3600, got '4000'"});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "timeout: 120", "timeout: 2m")).size(), 1u);
  std::string both = Replace(Replace(kGoodAppSpec, "      timeout: 60\n    - location: /scripts",
                                     "      timeout: 2000\n    - location: /scripts"),
                             "      timeout: 60\n  ValidateService",
                             "      timeout: 1700\n  "
                             "ValidateService");
  EXPECT_EQ(Check(both),
            std::vector<std::string>{"13:3: error: hook 'ApplicationStart': its scripts' "
                                     "timeouts add up to 3700 s, more than the 3600 s CodeDeploy "
                                     "allows per event"});
  // A script without a timeout adds 0 s to its event's total, not CodeDeploy's default.
  EXPECT_EQ(
      Check(Replace(kGoodAppSpec, "      timeout: 60\n  ValidateService", "  ValidateService")),
      std::vector<std::string>{});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "      timeout: 60\n    - location: /scripts",
                          "      timeout: 3600\n    - location: /scripts"))
                .size(),
            1u);
}

TEST(CodeDeployTest, ScriptsWithoutExecBitOrShebangAreWarnings) {
  Revision revision = MakeRevision(kGoodAppSpec);
  revision.files["scripts/start.sh"].executable = false;
  revision.files["scripts/warm.sh"].head = "echo warm\n";
  revision.files["scripts/validate.sh"].head = "#!/bin/bash\r\necho ok\r\n";
  Diagnostics diags("appspec.yml", revision.appspec);
  ValidateAppSpec(revision, diags);
  EXPECT_FALSE(diags.HasErrors());
  EXPECT_EQ(Check(revision),
            (std::vector<std::string>{
                "14:17: warning: hook script 'scripts/start.sh' is not executable: CodeDeploy "
                "runs it directly (chmod +x it in the source tree)",
                "16:17: warning: hook script 'scripts/warm.sh' has no '#!' line: the agent "
                "cannot tell which interpreter runs it",
                "19:17: warning: hook script 'scripts/validate.sh' has Windows line endings: its "
                "'#!' line ends in a carriage return"}));
  EXPECT_NE(diags.Format().find("appspec.yml:14:17: warning: hook script 'scripts/start.sh'"),
            std::string::npos)
      << diags.Format();
}

TEST(CodeDeployTest, WindowsRevisionsSkipTheShebangCheck) {
  std::string appspec = Replace(Replace(Replace(kGoodAppSpec, "os: linux", "os: windows"),
                                        "destination: /opt/orders/bin", "destination: C:\\orders"),
                                "destination: /opt/orders/revision", "destination: D:/rev");
  Revision revision = MakeRevision(appspec);
  revision.files["scripts/start.sh"].head = "Write-Host hi";
  EXPECT_EQ(Check(revision), std::vector<std::string>{});
}

// Errors only, as "LINE:COL: error: MESSAGE".
std::vector<std::string> Errors(const std::string& appspec) {
  std::vector<std::string> out;
  for (const std::string& finding : Check(appspec)) {
    if (finding.find(": error: ") != std::string::npos) out.push_back(finding);
  }
  return out;
}

TEST(CodeDeployAgentRulesTest, WindowsSeparatorsAreNormalized) {
  for (const auto& [source, location] :
       {std::pair{"\\bin", "\\scripts\\start.sh"}, std::pair{".\\bin", ".\\scripts\\start.sh"},
        std::pair{"bin\\", "scripts\\start.sh"},
        std::pair{".\\bin\\orders", "/scripts/start.sh"}}) {
    std::string appspec =
        Replace(Replace(kGoodAppSpec, "source: bin", std::string("source: ") + source),
                "location: scripts/start.sh", std::string("location: ") + location);
    EXPECT_EQ(Check(appspec), std::vector<std::string>{}) << source << " " << location;
  }
  EXPECT_EQ(Errors(Replace(kGoodAppSpec, "source: bin", "source: .\\nope")),
            std::vector<std::string>{"4:13: error: files source '.\\nope' is not in the archive"});
}

TEST(CodeDeployAgentRulesTest, KeysTheAgentReadsOrIgnoresAreNotErrors) {
  // `sudo` in a script, `overwrite` in a files item, an empty hook, several of each.
  EXPECT_EQ(
      Check(Replace(kGoodAppSpec, "      runas: root", "      runas: root\n      sudo: true")),
      std::vector<std::string>{});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "    destination: /opt/orders/bin",
                          "    destination: /opt/orders/bin\n    overwrite: yes")),
            std::vector<std::string>{});
  EXPECT_EQ(
      Check(Replace(kGoodAppSpec, "hooks:\n", "hooks:\n  ApplicationStop:\n  AfterInstall:\n")),
      std::vector<std::string>{});
  EXPECT_EQ(Check(Replace(kGoodAppSpec, "hooks:\n", "hooks:\n  AfterInstall: ~\n")),
            std::vector<std::string>{});
  // A hook that is neither empty nor a list still is an error.
  EXPECT_EQ(Errors(Replace(kGoodAppSpec, "hooks:\n", "hooks:\n  AfterInstall: now\n")).size(), 1u);
}

TEST(CodeDeployAgentRulesTest, DuplicatedKeysAreReported) {
  EXPECT_EQ(Errors(Replace(kGoodAppSpec, "os: linux\n", "os: linux\nos: windows\n")),
            std::vector<std::string>{"3:1: error: duplicated key 'os' (first at line 2): the "
                                     "CodeDeploy agent keeps only the last one; remove one of "
                                     "them"});
  EXPECT_EQ(Errors(Replace(kGoodAppSpec, "  ValidateService:", "  BeforeInstall:")).size(), 1u);
  EXPECT_EQ(Errors(Replace(kGoodAppSpec, "      timeout: 120\n",
                           "      timeout: 120\n      "
                           "timeout: 30\n"))
                .size(),
            1u);
}

const char kPermissions[] = R"(permissions:
  - object: /opt/orders
    mode: MODE
    type: TYPE
)";

std::vector<std::string> PermissionErrors(const std::string& mode, const std::string& type) {
  std::string permissions = Replace(Replace(kPermissions, "MODE", mode), "TYPE", type);
  return Errors(Replace(kGoodAppSpec, "hooks:\n", permissions + "hooks:\n"));
}

TEST(CodeDeployAgentRulesTest, PermissionModesAsTheAgentReadsThem) {
  for (const char* mode : {"755", "644", "4755", "7", "\"0755\"", "'0644'"}) {
    EXPECT_EQ(PermissionErrors(mode, "[file]"), std::vector<std::string>{}) << mode;
  }
  EXPECT_EQ(PermissionErrors("0755", "[file]"),
            std::vector<std::string>{"10:11: error: permissions mode 0755 is an octal number in "
                                     "YAML: the agent reads it as 493 and rejects it; write "
                                     "'mode: 755'"});
  EXPECT_EQ(PermissionErrors("0644", "[file]"),
            std::vector<std::string>{"10:11: error: permissions mode 0644 is an octal number in "
                                     "YAML: the agent reads it as 420 and applies that mode "
                                     "instead; write 'mode: 644'"});
  for (const char* mode : {"75a", "12345", "rwx", "8"}) {
    EXPECT_EQ(PermissionErrors(mode, "[file]").size(), 1u) << mode;
  }
}

TEST(CodeDeployAgentRulesTest, PermissionTypesAreFileOrDirectory) {
  EXPECT_EQ(PermissionErrors("755", "[file, directory]"), std::vector<std::string>{});
  EXPECT_EQ(PermissionErrors("755", "[file, link]"),
            std::vector<std::string>{"11:18: error: permissions type 'link' is not supported: "
                                     "the agent sets permissions on file and directory only"});
  EXPECT_EQ(PermissionErrors("755", "[files]").size(), 1u);
  EXPECT_EQ(PermissionErrors("755", "file").size(), 1u);  // the agent iterates a list
}

TEST(CodeDeployAgentRulesTest, EcsAndLambdaAppSpecsAreNamedAsSuch) {
  for (const char* appspec : {"version: 0.0\nResources:\n  - TargetService:\n      Type: "
                              "AWS::ECS::Service\n",
                              "version: 0.0\nresources:\n  - fn:\n      Type: "
                              "AWS::Lambda::Function\nHooks:\n  - BeforeAllowTraffic: f\n"}) {
    std::vector<std::string> errors = Errors(appspec);
    ASSERT_EQ(errors.size(), 1u) << appspec;
    EXPECT_NE(errors[0].find("2:1: error: this is not an EC2/on-premises appspec"),
              std::string::npos)
        << errors[0];
  }
}

// --- the corpus in tests/data/appspec (see its README) ---------------------------------------

std::string CorpusPath(const std::string& name) {
  return std::string(RUNNER_SOURCE_DIR) + "/tests/data/appspec/" + name;
}

// A revision holding appspec.yml and every source and hook location it names.
Revision CorpusRevision(const std::string& appspec) {
  Revision revision;
  revision.has_appspec = true;
  revision.appspec = appspec;
  revision.files["appspec.yml"] = {false, false, "version: 0.0"};
  revision.files["index.html"] = {false, false, "<html>"};
  auto add = [&](const YamlNode* node) {
    if (!node || !node->IsScalar()) return;
    std::string path = node->value;
    std::replace(path.begin(), path.end(), '\\', '/');
    while (path.starts_with("./") || path.starts_with('/')) path.erase(0, path[0] == '/' ? 1 : 2);
    while (path.ends_with('/')) path.pop_back();
    if (!path.empty()) revision.files[path] = {false, true, "#!/bin/sh\n"};
  };
  auto documents = ParseYamlDocuments(appspec, "appspec.yml");
  if (!documents || documents->empty()) return revision;
  const YamlNode& root = documents->front();
  if (const YamlNode* files = root.Find("files")) {
    for (const YamlNode& item : files->items) add(item.Find("source"));
  }
  if (const YamlNode* hooks = root.Find("hooks")) {
    for (const auto& [event, scripts] : hooks->fields) {
      for (const YamlNode& script : scripts.items) add(script.Find("location"));
    }
  }
  return revision;
}

TEST(CodeDeployCorpusTest, EveryValidAppSpecPasses) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(CorpusPath("valid"))) {
    ++count;
    std::string text = testing::ReadTextFile(entry.path().string());
    Revision revision = CorpusRevision(text);
    Diagnostics diags(entry.path().filename().string(), text);
    ValidateAppSpec(revision, diags);
    EXPECT_FALSE(diags.HasErrors()) << diags.Format();
  }
  EXPECT_GE(count, 10u);
}

TEST(CodeDeployCorpusTest, EveryInvalidAppSpecFailsWithItsMessage) {
  const std::map<std::string, std::string> expected = {
      {"custom-event.yml", "hook 'CustomEvent' is not a lifecycle event"},
      {"duplicate-hook.yml", "13:3: duplicated key 'BeforeInstall' (first at line 7)"},
      {"ecs.yml", "2:1: this is not an EC2/on-premises appspec: 'Resources'"},
      {"lambda.yml", "2:1: this is not an EC2/on-premises appspec: 'Resources'"},
      {"mode-octal.yml", "9:11: permissions mode 0755 is an octal number in YAML"},
      {"permission-type-link.yml", "14:9: permissions type 'link' is not supported"},
      {"event-over-3600.yml", "7:3: hook 'AfterInstall': its scripts' timeouts add up to 3900 s"},
      {"windows-permissions.yml", "'permissions' are not supported on windows"},
  };
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(CorpusPath("invalid"))) {
    std::string name = entry.path().filename().string();
    seen.insert(name);
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << name << " has no expected message in this test";
    std::string text = testing::ReadTextFile(entry.path().string());
    Diagnostics diags(name, text);
    ValidateAppSpec(CorpusRevision(text), diags);
    std::string found;
    for (const Diagnostic& d : diags.diagnostics()) {
      if (d.severity != Diagnostic::Severity::kError) continue;
      std::string where =
          d.where.line > 0 ? fmt::format("{}:{}: ", d.where.line, d.where.column) : std::string();
      found += where + d.message + "\n";
    }
    EXPECT_NE(found.find(it->second), std::string::npos) << name << ":\n" << found;
  }
  EXPECT_EQ(seen.size(), expected.size());
}

// ------------------------------------------------------------------------------------------
// Through the zip step: the archive as written is checked, and a bad revision never appears.

class CodeDeployZipTest : public ::testing::Test {
 protected:
  CodeDeployZipTest() : io_(workspace_.path()) {}

  void MakeService(const std::string& appspec) {
    WriteTextFile(workspace_ / "dist/orders",
                  "\x7f"
                  "ELF\n");
    ::chmod((workspace_ / "dist/orders").c_str(), 0755);
    WriteTextFile(workspace_ / "deploy/appspec.yml", appspec);
    WriteTextFile(workspace_ / "deploy/scripts/start.sh", "#!/bin/bash\nsystemctl start x\n");
    ::chmod((workspace_ / "deploy/scripts/start.sh").c_str(), 0755);
  }

  nlohmann::ordered_json Config() {
    return nlohmann::ordered_json::parse(R"({
      "dest": "dist/orders.zip",
      "files": [{"src": "dist/orders", "dest": "bin/orders"},
                {"deploy/appspec.yml": "appspec.yml"},
                {"src": "deploy/scripts/*.sh", "dest": "scripts/"}],
      "codedeploy": "true"})");
  }

  TempDir workspace_;
  FakeStepIo io_;
};

constexpr char kServiceAppSpec[] = R"(version: 0.0
os: linux
files:
  - source: bin
    destination: /opt/orders/bin
hooks:
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 60
)";

TEST_F(CodeDeployZipTest, ValidRevisionIsWritten) {
  MakeService(kServiceAppSpec);
  Status status = ZipKind().Execute(testing::ExpandedConfig(Config().dump()), io_);
  ASSERT_TRUE(status) << status.error() << io_.log;
  EXPECT_TRUE(fs::exists(workspace_ / "dist/orders.zip"));
  EXPECT_EQ(io_.log.find("warning"), std::string::npos) << io_.log;
}

TEST_F(CodeDeployZipTest, InvalidRevisionFailsBeforeTheArchiveAppears) {
  MakeService(Replace(kServiceAppSpec, "ApplicationStart", "ApplicationStrat"));
  Status status = ZipKind().Execute(testing::ExpandedConfig(Config().dump()), io_);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("not a valid CodeDeploy revision"), std::string::npos)
      << status.error();
  // Reported against the source file the user edits, with the line and a caret.
  EXPECT_NE(io_.log.find("deploy/appspec.yml:7:3: error: hook 'ApplicationStrat' is not a "
                         "lifecycle event (did you mean 'ApplicationStart'?)\n"
                         "  ApplicationStrat:\n"
                         "  ^"),
            std::string::npos)
      << io_.log;
  EXPECT_FALSE(fs::exists(workspace_ / "dist/orders.zip"));
  for (const auto& item : fs::directory_iterator(workspace_ / "dist")) {
    EXPECT_EQ(item.path().filename().string().find(".tmp."), std::string::npos) << item.path();
  }
  EXPECT_TRUE(io_.outputs.empty());
  EXPECT_TRUE(io_.artifacts.empty());
}

TEST_F(CodeDeployZipTest, WarningsGoToTheLog) {
  MakeService(kServiceAppSpec);
  ::chmod((workspace_ / "deploy/scripts/start.sh").c_str(), 0644);
  Status status = ZipKind().Execute(testing::ExpandedConfig(Config().dump()), io_);
  ASSERT_TRUE(status) << status.error();
  EXPECT_NE(io_.log.find("deploy/appspec.yml:8:17: warning: hook script 'scripts/start.sh' is "
                         "not executable"),
            std::string::npos)
      << io_.log;
}

TEST_F(CodeDeployZipTest, MissingAppSpecFails) {
  MakeService(kServiceAppSpec);
  auto config = Config();
  config["files"].erase(1);
  Status status = ZipKind().Execute(testing::ExpandedConfig(config.dump()), io_);
  ASSERT_FALSE(status);
  EXPECT_NE(io_.log.find("no appspec.yml at its root"), std::string::npos) << io_.log;
  EXPECT_FALSE(fs::exists(workspace_ / "dist/orders.zip"));
}

// The revision pipelines/example.yml ships: zipped as the pipeline does, it must pass clean.
TEST_F(CodeDeployZipTest, TheExampleServiceRevisionIsValid) {
  std::string deploy = std::string(RUNNER_SOURCE_DIR) + "/pipelines/orders/deploy";
  fs::copy(deploy, workspace_ / "deploy", fs::copy_options::recursive);
  WriteTextFile(workspace_ / "dist/orders",
                "\x7f"
                "ELF\n");
  ::chmod((workspace_ / "dist/orders").c_str(), 0755);
  WriteTextFile(workspace_ / "dist/build.json", "{\"version\": \"orders-main-7\"}\n");
  auto config = nlohmann::ordered_json::parse(R"({
    "dest": "dist/orders.zip",
    "files": [{"src": "dist/orders", "dest": "bin/orders"},
              {"src": "dist/build.json", "dest": "build.json"},
              {"deploy/appspec.yml": "appspec.yml"},
              {"deploy/orders.service": "systemd/"},
              {"src": "deploy/scripts/*.sh", "dest": "scripts/"}],
    "codedeploy": "true"})");
  Status status = ZipKind().Execute(testing::ExpandedConfig(config.dump()), io_);
  ASSERT_TRUE(status) << status.error() << io_.log;
  EXPECT_EQ(io_.log.find("warning"), std::string::npos) << io_.log;
  Result<Revision> revision = ReadRevision(workspace_ / "dist/orders.zip");
  ASSERT_TRUE(revision) << revision.error();
  for (const char* hook : {"scripts/before_install.sh", "scripts/after_install.sh",
                           "scripts/application_start.sh", "scripts/validate_service.sh"}) {
    ASSERT_TRUE(revision->files.contains(hook)) << hook;
    EXPECT_TRUE(revision->files.at(hook).executable) << hook;
  }
  EXPECT_TRUE(revision->files.contains("systemd/orders.service"));
}

}  // namespace
}  // namespace runner
