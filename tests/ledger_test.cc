// The deploy ledger on a local directory and on S3 (s3rver): history order, what is live, an
// entry never overwritten, `requires`, pause and resume, corrupt entries, and what
// `runner deployments` prints.
#include "runner/deploy/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner::deploy {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::ReadTextFile;
using testing::TempDir;

// 2026-12-DAY at HH:MM:SS UTC.
WallTime At(int day, int hour, int minute, int second = 0) {
  using namespace std::chrono;
  return sys_days{year{2026} / December / day} + hours(hour) + minutes(minute) + seconds(second);
}

LedgerEntry Deploy(const std::string& build, WallTime started,
                   DeployOutcome outcome = DeployOutcome::kSuccess) {
  LedgerEntry entry;
  entry.env = "stg";
  entry.build_id = build;
  entry.deploy_id = DeployId(started, build);
  entry.project = "orders";
  entry.branch = "main";
  entry.commit = "0123456789abcdef0123456789abcdef01234567";
  entry.who = "alice@build1";
  entry.started = started;
  entry.finished = started + 4min + 30s;
  entry.outcome = outcome;
  entry.changed = outcome == DeployOutcome::kSuccess;
  return entry;
}

std::vector<std::string> Builds(const std::vector<LedgerEntry>& entries) {
  std::vector<std::string> ids;
  for (const LedgerEntry& entry : entries) {
    ids.push_back(entry.build_id.empty() ? std::string(OutcomeName(entry.outcome))
                                         : entry.build_id);
  }
  return ids;
}

TEST(DeployIdTest, TimeInUtcToTheMillisecondThenTheBuild) {
  EXPECT_EQ(DeployId(At(1, 13, 5, 1) + 999ms, "orders-main-158"),
            "20261201T130501.999Z-orders-main-158");
  EXPECT_EQ(OutcomeName(DeployOutcome::kNoChange), "no-change");
}

// Every ledger test runs on a directory and on s3rver.
class LedgerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "s3") {
      server_ = std::make_unique<testing::S3rver>();
      ASSERT_TRUE(server_->ok());
    }
    auto ledger = Ledger::Open(url(), state_.path(), Options(), [this] { return now_; });
    ASSERT_TRUE(ledger.has_value()) << ledger.error();
    ledger_.emplace(std::move(*ledger));
  }

  std::string url() const {
    return GetParam() == "s3" ? "s3://bkt/deploys/orders" : "file://" + state_.path() + "/ledger";
  }

  ArtifactStoreOptions Options() const {
    ArtifactStoreOptions options;
    if (server_) {
      options.env = {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};
      options.region = "us-east-1";
      options.endpoint = server_->endpoint();
    }
    return options;
  }

  // The ledger's store, opened beside it, for what the ledger itself would never write.
  std::unique_ptr<ArtifactStore> Store() const {
    auto store = OpenArtifactStore(url(), Options());
    EXPECT_TRUE(store.has_value()) << store.error();
    return std::move(*store);
  }

  void Record(const LedgerEntry& entry) {
    Status recorded = ledger_->Record(entry);
    ASSERT_TRUE(recorded.has_value()) << recorded.error();
  }

  std::vector<LedgerEntry> History(const std::string& env = "stg") {
    auto history = ledger_->History(env);
    EXPECT_TRUE(history.has_value()) << history.error();
    return history.value_or(std::vector<LedgerEntry>{});
  }

  std::unique_ptr<testing::S3rver> server_;
  TempDir state_;
  WallTime now_ = At(1, 14, 0);
  std::optional<Ledger> ledger_;
};

INSTANTIATE_TEST_SUITE_P(Stores, LedgerTest, ::testing::Values("local", "s3"));

TEST_P(LedgerTest, HistoryIsOldestFirstAndEveryFieldReadsBack) {
  LedgerEntry second = Deploy("orders-main-158", At(1, 13, 5, 1));
  second.outputs = {{"Url", "https://orders.example.com"}, {"AsgName", "orders-stg-asg"}};
  second.message = "UPDATE_COMPLETE";
  Record(second);
  Record(Deploy("orders-main-159", At(1, 15, 0)));
  Record(Deploy("orders-main-157", At(1, 9, 0) - 24h));  // 30 November
  LedgerEntry other = Deploy("orders-main-157", At(1, 10, 0));
  other.env = "prd";
  Record(other);

  std::vector<LedgerEntry> history = History();
  EXPECT_EQ(Builds(history),
            (std::vector<std::string>{"orders-main-157", "orders-main-158", "orders-main-159"}));
  const LedgerEntry& read = history[1];
  EXPECT_EQ(read.env, "stg");
  EXPECT_EQ(read.deploy_id, "20261201T130501.000Z-orders-main-158");
  EXPECT_EQ(read.project, "orders");
  EXPECT_EQ(read.branch, "main");
  EXPECT_EQ(read.commit, second.commit);
  EXPECT_EQ(read.who, "alice@build1");
  EXPECT_EQ(read.started, second.started);
  EXPECT_EQ(read.finished, second.finished);
  EXPECT_EQ(read.outcome, DeployOutcome::kSuccess);
  EXPECT_TRUE(read.changed);
  EXPECT_EQ(read.outputs, second.outputs);  // in the stack's order
  EXPECT_EQ(read.message, "UPDATE_COMPLETE");
  EXPECT_EQ(Builds(History("prd")), std::vector<std::string>{"orders-main-157"});
  EXPECT_TRUE(History("dev").empty());

  auto names = Store()->List("");
  ASSERT_TRUE(names.has_value()) << names.error();
  EXPECT_EQ(*names, (std::vector<std::string>{"prd/20261201T100000.000Z-orders-main-157.json",
                                              "stg/20261130T090000.000Z-orders-main-157.json",
                                              "stg/20261201T130501.000Z-orders-main-158.json",
                                              "stg/20261201T150000.000Z-orders-main-159.json"}));
}

TEST_P(LedgerTest, LiveIsTheLatestSuccessOrNoChange) {
  auto live = [&] {
    auto entry = ledger_->Live("stg");
    EXPECT_TRUE(entry.has_value()) << entry.error();
    return entry && *entry ? (*entry)->build_id : "none";
  };
  EXPECT_EQ(live(), "none");
  Record(Deploy("orders-main-157", At(1, 9, 0)));
  Record(Deploy("orders-main-158", At(1, 10, 0)));
  Record(Deploy("orders-main-159", At(1, 11, 0), DeployOutcome::kFailed));
  Record(Deploy("orders-main-160", At(1, 12, 0), DeployOutcome::kCancelled));
  EXPECT_EQ(live(), "orders-main-158");  // 159 rolled back, 160 was cancelled
  Record(Deploy("orders-main-161", At(1, 13, 0), DeployOutcome::kNoChange));
  EXPECT_EQ(live(), "orders-main-161");
  Record(Deploy("orders-main-157", At(1, 14, 0)));  // a rollback
  EXPECT_EQ(live(), "orders-main-157");
}

TEST_P(LedgerTest, AnEntryIsNeverOverwritten) {
  LedgerEntry entry = Deploy("orders-main-158", At(1, 13, 5, 1));
  Record(entry);
  entry.outcome = DeployOutcome::kFailed;
  entry.message = "a second write";
  Status again = ledger_->Record(entry);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error(), "ledger: " + ledger_->url() +
                               "stg/20261201T130501.000Z-orders-main-158.json is already in the "
                               "ledger: an entry is never overwritten");
  std::vector<LedgerEntry> history = History();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].outcome, DeployOutcome::kSuccess);
  EXPECT_EQ(history[0].message, "");
}

TEST_P(LedgerTest, SucceededIsWhatRequiresChecks) {
  Record(Deploy("orders-main-157", At(1, 9, 0)));
  Record(Deploy("orders-main-158", At(1, 10, 0), DeployOutcome::kFailed));
  Record(Deploy("orders-main-159", At(1, 11, 0), DeployOutcome::kNoChange));
  auto succeeded = [&](const std::string& env, const std::string& build) {
    auto result = ledger_->Succeeded(env, build);
    EXPECT_TRUE(result.has_value()) << result.error();
    return result.value_or(false);
  };
  EXPECT_TRUE(succeeded("stg", "orders-main-157"));
  EXPECT_FALSE(succeeded("stg", "orders-main-158"));
  EXPECT_TRUE(succeeded("stg", "orders-main-159"));
  EXPECT_FALSE(succeeded("stg", "orders-main-160"));
  EXPECT_FALSE(succeeded("prd", "orders-main-157"));
}

TEST_P(LedgerTest, PauseAndResumeStayInTheHistory) {
  auto paused = [&]() -> std::optional<PauseState> {
    auto state = ledger_->Paused("stg");
    EXPECT_TRUE(state.has_value()) << state.error();
    return state.value_or(std::nullopt);
  };
  EXPECT_FALSE(paused());
  Record(Deploy("orders-main-158", At(1, 13, 0)));
  ASSERT_TRUE(ledger_->Pause("stg", "bob@ops", "incident 42").has_value());
  ASSERT_TRUE(paused());
  EXPECT_EQ(paused()->who, "bob@ops");
  EXPECT_EQ(paused()->since, At(1, 14, 0));
  EXPECT_EQ(paused()->reason, "incident 42");
  EXPECT_EQ(ledger_->Pause("stg", "carol@ops", "again").error(),
            "ledger: stg is paused already, since 2026-12-01T14:00:00Z by bob@ops: incident 42");
  EXPECT_EQ(ledger_->Pause("prd", "carol@ops", "").error(),
            "ledger: say why prd is paused: the reason is what others see");

  now_ = At(1, 16, 30);
  ASSERT_TRUE(ledger_->Resume("stg", "carol@ops").has_value());
  EXPECT_FALSE(paused());
  EXPECT_EQ(ledger_->Resume("stg", "carol@ops").error(), "ledger: stg is not paused");
  now_ = At(2, 8, 0);
  ASSERT_TRUE(ledger_->Pause("stg", "bob@ops", "freeze").has_value());
  EXPECT_EQ(paused()->reason, "freeze");

  std::vector<LedgerEntry> history = History();
  EXPECT_EQ(Builds(history),
            (std::vector<std::string>{"orders-main-158", "paused", "resumed", "paused"}));
  EXPECT_EQ(history[1].deploy_id, "20261201T140000.000Z-pause");
  EXPECT_EQ(history[1].who, "bob@ops");
  EXPECT_EQ(history[1].message, "incident 42");
  EXPECT_EQ(history[2].deploy_id, "20261201T163000.000Z-resume");
  EXPECT_EQ(history[2].who, "carol@ops");
  // Neither is a deploy.
  auto live = ledger_->Live("stg");
  ASSERT_TRUE(live.has_value()) << live.error();
  EXPECT_EQ((*live)->build_id, "orders-main-158");
}

TEST_P(LedgerTest, ACorruptEntryIsReportedNotSkipped) {
  Record(Deploy("orders-main-157", At(1, 9, 0)));
  auto store = Store();
  const std::string name = "stg/20261201T100000.000Z-orders-main-158.json";
  ASSERT_TRUE(store->Put(name, "{\"version\": 1, \"env\": ", "application/json").has_value());
  for (auto result : {ledger_->History("stg").error(), ledger_->Live("stg").error(),
                      ledger_->Succeeded("stg", "orders-main-157").error()}) {
    EXPECT_EQ(result, "ledger: " + store->UrlOf(name) +
                          ": not a JSON object; the ledger cannot be read past it: repair or "
                          "remove it");
  }
  ASSERT_TRUE(store->Put("stg/paused.json", "[]", "application/json").has_value());
  const std::string paused_problem = "ledger: " + store->UrlOf("stg/paused.json") +
                                     ": not a JSON object; every deploy to stg is refused until "
                                     "it is repaired or removed";
  EXPECT_EQ(ledger_->Paused("stg").error(), paused_problem);
  EXPECT_EQ(ledger_->Pause("stg", "bob@ops", "x").error(), paused_problem);
  EXPECT_EQ(ledger_->Resume("stg", "bob@ops").error(), paused_problem);
  ASSERT_TRUE(store
                  ->Put("stg/paused.json", "{\"version\": 1, \"env\": \"stg\", \"paused\": 1}",
                        "application/json")
                  .has_value());
  EXPECT_THAT(ledger_->Paused("stg").error(),
              HasSubstr("paused.json: 'paused' must be true or false, found number; every deploy "
                        "to stg is refused"));
}

TEST(LedgerLocalTest, EntriesThatDoNotHoldTogetherAreRefused) {
  TempDir state;
  auto ledger = Ledger::Open("", state.path(), {});
  ASSERT_TRUE(ledger.has_value()) << ledger.error();
  auto refused = [&](const LedgerEntry& entry) {
    Status status = ledger->Record(entry);
    EXPECT_FALSE(status.has_value());
    return status ? "" : status.error();
  };
  LedgerEntry entry = Deploy("orders-main-158", At(1, 13, 5, 1));
  entry.env = "Stg";
  EXPECT_EQ(refused(entry),
            "ledger: 'Stg' is not an environment name: use lowercase letters, digits, '_' and "
            "'-', starting with a letter");
  entry.env = "../x";
  EXPECT_THAT(refused(entry), HasSubstr("'../x' is not an environment name"));
  entry = Deploy("orders-main-158", At(1, 13, 5, 1));
  entry.deploy_id = "158";
  EXPECT_EQ(
      refused(entry),
      "ledger: deploy id '158' is not 20261201T130501.000Z-orders-main-158: a deploy id is the "
      "start time (UTC) and the build id, so that ids sort by time");
  entry = Deploy("orders/main", At(1, 13, 0));
  EXPECT_EQ(refused(entry), "ledger: 'orders/main' is not a build id such as orders-main-158");
  entry = Deploy("orders-main-158", At(1, 13, 0));
  entry.who = "";
  EXPECT_EQ(refused(entry), "ledger: deploy 20261201T130000.000Z-orders-main-158: 'who' is empty");
  entry = Deploy("orders-main-158", At(1, 13, 0));
  entry.finished = entry.started - 1s;
  EXPECT_EQ(refused(entry),
            "ledger: deploy 20261201T130000.000Z-orders-main-158: finished before it started");
  entry = Deploy("orders-main-158", At(1, 13, 0), DeployOutcome::kPaused);
  EXPECT_EQ(refused(entry),
            "ledger: a 'paused' entry is written by pausing or resuming, not recorded");
  EXPECT_THAT(ledger->History("../..").error(), HasSubstr("is not an environment name"));
  EXPECT_THAT(ledger->Pause("a/b", "me", "x").error(), HasSubstr("is not an environment name"));
  // Nothing was written, and the default place is STATE/deployments.
  ASSERT_TRUE(ledger->Record(Deploy("orders-main-158", At(1, 13, 0))).has_value());
  EXPECT_EQ(ledger->url(), "file://" + state.path() + "/deployments/");
  std::vector<std::string> files;
  for (const auto& file : std::filesystem::recursive_directory_iterator(state.path())) {
    if (file.is_regular_file()) files.push_back(file.path().string());
  }
  EXPECT_EQ(files,
            std::vector<std::string>{state.path() +
                                     "/deployments/stg/20261201T130000.000Z-orders-main-158.json"});
}

TEST(LedgerLocalTest, TheEntryFileAndItsProblems) {
  TempDir state;
  ArtifactStoreOptions options;
  options.workspace = state.path();
  auto ledger = Ledger::Open("ledger", "", std::move(options));
  ASSERT_TRUE(ledger.has_value()) << ledger.error();
  LedgerEntry entry = Deploy("orders-main-158", At(1, 13, 5, 1));
  entry.outputs = {{"Url", "https://orders.example.com"}};
  entry.message = "UPDATE_COMPLETE";
  ASSERT_TRUE(ledger->Record(entry).has_value());
  const std::string path = state / "ledger/stg/20261201T130501.000Z-orders-main-158.json";
  const std::string text = ReadTextFile(path);
  EXPECT_EQ(text, R"({
  "version": 1,
  "env": "stg",
  "deploy_id": "20261201T130501.000Z-orders-main-158",
  "build_id": "orders-main-158",
  "project": "orders",
  "branch": "main",
  "commit": "0123456789abcdef0123456789abcdef01234567",
  "who": "alice@build1",
  "started": "2026-12-01T13:05:01.000Z",
  "finished": "2026-12-01T13:09:31.000Z",
  "outcome": "success",
  "changed": true,
  "outputs": {
    "Url": "https://orders.example.com"
  },
  "message": "UPDATE_COMPLETE"
}
)");
  auto problem = [&](const std::string& from, const std::string& to) {
    std::string changed = text;
    changed.replace(changed.find(from), from.size(), to);
    testing::WriteTextFile(path, changed);
    auto history = ledger->History("stg");
    EXPECT_FALSE(history.has_value()) << from;
    return history ? "" : history.error();
  };
  const std::string where = "ledger: file://" + path + ": ";
  const std::string what_to_do = "; the ledger cannot be read past it: repair or remove it";
  EXPECT_EQ(problem("\"version\": 1", "\"version\": 2"),
            where + "'version' must be 1 (written by another runner?)" + what_to_do);
  EXPECT_EQ(problem("\"who\"", "\"whom\""), where + "'who' is missing" + what_to_do);
  EXPECT_EQ(problem("\"changed\": true", "\"changed\": \"yes\""),
            where + "'changed' must be true or false, found string" + what_to_do);
  EXPECT_EQ(problem(".000Z\",\n  \"outcome", "Z\",\n  \"outcome"),
            where + "'finished' is not a time such as 2026-12-01T13:05:01.000Z: " +
                "'2026-12-01T13:09:31Z'" + what_to_do);
  EXPECT_EQ(problem("\"success\"", "\"ok\""),
            where +
                "'outcome' is 'ok', not one of success, failed, cancelled, no-change, paused, "
                "resumed" +
                what_to_do);
  EXPECT_EQ(problem("\"https://orders.example.com\"", "1"),
            where + "'outputs.Url' must be a string, found number" + what_to_do);
  EXPECT_EQ(problem("\"finished\": \"2026-12-01T13:09:31.000Z\"",
                    "\"finished\": \"2026-12-01T13:00:00.000Z\""),
            where + "deploy 20261201T130501.000Z-orders-main-158: finished before it started" +
                what_to_do);
  EXPECT_EQ(problem("\"env\": \"stg\"", "\"env\": \"prd\""),
            where +
                "it holds deploy '20261201T130501.000Z-orders-main-158' of environment 'prd', not "
                "what its name says" +
                what_to_do);
  testing::WriteTextFile(path, text);
  EXPECT_TRUE(ledger->History("stg").has_value());
  // Other files beside the entries are not entries.
  testing::WriteTextFile(state / "ledger/stg/notes.txt", "not json");
  testing::WriteTextFile(state / "ledger/stg/archive/old.json", "not json");
  EXPECT_EQ(ledger->History("stg").value().size(), 1u);
}

TEST(FormatDeploymentsTest, LiveBuildPauseAndHistory) {
  EnvironmentHistory stg;
  stg.env = "stg";
  stg.entries.push_back(Deploy("orders-main-157", At(1, 9, 0)));
  stg.entries.push_back(Deploy("orders-main-158", At(1, 13, 5, 1)));
  LedgerEntry failed = Deploy("orders-main-159", At(1, 13, 30), DeployOutcome::kFailed);
  failed.who = "jenkins";
  failed.message = "UPDATE_ROLLBACK_COMPLETE: AppAsg failed to stabilize\nmore detail";
  stg.entries.push_back(failed);
  LedgerEntry pause;
  pause.env = "stg";
  pause.outcome = DeployOutcome::kPaused;
  pause.who = "bob@ops";
  pause.started = pause.finished = At(1, 14, 0);
  pause.message = "incident 42";
  stg.entries.push_back(pause);
  stg.paused = PauseState{"bob@ops", At(1, 14, 0), "incident 42"};

  EnvironmentHistory prd;
  prd.env = "prd";
  prd.entries.push_back(Deploy("orders-main-150", At(1, 8, 0), DeployOutcome::kFailed));
  EnvironmentHistory dev;
  dev.env = "dev";

  EXPECT_EQ(FormatDeployments({stg, prd, dev}),
            "stg: live orders-main-158 (deployed 2026-12-01T13:09:31Z by alice@build1)\n"
            "  !!! PAUSED since 2026-12-01T14:00:00Z by bob@ops: incident 42\n"
            "  !!! no deploy to stg runs until `runner deploy --resume stg`\n"
            "  WHEN                  BUILD            OUTCOME  WHO           CHANGED  MESSAGE\n"
            "  2026-12-01T09:00:00Z  orders-main-157  success  alice@build1  yes\n"
            "  2026-12-01T13:05:01Z  orders-main-158  success  alice@build1  yes\n"
            "  2026-12-01T13:30:00Z  orders-main-159  failed   jenkins       no       "
            "UPDATE_ROLLBACK_COMPLETE: AppAsg failed to stabilize\n"
            "  2026-12-01T14:00:00Z  -                paused   bob@ops       -        "
            "incident 42\n"
            "\n"
            "prd: nothing live (no deploy has succeeded)\n"
            "  WHEN                  BUILD            OUTCOME  WHO           CHANGED\n"
            "  2026-12-01T08:00:00Z  orders-main-150  failed   alice@build1  no\n"
            "\n"
            "dev: no deploys recorded\n");
  EXPECT_EQ(FormatDeployments({}), "no environments\n");
}

TEST(FormatDeploymentsTest, ReadGivesWhatItFormats) {
  TempDir state;
  WallTime now = At(1, 14, 0);
  auto ledger = Ledger::Open("", state.path(), {}, [&] { return now; });
  ASSERT_TRUE(ledger.has_value()) << ledger.error();
  ASSERT_TRUE(ledger->Record(Deploy("orders-main-158", At(1, 13, 0))).has_value());
  ASSERT_TRUE(ledger->Pause("stg", "bob@ops", "incident 42").has_value());
  auto stg = ledger->Read("stg");
  ASSERT_TRUE(stg.has_value()) << stg.error();
  EXPECT_EQ(FormatDeployments({*stg}),
            "stg: live orders-main-158 (deployed 2026-12-01T13:04:30Z by alice@build1)\n"
            "  !!! PAUSED since 2026-12-01T14:00:00Z by bob@ops: incident 42\n"
            "  !!! no deploy to stg runs until `runner deploy --resume stg`\n"
            "  WHEN                  BUILD            OUTCOME  WHO           CHANGED  MESSAGE\n"
            "  2026-12-01T13:00:00Z  orders-main-158  success  alice@build1  yes\n"
            "  2026-12-01T14:00:00Z  -                paused   bob@ops       -        "
            "incident 42\n");
}

}  // namespace
}  // namespace runner::deploy
