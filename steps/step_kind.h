// TRANSITIONAL: the kinds' former interface (a load-time check on ConfigNode and a run-time
// parse of JSON), adapted to runner/step_kind.h until each kind reads its configuration with one
// Parse (TypedStepKind).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "runner/config_node.h"
#include "runner/step_kind.h"

namespace runner {

struct LegacyStepKind {
  std::string_view name;
  Duration default_kill_grace;
  void (*validate)(const ConfigNode& config, Diagnostics& diags);
  // `config` expanded: maps are objects (in file order), lists arrays, every scalar a string.
  Status (*execute)(const nlohmann::ordered_json& config, StepIo& io);
  std::vector<std::string> secret_env = {};
};

std::unique_ptr<StepKind> AdaptLegacyKind(const LegacyStepKind& kind);

}  // namespace runner
