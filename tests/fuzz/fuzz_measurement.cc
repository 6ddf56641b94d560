// Fuzz target: the measured-run loaders of `kvsim fit` (LoadMeasuredRequests,
// sim/fit/measurement.h). The input is written to a file and loaded in every format;
// what loads is checked against the promises of measurement.h.
#include <cmath>

#include "sim/fit/measurement.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  for (const EnumName<MeasurementFormat>& entry : kMeasurementFormats.entries()) {
    const char* name = entry.name;
    const MeasurementFormat format = entry.value;
    const std::string path = WriteScratchFile(std::string("measured_") + name, AsText(data, size));
    ExpectOnlyInputErrors(name, [&] {
      const MeasuredRequests m = LoadMeasuredRequests(path, format);
      KVSIM_FUZZ_EXPECT(m.format == format, "another format than asked for");
      KVSIM_FUZZ_EXPECT(!m.requests.empty(), "an empty run");
      for (size_t i = 0; i < m.requests.size(); ++i) {
        const MeasuredRequest& r = m.requests[i];
        KVSIM_FUZZ_EXPECT(r.prompt_tokens > 0 && r.output_tokens > 0, "a token count below 1");
        KVSIM_FUZZ_EXPECT(std::isfinite(r.ttft_s) && r.ttft_s >= 0, "a TTFT not finite or < 0");
        KVSIM_FUZZ_EXPECT(std::isfinite(r.e2e_s) && r.e2e_s >= r.ttft_s,
                          "an E2E not finite or below the TTFT");
        KVSIM_FUZZ_EXPECT(std::isfinite(r.arrival_s) && r.arrival_s >= 0,
                          "an arrival not finite or < 0");
        KVSIM_FUZZ_EXPECT(i == 0 || r.arrival_s >= m.requests[i - 1].arrival_s,
                          "requests not sorted by arrival");
        for (double itl : r.itls_s) {
          KVSIM_FUZZ_EXPECT(std::isfinite(itl) && itl >= 0, "an ITL not finite or < 0");
        }
      }
      KVSIM_FUZZ_EXPECT(m.requests.front().arrival_s == 0 || !m.arrivals_recorded,
                        "the first arrival is not 0");
    });
  }
  return 0;
}
