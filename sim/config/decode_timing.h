// Decoding of a scenario's `timing` section (DecodeScenario's part). Internal to
// sim/config/.
#pragma once

#include <string>

#include "sim/config/map_reader.h"
#include "sim/config/scenario_config.h"

namespace kvsim {

// Decodes `timing` (r reads it) into t; a relative timing.profile resolves against
// base_dir. timing.calibration is left to DecodeScenario. Throws InputError naming
// the key path and line, for keys of earlier versions and keys the timing model does
// not read among them (unless `for_entries`: the config's compare entries may switch
// the timing model, so keys of others are kept for them).
void DecodeTiming(MapReader r, TimingConfig& t, const std::string& base_dir, bool for_entries);

}  // namespace kvsim
