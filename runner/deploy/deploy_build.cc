#include "runner/deploy/deploy_build.h"

#include <fmt/format.h>
#include <unistd.h>

#include <optional>

#include "runner/aws/autoscaling.h"
#include "runner/aws/cloudformation.h"
#include "runner/aws/codedeploy.h"
#include "runner/aws/credentials.h"
#include "runner/aws/s3_client.h"
#include "runner/aws/service_client.h"
#include "runner/aws/sts.h"
#include "runner/deploy/cfn_lint.h"
#include "runner/deploy/revision_deploy.h"
#include "runner/glob.h"
#include "runner/sha256.h"
#include "runner/store/artifact_store.h"
#include "runner/store/manifest.h"
#include "steps/params.h"

namespace runner::deploy {

namespace {

constexpr size_t kMaxTemplateBody = 51200;  // CloudFormation's limit for TemplateBody

// The manifest's store (its directory) and the manifest's file name within it.
std::pair<std::string, std::string> SplitManifestUrl(const std::string& url) {
  size_t slash = url.rfind('/');
  if (slash == std::string::npos) return {".", url};
  return {url.substr(0, slash + 1), url.substr(slash + 1)};
}

// An object of the build, read and checked against the manifest.
Result<std::string> ReadChecked(ArtifactStore& store, const Manifest& manifest,
                                const std::string& name) {
  const ManifestObject* object = manifest.Find(name);
  if (!object) {
    std::vector<std::string> names;
    for (const ManifestObject& entry : manifest.objects) names.push_back(entry.name);
    return Fail(fmt::format("the build {} published no '{}' (its manifest lists {})",
                            manifest.build.id, name, fmt::join(names, ", ")));
  }
  auto bytes = store.Get(object->name);
  if (!bytes) return Fail(fmt::format("cannot read {}: {}", object->url, bytes.error()));
  if (bytes->size() != object->size || Sha256Hex(*bytes) != object->sha256) {
    return Fail(fmt::format(
        "{} is not what the build published: {} bytes with sha256 {}, the manifest says {} "
        "bytes with sha256 {}; refusing to deploy it",
        object->url, bytes->size(), Sha256Hex(*bytes), object->size, object->sha256));
  }
  return bytes;
}

// An https URL CloudFormation can read the object at: through the configured S3 endpoint
// (path style) or S3's regional virtual host. Empty for a local store.
std::string TemplateUrl(const ManifestObject& object, const std::string& region,
                        const Environment& env) {
  auto s3 = aws::ParseS3Url(object.url);
  if (!s3) return "";
  const std::string& bucket = s3->bucket;
  std::string endpoint = aws::ResolveS3Endpoint("", env);
  if (!endpoint.empty()) {
    while (endpoint.ends_with('/')) endpoint.pop_back();
    return fmt::format("{}/{}/{}", endpoint, bucket, object.key);
  }
  return fmt::format("https://{}.s3.{}.amazonaws.com/{}", bucket, region, object.key);
}

// The options of a client of `service` in `region`, at AWS_ENDPOINT_URL_SERVICE, else
// AWS_ENDPOINT_URL, else AWS's own endpoint. Not cancelled with the deploy: a cancel is itself
// calls to make (CancelUpdateStack, StopDeployment, then following the rollback); each call is
// bounded by the transport's own timeouts.
template <class Options>
Options ClientOptions(const std::string& region, const Environment& env, std::string_view service) {
  Options options;
  options.region = region;
  options.endpoint = aws::EndpointFromEnvironment(env, service);
  return options;
}

using Parameters = std::vector<std::pair<std::string, std::string>>;

// A build baked in several regions (its manifest's `amis`): every parameter that names one of
// its AMIs takes the AMI of the environment's region. A region the bake made no AMI in is an
// error: the AMI named would not exist there.
Status TakeRegionalAmis(const Manifest& manifest, const DeployEnvironment& env,
                        Parameters& parameters, const std::function<void(std::string_view)>& log) {
  const std::string* here = manifest.AmiIn(env.region);
  for (auto& [key, value] : parameters) {
    auto baked = std::ranges::find(manifest.amis, value, &Parameters::value_type::second);
    if (baked == manifest.amis.end()) continue;
    if (here == nullptr) {
      std::vector<std::string> regions;
      for (const auto& [region, ami] : manifest.amis) regions.push_back(region);
      return Fail(fmt::format(
          "environment {} is in {}, but the build {} baked AMIs only in {}: parameter {} "
          "({}, of {}) has no AMI there; add {} to the bake's regions (ami_regions) and deploy "
          "a build made with it",
          env.name, env.region, manifest.build.id, fmt::join(regions, ", "), key, value,
          baked->first, env.region));
    }
    if (value != *here) {
      log(fmt::format("parameter {}: {}, the build's AMI in {} (not {}, of {})", key, *here,
                      env.region, value, baked->first));
      value = *here;
    }
  }
  return {};
}

// The revision as CodeDeploy is given it: the build's own object, or, with the environment's
// `revision_store`, a copy of its checked bytes there (under the same key, put once; an object
// already there must be the same bytes).
Result<aws::S3Revision> RevisionIn(const DeployEnvironment& env, const ManifestObject& object,
                                   const std::string& bytes, ArtifactStoreOptions options,
                                   const std::function<void(std::string_view)>& log) {
  std::string etag = object.etag;
  std::string version = object.version_id;
  std::string url = object.url;
  if (!env.codedeploy->revision_store.empty()) {
    options.region = env.region;
    auto store = OpenArtifactStore(env.codedeploy->revision_store, options);
    if (!store) return Fail(store.error());
    url = (*store)->UrlOf(object.key);
    // Looked at first, as the upload step does: not every S3-compatible store honours the
    // condition of PutIfAbsent.
    auto present = (*store)->Stat(object.key);
    if (!present) return Fail(fmt::format("cannot read {}: {}", url, present.error()));
    if (*present) {
      // Its ETag goes to CodeDeploy, which refuses the object should it change after this.
      auto there = (*store)->Get(object.key);
      if (!there) return Fail(fmt::format("cannot read {}: {}", url, there.error()));
      if (std::string digest = Sha256Hex(*there); digest != object.sha256) {
        return Fail(fmt::format(
            "{} holds other bytes than the build published (sha256 {}, the manifest says {}): "
            "refusing to deploy them; remove that object or use another revision_store",
            url, digest, object.sha256));
      }
      etag = (*present)->etag;
      version.clear();  // the latest, which holds these bytes
      log(fmt::format("revision already at {}, the same bytes (sha256 {})", url, object.sha256));
    } else {
      auto copied = (*store)->PutIfAbsent(object.key, bytes, "application/zip");
      if (!copied) {
        return Fail(fmt::format("cannot copy the revision to {}: {}", url, copied.error()));
      }
      if (!*copied) {
        return Fail(fmt::format(
            "another deploy copied the revision to {} at the same time: deploy again", url));
      }
      etag = (*copied)->etag;
      version = (*copied)->version_id;
      log(fmt::format("revision copied to {} (sha256 {})", url, object.sha256));
    }
  }
  auto location = aws::ParseS3Url(url);  // S3, as DeployBuild checked before any AWS call
  if (!location) return Fail(location.error());
  aws::S3Revision revision;
  revision.bucket = location->bucket;
  revision.key = location->key;
  revision.etag = etag;
  std::erase(revision.etag, '"');
  revision.version = version;
  return revision;
}

// The checks that refuse a deploy before any AWS call.
Status Admit(const DeployBuildRequest& request, const Manifest& manifest, Ledger& ledger) {
  const DeployEnvironment& env = request.environment;
  const std::string& branch = manifest.build.branch;
  if (!env.branches.empty() && !AnyMatch(env.branches, branch)) {
    return Fail(fmt::format("environment {} takes builds of {} only; {} is of branch '{}'",
                            env.name, fmt::join(env.branches, ", "), manifest.build.id, branch));
  }
  auto paused = ledger.Paused(env.name);
  if (!paused) return Fail(paused.error());
  if (*paused) {
    return Fail(fmt::format(
        "environment {} is paused since {} by {}: {} (runner deploy "
        "--resume {} allows deploys again)",
        env.name, FormatTimestamp((*paused)->since), (*paused)->who, (*paused)->reason, env.name));
  }
  for (const std::string& required : env.required) {
    auto done = ledger.Succeeded(required, manifest.build.id);
    if (!done) return Fail(done.error());
    if (!*done) {
      return Fail(
          fmt::format("environment {} requires {} first: {} has not been deployed there "
                      "with success",
                      env.name, required, manifest.build.id));
    }
  }
  return {};
}

}  // namespace

std::string DeployerName(const Environment& env) {
  std::string user = Lookup(env, "USER").value_or(Lookup(env, "LOGNAME").value_or("unknown"));
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return user + "@" + host;
}

Result<DeployBuildResult> DeployBuild(const DeployBuildRequest& request) {
  auto log = [&](std::string_view line) {
    if (request.log) request.log(line);
  };
  const DeployEnvironment& env = request.environment;
  ArtifactStoreOptions store_options;
  store_options.workspace = request.workspace;
  store_options.env = request.env;
  store_options.region = env.region;
  store_options.cancelled = request.cancelled;

  // 1. The build's own bytes.
  auto [store_url, manifest_name] = SplitManifestUrl(request.manifest_url);
  auto store = OpenArtifactStore(store_url, store_options);
  if (!store) return Fail(store.error());
  auto manifest_text = (*store)->Get(manifest_name);
  if (!manifest_text) {
    return Fail(fmt::format("cannot read the build's manifest {}: {}", request.manifest_url,
                            manifest_text.error()));
  }
  auto manifest = ParseManifest(*manifest_text, request.manifest_url);
  if (!manifest) return Fail(manifest.error());
  auto template_body = ReadChecked(**store, *manifest, request.template_name);
  if (!template_body) return Fail(template_body.error());
  Parameters parameters;
  if (!request.params_name.empty()) {
    auto params_text = ReadChecked(**store, *manifest, request.params_name);
    if (!params_text) return Fail(params_text.error());
    auto params = ParseParamsFile(*params_text, request.params_name);
    if (!params) return Fail(params.error());
    parameters = params->parameters.entries();
  }
  if (Status taken = TakeRegionalAmis(*manifest, env, parameters, log); !taken) {
    return Fail(taken.error());
  }
  for (const auto& [key, value] : env.params) {
    auto it = std::ranges::find(parameters, key, &Parameters::value_type::first);
    if (it == parameters.end()) {
      parameters.emplace_back(key, value);
    } else {
      it->second = value;
    }
  }

  // The revision: its bytes checked like the rest; in S3 (CodeDeploy reads it there), in the
  // environment's region (copied there when it has a `revision_store`).
  std::optional<std::string> revision_bytes;
  if (!request.revision_name.empty()) {
    if (!env.codedeploy) {
      return Fail(fmt::format("environment {} has no `codedeploy:` to deploy the revision {} with",
                              env.name, request.revision_name));
    }
    auto bytes = ReadChecked(**store, *manifest, request.revision_name);
    if (!bytes) return Fail(bytes.error());
    const ManifestObject& object = *manifest->Find(request.revision_name);
    if (env.codedeploy->revision_store.empty() && !aws::ParseS3Url(object.url)) {
      return Fail(
          fmt::format("the revision {} is stored only at {}: CodeDeploy reads revisions "
                      "from S3, so publish the build to an s3:// store",
                      request.revision_name, object.url));
    }
    revision_bytes = std::move(*bytes);
  }

  // 2. What refuses a deploy before any AWS call.
  auto ledger = Ledger::Open(request.ledger, request.state_dir, store_options);
  if (!ledger) return Fail(ledger.error());
  if (auto admitted = Admit(request, *manifest, *ledger); !admitted) return Fail(admitted.error());
  Diagnostics lint(request.template_name, *template_body);
  LintTemplate(*template_body, lint);
  if (lint.HasErrors()) {
    return Fail(fmt::format("the template fails the blue-green lint:\n{}", lint.Format()));
  }
  if (!lint.diagnostics().empty()) log(lint.Format());
  // The checked bytes themselves go to CloudFormation (TemplateBody), so no other account or
  // region needs to read the build's store; only a template too large for that is read from S3.
  std::string template_url;
  if (template_body->size() > kMaxTemplateBody) {
    template_url = TemplateUrl(*manifest->Find(request.template_name), env.region, request.env);
    if (template_url.empty()) {
      return Fail(
          fmt::format("{} is {} bytes: a template over {} bytes must be published to S3 "
                      "for CloudFormation to read it",
                      request.template_name, template_body->size(), kMaxTemplateBody));
    }
  }

  // 3. AWS, as the environment's role when it has one.
  aws::AwsConnection connection = aws::ConnectAws(request.env);
  aws::HttpClient* http = connection.http;
  aws::CredentialsProvider* credentials = connection.credentials;
  std::unique_ptr<aws::StsClient> sts;
  std::unique_ptr<aws::AssumeRoleCredentialsProvider> assumed;
  if (!env.role_arn.empty()) {
    auto sts_options = ClientOptions<aws::StsOptions>(env.region, request.env, "STS");
    auto client = aws::StsClient::Create(*http, *connection.credentials, sts_options);
    if (!client) return Fail(client.error());
    sts = std::move(*client);
    aws::AssumeRoleRequest assume;
    assume.role_arn = env.role_arn;
    assume.session_name = "runner-" + env.name;
    assumed = std::make_unique<aws::AssumeRoleCredentialsProvider>(*sts, assume);
    credentials = assumed.get();
    log(fmt::format("as {}", env.role_arn));
  }
  auto cfn_options =
      ClientOptions<aws::CloudFormationOptions>(env.region, request.env, "CLOUDFORMATION");
  auto cfn = aws::CloudFormationClient::Create(*http, *credentials, cfn_options);
  if (!cfn) return Fail(cfn.error());
  auto asg_options =
      ClientOptions<aws::AutoScalingOptions>(env.region, request.env, "AUTO_SCALING");
  auto asg = aws::AutoScalingClient::Create(*http, *credentials, asg_options);
  if (!asg) return Fail(asg.error());

  std::optional<aws::S3Revision> revision;
  if (revision_bytes) {
    ArtifactStoreOptions copy_options = store_options;
    copy_options.http = http;
    copy_options.credentials = credentials;
    auto in_region = RevisionIn(env, *manifest->Find(request.revision_name), *revision_bytes,
                                std::move(copy_options), log);
    if (!in_region) return Fail(in_region.error());
    revision = std::move(*in_region);
  }

  StackDeployRequest stack;
  stack.stack = env.stack;
  stack.template_body = *template_body;
  stack.template_url = template_url;
  stack.parameters = std::move(parameters);
  stack.capabilities = env.capabilities;
  stack.build_id = manifest->build.id;
  stack.poll_interval = request.poll_interval;
  stack.kill_grace = request.kill_grace;
  stack.log = request.log;
  stack.cancelled = request.cancelled;

  LedgerEntry entry;
  entry.env = env.name;
  entry.build_id = manifest->build.id;
  entry.project = manifest->build.project;
  entry.branch = manifest->build.branch;
  entry.commit = manifest->build.commit;
  entry.who = request.who;
  entry.started = std::chrono::system_clock::now();
  entry.deploy_id = DeployId(entry.started, entry.build_id);
  log(fmt::format("deploying {} to {} (stack {} in {})", entry.build_id, env.name, env.stack,
                  env.region));
  auto deployed = DeployStack(**cfn, **asg, stack);
  entry.finished = std::chrono::system_clock::now();
  if (deployed) {
    entry.outcome = deployed->changed ? DeployOutcome::kSuccess : DeployOutcome::kNoChange;
    entry.changed = deployed->changed;
    for (const auto& [key, value] : deployed->outputs) entry.outputs.emplace_back(key, value);
  }
  std::string deployment_id;
  if (deployed && revision) {
    auto cd_options = ClientOptions<aws::CodeDeployOptions>(env.region, request.env, "CODEDEPLOY");
    auto codedeploy = aws::CodeDeployClient::Create(*http, *credentials, cd_options);
    RevisionDeployRequest revision_request;
    revision_request.application = env.codedeploy->application;
    revision_request.group = env.codedeploy->group;
    revision_request.config = env.codedeploy->config;
    // The loader admitted only CodeDeploy's names.
    revision_request.file_exists = aws::ParseFileExistsBehavior(env.codedeploy->file_exists);
    revision_request.revision = *revision;
    revision_request.description = manifest->build.id;
    revision_request.poll_interval = request.poll_interval;
    revision_request.kill_grace = request.kill_grace;
    revision_request.log = request.log;
    revision_request.cancelled = request.cancelled;
    auto rolled = codedeploy ? DeployRevision(**codedeploy, revision_request)
                             : Result<RevisionDeployResult>(Fail(codedeploy.error()));
    entry.finished = std::chrono::system_clock::now();
    if (rolled) {
      deployment_id = rolled->deployment_id;
      entry.outputs.emplace_back("deployment_id", deployment_id);
      entry.changed = true;
      entry.outcome = DeployOutcome::kSuccess;
    } else {
      deployed = std::unexpected(rolled.error());
    }
  }
  if (!deployed) {
    bool cancelled = request.cancelled && request.cancelled();
    entry.outcome = cancelled ? DeployOutcome::kCancelled : DeployOutcome::kFailed;
    entry.message = deployed.error();
  }
  Status recorded = ledger->Record(entry);
  if (!deployed) {
    return Fail(recorded ? deployed.error()
                         : fmt::format("{} (and the ledger could not record it: {})",
                                       deployed.error(), recorded.error()));
  }
  if (!recorded) {
    return Fail(fmt::format("deployed, but the ledger could not record it: {}", recorded.error()));
  }
  return DeployBuildResult{std::move(*deployed), std::move(deployment_id), std::move(entry)};
}

}  // namespace runner::deploy
