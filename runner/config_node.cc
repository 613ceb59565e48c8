#include "runner/config_node.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "runner/expression.h"

namespace runner {

namespace {

std::string_view TypeName(ConfigNode::Type type) {
  switch (type) {
    case ConfigNode::Type::kScalar:
      return "a string";
    case ConfigNode::Type::kList:
      return "a list";
    case ConfigNode::Type::kMap:
      return "a mapping";
  }
  return "?";
}

bool Expect(const ConfigNode& node, ConfigNode::Type type, std::string_view what,
            Diagnostics& diags) {
  if (node.type == type) return true;
  diags.Error(node.where, fmt::format("expected {} for '{}', got {}", TypeName(type), what,
                                      TypeName(node.type)));
  return false;
}

}  // namespace

const ConfigNode* ConfigNode::Find(std::string_view key) const {
  for (const auto& [name, value] : fields) {
    if (name == key) return &value;
  }
  return nullptr;
}

bool ExpectScalar(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  return Expect(node, ConfigNode::Type::kScalar, what, diags);
}

bool ExpectList(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  return Expect(node, ConfigNode::Type::kList, what, diags);
}

bool ExpectMap(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  return Expect(node, ConfigNode::Type::kMap, what, diags);
}

void CheckKeys(const ConfigNode& map, const std::vector<std::string>& allowed,
               std::string_view what, Diagnostics& diags) {
  for (size_t i = 0; i < map.fields.size(); ++i) {
    const std::string& key = map.fields[i].first;
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    SourceLocation where = i < map.key_locations.size() ? map.key_locations[i] : map.where;
    diags.Error(where,
                fmt::format("unknown key '{}' in {}{}", key, what, DidYouMeanHint(key, allowed)));
  }
}

const ConfigNode* Require(const ConfigNode& map, std::string_view key, std::string_view what,
                          Diagnostics& diags) {
  const ConfigNode* node = map.Find(key);
  if (!node) diags.Error(map.where, fmt::format("{}: missing '{}'", what, key));
  return node;
}

std::optional<std::int64_t> ExpectInteger(const ConfigNode& node, std::string_view what,
                                          std::int64_t min, std::int64_t max, Diagnostics& diags) {
  if (!ExpectScalar(node, what, diags)) return std::nullopt;
  const std::string& text = node.scalar.text;
  if (!IsKnown(node)) return std::nullopt;
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    diags.Error(node.where, fmt::format("'{}' must be a whole number from {} to {}, got '{}'", what,
                                        min, max, text));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> ExpectBool(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  if (!ExpectScalar(node, what, diags)) return std::nullopt;
  if (node.scalar.text == "true") return true;
  if (node.scalar.text == "false") return false;
  diags.Error(node.where,
              fmt::format("'{}' must be true or false, got '{}'", what, node.scalar.text));
  return std::nullopt;
}

std::optional<std::vector<const ConfigNode*>> ExpectScalarOrList(const ConfigNode& node,
                                                                 std::string_view what,
                                                                 Diagnostics& diags) {
  std::vector<const ConfigNode*> out;
  if (node.type == ConfigNode::Type::kScalar) {
    out.push_back(&node);
    return out;
  }
  if (!ExpectList(node, what, diags)) return std::nullopt;
  bool ok = true;
  for (const ConfigNode& item : node.items) {
    ok = ExpectScalar(item, what, diags) && ok;
    out.push_back(&item);
  }
  if (!ok) return std::nullopt;
  return out;
}

void CollectScalars(const ConfigNode& node, std::vector<const TemplateString*>& out) {
  switch (node.type) {
    case ConfigNode::Type::kScalar:
      out.push_back(&node.scalar);
      break;
    case ConfigNode::Type::kList:
      for (const ConfigNode& item : node.items) CollectScalars(item, out);
      break;
    case ConfigNode::Type::kMap:
      for (const auto& [key, value] : node.fields) CollectScalars(value, out);
      break;
  }
}

bool IsKnown(const ConfigNode& node) { return node.expanded || !HasExpression(node.scalar.text); }

Result<ConfigNode> ExpandConfig(const ConfigNode& node, const NameLookup& lookup) {
  ConfigNode out;
  out.type = node.type;
  out.where = node.where;
  out.null = node.null;
  out.key_locations = node.key_locations;
  out.expanded = true;
  switch (node.type) {
    case ConfigNode::Type::kScalar: {
      auto value = node.expanded ? Result<std::string>(node.scalar.text)
                                 : ExpandTemplate(node.scalar.text, lookup);
      if (!value) return Fail(value.error());
      out.scalar = TemplateString{std::move(*value), node.scalar.where};
      break;
    }
    case ConfigNode::Type::kList:
      for (size_t i = 0; i < node.items.size(); ++i) {
        auto item = ExpandConfig(node.items[i], lookup);
        if (!item) return Fail(fmt::format("[{}]: {}", i, item.error()));
        out.items.push_back(std::move(*item));
      }
      break;
    case ConfigNode::Type::kMap:
      for (const auto& [key, value] : node.fields) {
        auto item = ExpandConfig(value, lookup);
        if (!item) return Fail(key + (item.error().starts_with("[") ? "" : ": ") + item.error());
        out.fields.emplace_back(key, std::move(*item));
      }
      break;
  }
  return out;
}

namespace {

nlohmann::ordered_json LocationToJson(SourceLocation where) {
  return nlohmann::ordered_json::array({where.line, where.column});
}

SourceLocation LocationFromJson(const nlohmann::ordered_json& json) {
  return {json.at(0).get<int>(), json.at(1).get<int>()};
}

ConfigNode NodeFromJson(const nlohmann::ordered_json& json) {
  ConfigNode node;
  node.expanded = json.at("expanded").get<bool>();
  node.where = LocationFromJson(json.at("at"));
  if (json.contains("s")) {
    node.scalar = TemplateString{json.at("s").get<std::string>(), node.where};
    node.null = json.value("null", false);
  } else if (json.contains("l")) {
    node.type = ConfigNode::Type::kList;
    for (const auto& item : json.at("l")) node.items.push_back(NodeFromJson(item));
  } else {
    node.type = ConfigNode::Type::kMap;
    for (const auto& field : json.at("m")) {
      node.key_locations.push_back(LocationFromJson(field.at(1)));
      node.fields.emplace_back(field.at(0).get<std::string>(), NodeFromJson(field.at(2)));
    }
  }
  return node;
}

}  // namespace

nlohmann::ordered_json ConfigToJson(const ConfigNode& node) {
  nlohmann::ordered_json json = {{"at", LocationToJson(node.where)}, {"expanded", node.expanded}};
  switch (node.type) {
    case ConfigNode::Type::kScalar:
      json["s"] = node.scalar.text;
      if (node.null) json["null"] = true;
      break;
    case ConfigNode::Type::kList:
      json["l"] = nlohmann::ordered_json::array();
      for (const ConfigNode& item : node.items) json["l"].push_back(ConfigToJson(item));
      break;
    case ConfigNode::Type::kMap:
      json["m"] = nlohmann::ordered_json::array();
      for (size_t i = 0; i < node.fields.size(); ++i) {
        SourceLocation key_where =
            i < node.key_locations.size() ? node.key_locations[i] : node.where;
        json["m"].push_back(
            {node.fields[i].first, LocationToJson(key_where), ConfigToJson(node.fields[i].second)});
      }
      break;
  }
  return json;
}

Result<ConfigNode> ConfigFromJson(const nlohmann::ordered_json& json) {
  try {
    return NodeFromJson(json);
  } catch (const nlohmann::json::exception& e) {
    return Fail(std::string("malformed step configuration: ") + e.what());
  }
}

}  // namespace runner
