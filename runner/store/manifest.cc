#include "runner/store/manifest.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace runner {

namespace {

using Json = nlohmann::ordered_json;

// Reads fields of one JSON object, naming the first missing or mistyped one.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string path) : object_(object), path_(std::move(path)) {}

  Status String(const char* name, std::string& out) const {
    auto it = object_.find(name);
    if (it == object_.end()) return Missing(name);
    if (!it->is_string()) return Wrong(name, "a string");
    out = it->get<std::string>();
    return {};
  }
  template <class Int>
  Status Unsigned(const char* name, Int& out) const {
    auto it = object_.find(name);
    if (it == object_.end()) return Missing(name);
    if (!it->is_number_unsigned()) return Wrong(name, "a non-negative integer");
    out = it->get<Int>();
    return {};
  }

 private:
  std::string Field(const char* name) const {
    return path_.empty() ? name : fmt::format("{}.{}", path_, name);
  }
  Status Missing(const char* name) const { return Fail(fmt::format("{} is missing", Field(name))); }
  Status Wrong(const char* name, const char* expected) const {
    return Fail(fmt::format("{}: expected {}, found {}", Field(name), expected,
                            object_.at(name).type_name()));
  }

  const Json& object_;
  std::string path_;
};

Status ParseObject(const Json& json, size_t index, ManifestObject& object) {
  std::string path = fmt::format("objects[{}]", index);
  if (!json.is_object()) return Fail(fmt::format("{}: expected an object", path));
  FieldReader fields(json, path);
  for (auto [name, out] : {std::pair{"name", &object.name}, std::pair{"key", &object.key},
                           std::pair{"url", &object.url}, std::pair{"source", &object.source},
                           std::pair{"sha256", &object.sha256}, std::pair{"etag", &object.etag}}) {
    if (Status ok = fields.String(name, *out); !ok) return ok;
  }
  if (Status ok = fields.Unsigned("size", object.size); !ok) return ok;
  if (Status ok = fields.Unsigned("parts", object.parts); !ok) return ok;
  if (!json.contains("version_id")) return {};
  return fields.String("version_id", object.version_id);
}

}  // namespace

ManifestBuild ManifestBuildOf(const BuildContext& build) {
  return {build.project, build.branch, build.commit, build.number,
          build.id,      build.event,  build.trigger};
}

const ManifestObject* Manifest::Find(std::string_view name) const {
  for (const ManifestObject& object : objects) {
    if (object.name == name) return &object;
  }
  return nullptr;
}

const std::string* Manifest::AmiIn(std::string_view region) const {
  for (const auto& [where, ami] : amis) {
    if (where == region) return &ami;
  }
  return nullptr;
}

std::string RenderManifest(const Manifest& manifest) {
  Json json;
  json["version"] = manifest.version;
  const ManifestBuild& build = manifest.build;
  json["build"] = {{"project", build.project}, {"branch", build.branch}, {"commit", build.commit},
                   {"number", build.number},   {"id", build.id},         {"event", build.event},
                   {"trigger", build.trigger}};
  json["url"] = manifest.url;
  json["created"] = manifest.created;
  Json list = Json::array();
  for (const ManifestObject& object : manifest.objects) {
    list.push_back({{"name", object.name},
                    {"key", object.key},
                    {"url", object.url},
                    {"source", object.source},
                    {"size", object.size},
                    {"sha256", object.sha256},
                    {"etag", object.etag},
                    {"parts", object.parts}});
    if (!object.version_id.empty()) list.back()["version_id"] = object.version_id;
  }
  json["objects"] = std::move(list);
  if (!manifest.amis.empty()) {
    Json amis = Json::object();
    for (const auto& [region, ami] : manifest.amis) amis[region] = ami;
    json["amis"] = std::move(amis);
  }
  // Names are bytes from the file system: replace what is not UTF-8 rather than throw.
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Manifest> ParseManifest(std::string_view text, std::string_view where) {
  auto fail = [&](std::string_view what) { return Fail(fmt::format("{}: {}", where, what)); };
  Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded()) {
    return fail("not valid JSON: is this a manifest.json written by the upload step?");
  }
  if (!json.is_object()) return fail("expected a JSON object");
  Manifest manifest;
  FieldReader top(json, "");
  if (Status ok = top.Unsigned("version", manifest.version); !ok) return fail(ok.error());
  if (manifest.version != kManifestVersion) {
    return fail(
        fmt::format("version {} is not supported (this runner reads version {}): use "
                    "the runner that published the build",
                    manifest.version, kManifestVersion));
  }
  auto build = json.find("build");
  if (build == json.end() || !build->is_object()) return fail("build: expected an object");
  FieldReader build_fields(*build, "build");
  ManifestBuild& b = manifest.build;
  for (auto [name, out] :
       {std::pair{"project", &b.project}, std::pair{"branch", &b.branch},
        std::pair{"commit", &b.commit}, std::pair{"number", &b.number}, std::pair{"id", &b.id},
        std::pair{"event", &b.event}, std::pair{"trigger", &b.trigger}}) {
    if (Status ok = build_fields.String(name, *out); !ok) return fail(ok.error());
  }
  if (Status ok = top.String("url", manifest.url); !ok) return fail(ok.error());
  if (Status ok = top.String("created", manifest.created); !ok) return fail(ok.error());
  auto objects = json.find("objects");
  if (objects == json.end() || !objects->is_array()) return fail("objects: expected a list");
  for (size_t i = 0; i < objects->size(); ++i) {
    ManifestObject object;
    if (Status ok = ParseObject((*objects)[i], i, object); !ok) return fail(ok.error());
    if (manifest.Find(object.name) != nullptr) {
      return fail(fmt::format("objects[{}]: a second object named '{}'", i, object.name));
    }
    manifest.objects.push_back(std::move(object));
  }
  if (auto amis = json.find("amis"); amis != json.end()) {
    if (!amis->is_object()) return fail("amis: expected an object of REGION: AMI");
    for (const auto& [region, ami] : amis->items()) {
      if (!ami.is_string()) return fail(fmt::format("amis.{}: expected a string", region));
      manifest.amis.emplace_back(region, ami.get<std::string>());
    }
  }
  return manifest;
}

}  // namespace runner
