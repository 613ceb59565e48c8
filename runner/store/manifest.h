// manifest.json, the record of a published build (SPEC sections 6 and 7): the build it came
// from and every object's name, key, size, sha256 and ETag, so that a deployer or a rollback
// can find the objects and check their bytes. Written by `upload`, read by any later step or
// command.
//
// {"version": 1, "build": {project, branch, commit, number, id, event, trigger},
//  "url": TO, "created": ISO-8601 UTC, "objects": [{"name", "key", "url", "source", "size",
//  "sha256", "etag", "parts", "version_id"}], "amis": {REGION: AMI}}
// `amis` (written only when the upload step was given them) are the AMIs the build baked, one
// per region: a deploy to an environment in another region takes the AMI of that region.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/build_context.h"
#include "runner/result.h"

namespace runner {

inline constexpr int kManifestVersion = 1;

// The build a manifest belongs to: BuildContext's identifying fields.
struct ManifestBuild {
  std::string project;
  std::string branch;
  std::string commit;
  std::string number;
  std::string id;
  std::string event;
  std::string trigger;
};
ManifestBuild ManifestBuildOf(const BuildContext& build);

// One published object.
struct ManifestObject {
  std::string name;    // the path below the store's prefix
  std::string key;     // the S3 key (for a local store, the name)
  std::string url;     // s3://bucket/key or file:///dir/name
  std::string source;  // the file as listed, relative to the workspace
  std::uint64_t size = 0;
  std::string sha256;      // hex
  std::string etag;        // S3's, quotes included (a local store records the quoted MD5)
  int parts = 0;           // 0 for a single PUT
  std::string version_id;  // S3's, in a versioned bucket; empty (and not written): none
};

struct Manifest {
  int version = kManifestVersion;
  ManifestBuild build;
  std::string url;      // the store prefix, ending in '/'
  std::string created;  // ISO-8601 UTC
  std::vector<ManifestObject> objects;
  std::vector<std::pair<std::string, std::string>> amis;  // region, AMI id; in the bake's order

  // The object named `name`, or nullptr.
  const ManifestObject* Find(std::string_view name) const;
  // The AMI baked in `region`, or nullptr.
  const std::string* AmiIn(std::string_view region) const;
};

// manifest.json's text: 2-space indented, a trailing newline, fields in the order above.
// Invalid UTF-8 in names becomes U+FFFD.
std::string RenderManifest(const Manifest& manifest);

// Reads manifest.json's text. `where` (its URL) starts every message; a failure names the
// field ("objects[2].size: expected a non-negative integer") and what to do. A version other
// than kManifestVersion is refused.
Result<Manifest> ParseManifest(std::string_view text, std::string_view where);

}  // namespace runner
