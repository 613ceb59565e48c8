#include "steps/step_kind.h"

namespace runner {

namespace {

nlohmann::ordered_json PlainJson(const ConfigNode& node) {
  switch (node.type) {
    case ConfigNode::Type::kScalar:
      return node.scalar.text;
    case ConfigNode::Type::kList: {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const ConfigNode& item : node.items) list.push_back(PlainJson(item));
      return list;
    }
    case ConfigNode::Type::kMap: {
      nlohmann::ordered_json map = nlohmann::ordered_json::object();
      for (const auto& [key, item] : node.fields) map[key] = PlainJson(item);
      return map;
    }
  }
  return nullptr;
}

class LegacyAdapter : public StepKind {
 public:
  explicit LegacyAdapter(const LegacyStepKind& kind) : kind_(kind) {}
  std::string_view name() const override { return kind_.name; }
  Duration default_kill_grace() const override { return kind_.default_kill_grace; }
  std::vector<std::string> secret_env() const override { return kind_.secret_env; }
  void Check(const ConfigNode& config, Diagnostics& diags) const override {
    kind_.validate(config, diags);
  }
  Status Execute(const ConfigNode& config, StepIo& io) const override {
    return kind_.execute(PlainJson(config), io);
  }

 private:
  const LegacyStepKind& kind_;
};

}  // namespace

std::unique_ptr<StepKind> AdaptLegacyKind(const LegacyStepKind& kind) {
  return std::make_unique<LegacyAdapter>(kind);
}

}  // namespace runner
