// Calibration files: LoadCalibration reads what CalibrationYaml writes, rejects
// malformed files naming file:line and key, and DecodeScenario applies a scenario's
// `timing.calibration` (shared terms, the terms of its own GPU card, overrides
// winning, conflicts and timing-model mismatches refused).
#include "sim/config/calibration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/scenario_config.h"
#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr const char* kModelsDir = KVSIM_SOURCE_DIR "/models";

std::string Normal(const std::string& path) { return fs::path(path).lexically_normal().string(); }

// ---------------------------------------------------------------------------
// Reading calibration files

// Terms of every kind, two GPU cards, and the informational fields.
Calibration SampleCalibration() {
  Calibration c;
  c.fit_file = "/fits/h100.yaml";
  c.runs = {"h100_low", "h100_high"};
  c.models = {"Llama-3-8B"};
  c.gpus = {"H100-SXM", "RTX-4090"};
  c.timing_type = "profiled";
  c.engine_preset = "eager";
  c.engine_kernels =
      EngineKernels{.cuda_graphs = false, .fused_kernels = false, .kernels_per_layer = 35};
  c.hosts = {"H100-SXM: 2 x Intel Xeon Platinum 8480C (DGX H100) (speed 1)",
             "RTX-4090: the host deployment.host_cpu_speed sets (speed 0.8)"};
  c.terms = {{"timing.engine.per_seq_s", 1.25e-5}, {"timing.engine.launch_per_layer_s", 4e-5}};
  c.gpu_terms = {
      {"H100-SXM",
       {{"timing.roofline.gemm_efficiency", 0.7}, {"timing.allreduce.latency_s", 8e-6}}},
      {"RTX-4090", {{"timing.profiled.memory_efficiency", 0.85}}},
  };
  c.residuals_yaml = "h100_low:\n  ttft_s.mean: 0.03";
  c.holdout_yaml = "h100_high:\n  e2e_s.p99: -0.05";
  return c;
}

TEST(CalibrationTest, LoadCalibrationReadsBackWhatCalibrationYamlWrites) {
  TempDir dir;
  const Calibration written = SampleCalibration();
  const std::string path = dir.Write("cal.yaml", CalibrationYaml(written));

  const Calibration c = LoadCalibration(path);
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.fit_file, "/fits/h100.yaml");
  EXPECT_THAT(c.runs, ElementsAre("h100_low", "h100_high"));
  EXPECT_THAT(c.models, ElementsAre("Llama-3-8B"));
  EXPECT_THAT(c.gpus, ElementsAre("H100-SXM", "RTX-4090"));
  EXPECT_THAT(c.tensor_parallel, IsEmpty());  // the sample records none
  EXPECT_EQ(c.timing_type, "profiled");
  EXPECT_EQ(c.engine_preset, "eager");
  ASSERT_TRUE(c.engine_kernels.has_value());
  EXPECT_EQ(*c.engine_kernels, *written.engine_kernels);
  EXPECT_THAT(c.hosts,
              ElementsAre("H100-SXM: 2 x Intel Xeon Platinum 8480C (DGX H100) (speed 1)",
                          "RTX-4090: the host deployment.host_cpu_speed sets (speed 0.8)"));
  EXPECT_THAT(c.terms, ElementsAre(Pair("timing.engine.per_seq_s", 1.25e-5),
                                   Pair("timing.engine.launch_per_layer_s", 4e-5)));
  ASSERT_EQ(c.gpu_terms.size(), 2u);
  EXPECT_EQ(c.gpu_terms[0].first, "H100-SXM");
  EXPECT_THAT(c.gpu_terms[0].second, ElementsAre(Pair("timing.roofline.gemm_efficiency", 0.7),
                                                 Pair("timing.allreduce.latency_s", 8e-6)));
  EXPECT_EQ(c.gpu_terms[1].first, "RTX-4090");
  EXPECT_THAT(c.gpu_terms[1].second, ElementsAre(Pair("timing.profiled.memory_efficiency", 0.85)));
  EXPECT_EQ(c.residuals_yaml, written.residuals_yaml);
  EXPECT_EQ(c.holdout_yaml, written.holdout_yaml);
}

TEST(CalibrationTest, TheFittedRunsTensorParallelismReadsBack) {
  TempDir dir;
  Calibration written = SampleCalibration();
  written.tensor_parallel = {1, 4};
  const Calibration c = LoadCalibration(dir.Write("cal.yaml", CalibrationYaml(written)));
  EXPECT_THAT(c.tensor_parallel, ElementsAre(1, 4));
}

TEST(CalibrationTest, ACalibrationWithOnlyGpuTermsAndNoFitFileReadsBack) {
  TempDir dir;
  Calibration written;
  written.timing_type = "roofline";
  written.engine_preset = "vllm_v1";
  written.gpu_terms = {{"L40S", {{"timing.engine.kernel_gap_s", 2e-6}}}};
  const Calibration c = LoadCalibration(dir.Write("cal.yaml", CalibrationYaml(written)));
  EXPECT_EQ(c.fit_file, "");
  EXPECT_FALSE(c.engine_kernels.has_value());  // a file written before kvsim recorded them
  EXPECT_THAT(c.hosts, IsEmpty());
  EXPECT_THAT(c.runs, IsEmpty());
  EXPECT_THAT(c.terms, IsEmpty());
  ASSERT_EQ(c.gpu_terms.size(), 1u);
  EXPECT_EQ(c.gpu_terms[0].first, "L40S");
  EXPECT_THAT(c.gpu_terms[0].second, ElementsAre(Pair("timing.engine.kernel_gap_s", 2e-6)));
  EXPECT_EQ(c.residuals_yaml, "");
  EXPECT_EQ(c.holdout_yaml, "");
}

TEST(CalibrationTest, FittableTermsKnowWhichTermsArePerGpu) {
  ASSERT_NE(FindFittableTerm("timing.engine.per_seq_s"), nullptr);
  EXPECT_FALSE(FindFittableTerm("timing.engine.per_seq_s")->per_gpu);
  EXPECT_DOUBLE_EQ(FindFittableTerm("timing.engine.per_seq_s")->max_value, 1e-3);
  ASSERT_NE(FindFittableTerm("timing.roofline.gemm_efficiency"), nullptr);
  EXPECT_TRUE(FindFittableTerm("timing.roofline.gemm_efficiency")->per_gpu);
  EXPECT_DOUBLE_EQ(FindFittableTerm("timing.roofline.gemm_efficiency")->min_value, 0.05);
  EXPECT_EQ(FindFittableTerm("timing.engine.preset"), nullptr);
  EXPECT_EQ(FindFittableTerm("timing.engine"), nullptr);
}

// The message LoadCalibration gives for `yaml` written to `dir`/cal.yaml.
std::string LoadError(const TempDir& dir, const std::string& yaml) {
  const std::string path = dir.Write("cal.yaml", yaml);
  return InputErrorMessage([&] { LoadCalibration(path); });
}

TEST(CalibrationTest, AMissingFileIsAnErrorNamingIt) {
  TempDir dir;
  const std::string path = dir.PathOf("no_such_cal.yaml");
  EXPECT_THAT(InputErrorMessage([&] { LoadCalibration(path); }), HasSubstr(path));
}

TEST(CalibrationTest, AFileWithoutTheFormatVersionIsAnError) {
  TempDir dir;
  const std::string message = LoadError(dir,
                                        "fitted_on:\n"
                                        "  timing_type: roofline\n"
                                        "  engine_preset: vllm_v1\n"
                                        "terms:\n"
                                        "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ": kvsim_calibration: required"));
}

TEST(CalibrationTest, FormatVersionThreeIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir,
                                        "kvsim_calibration: 3\n"
                                        "fitted_on:\n"
                                        "  timing_type: roofline\n"
                                        "  engine_preset: vllm_v1\n"
                                        "terms:\n"
                                        "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":1: kvsim_calibration: required, and 2 (or 1, written by an "
                                 "earlier kvsim fit)"));
}

// ---------------------------------------------------------------------------
// Incomplete calibrations: format 2 lists its terms and ends with an end marker;
// format 1 (earlier kvsim fits) always ends with its residuals.

// SampleCalibration() as CalibrationYaml writes it, line by line:
//   1-3 header comment, 4 kvsim_calibration: 2, 5-13 fitted_on, 14-15 fitted_terms,
//   16-19 terms (per_seq_s on 18), 20-26 gpu_terms (H100-SXM's all-reduce latency
//   on 24), 27-30 residuals, 31-34 holdout, 35 the end marker.
std::string SampleYaml() { return CalibrationYaml(SampleCalibration()); }

// `text` without its line `line` (1-based).
std::string WithoutLine(const std::string& text, int line) {
  size_t start = 0;
  for (int i = 1; i < line; ++i) start = text.find('\n', start) + 1;
  return text.substr(0, start) + text.substr(text.find('\n', start) + 1);
}

TEST(CalibrationTest, CalibrationYamlListsItsTermsAndEndsWithTheEndMarker) {
  const std::string text = SampleYaml();
  EXPECT_THAT(text, HasSubstr("\nkvsim_calibration: 2\n"));
  EXPECT_THAT(text, HasSubstr("\nfitted_terms: [\"timing.engine.per_seq_s\", "
                              "\"timing.engine.launch_per_layer_s\", "
                              "\"timing.roofline.gemm_efficiency @ H100-SXM\", "
                              "\"timing.allreduce.latency_s @ H100-SXM\", "
                              "\"timing.profiled.memory_efficiency @ RTX-4090\"]\n"));
  EXPECT_THAT(text, ::testing::EndsWith("\n# end of kvsim calibration\n"));
  EXPECT_THAT(WithoutLine(text, 18), Not(HasSubstr("  timing.engine.per_seq_s: ")));
  EXPECT_THAT(WithoutLine(text, 24), Not(HasSubstr("  timing.allreduce.latency_s: ")));
}

TEST(CalibrationTest, ACalibrationCutAfterItsFirstTermIsAnErrorSayingItIsCutShort) {
  TempDir dir;
  const std::string text = SampleYaml();
  const size_t first_term = text.find("  timing.engine.per_seq_s: ");
  const std::string message = LoadError(dir, text.substr(0, text.find('\n', first_term) + 1));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ": ends without the line '# end of kvsim calibration' that "
                                 "kvsim fit writes last: the calibration is cut short (it ends at "
                                 "line 18); run kvsim fit again"));
}

TEST(CalibrationTest, EveryCalibrationCutShortAnywhereIsRefused) {
  TempDir dir;
  const std::string text = SampleYaml();
  ASSERT_NO_THROW(LoadCalibration(dir.Write("cal.yaml", text)));
  // Without its final newline nothing is lost; any shorter prefix loses the marker.
  ASSERT_NO_THROW(LoadCalibration(dir.Write("cal.yaml", text.substr(0, text.size() - 1))));
  for (size_t size = 0; size + 1 < text.size(); ++size) {
    const std::string path = dir.Write("cal.yaml", text.substr(0, size));
    EXPECT_THROW(LoadCalibration(path), InputError) << "cut after " << size << " bytes";
  }
}

TEST(CalibrationTest, LinesAfterTheEndMarkerAreAnErrorNamingBothLines) {
  TempDir dir;
  const std::string message = LoadError(dir, SampleYaml() + "\n# another file\n");
  EXPECT_THAT(message,
              HasSubstr(dir.PathOf("cal.yaml") + ":37: lines after the end marker of line 35"));
}

TEST(CalibrationTest, ATermDeletedFromTheMiddleIsAnErrorNamingItsKeyPath) {
  TempDir dir;
  const std::string message = LoadError(dir, WithoutLine(SampleYaml(), 24));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":15: fitted_terms: lists timing.allreduce.latency_s @ H100-SXM, "
                                 "but the file has no gpu_terms.H100-SXM.timing.allreduce."
                                 "latency_s: the calibration is incomplete (cut short or edited); "
                                 "run kvsim fit again"));
}

TEST(CalibrationTest, ATermMissingFromFittedTermsIsAnErrorNamingIt) {
  TempDir dir;
  std::string text = SampleYaml();
  const std::string listed = "\"timing.engine.launch_per_layer_s\", ";
  text.erase(text.find(listed), listed.size());
  const std::string message = LoadError(dir, text);
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":15: fitted_terms: does not list "
                                 "timing.engine.launch_per_layer_s, which the file sets "
                                 "(terms.timing.engine.launch_per_layer_s)"));
}

TEST(CalibrationTest, AFormatTwoCalibrationWithoutFittedTermsIsAnError) {
  TempDir dir;
  const std::string message = LoadError(dir, WithoutLine(SampleYaml(), 15));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ": fitted_terms: required"));
}

// What kvsim fit wrote before format 2 (the review's calibration, abridged).
constexpr const char* kFormatOne =
    "kvsim_calibration: 1\n"
    "fitted_on:\n"
    "  runs: [\"synth\"]\n"
    "  timing_type: profiled\n"
    "  engine_preset: vllm_v1\n"
    "  engine_kernels: {cuda_graphs: true, fused_kernels: true, kernels_per_layer: 10}\n"
    "terms:\n"
    "  timing.engine.per_iteration_s: 0.0010580006199929874  # CPU time per iteration\n"
    "  timing.engine.per_seq_s: 1.4381558506763805e-05  # CPU time per sequence\n"
    "residuals:\n"
    "  synth: {ttft_s.mean: 0.0022, e2e_s.p99: -0.0002}\n";

TEST(CalibrationTest, AFormatOneCalibrationFromAnEarlierKvsimFitIsStillRead) {
  TempDir dir;
  const Calibration c = LoadCalibration(dir.Write("cal.yaml", kFormatOne));
  EXPECT_THAT(c.terms, ElementsAre(Pair("timing.engine.per_iteration_s", 0.0010580006199929874),
                                   Pair("timing.engine.per_seq_s", 1.4381558506763805e-05)));
}

TEST(CalibrationTest, AFormatOneCalibrationCutAfterItsFirstTermIsRefused) {
  TempDir dir;
  const std::string text = kFormatOne;
  const size_t first_term = text.find("  timing.engine.per_iteration_s: ");
  const std::string message = LoadError(dir, text.substr(0, text.find('\n', first_term) + 1));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ": residuals: missing: kvsim fit writes them after the terms, so "
                                 "this format-1 calibration is cut short (and may have lost "
                                 "terms); run kvsim fit again"));
}

// A format-1 calibration up to its terms (lines 1-4); tests append from line 5 what is
// refused before its missing residuals are.
constexpr const char* kHeader =
    "kvsim_calibration: 1\n"
    "fitted_on:\n"
    "  timing_type: roofline\n"
    "  engine_preset: vllm_v1\n";

TEST(CalibrationTest, UnknownTopLevelKeyIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "terms:\n"
                                                 "  timing.engine.per_seq_s: 2.0e-05\n"
                                                 "notes: fitted on Tuesday\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ":7: notes: unknown key"));
}

TEST(CalibrationTest, UnknownKeyUnderFittedOnIsAnErrorNamingItsPath) {
  TempDir dir;
  const std::string message = LoadError(dir,
                                        "kvsim_calibration: 1\n"
                                        "fitted_on:\n"
                                        "  timing_type: roofline\n"
                                        "  engine_preset: vllm_v1\n"
                                        "  date: 2025-01-01\n"
                                        "terms:\n"
                                        "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ":5: fitted_on.date: unknown key"));
}

TEST(CalibrationTest, ATermThatIsNotFittableIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "terms:\n"
                                                 "  timing.engine.per_seq_s: 2.0e-05\n"
                                                 "  timing.engine.preset: vllm_v1\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":7: terms.timing.engine.preset: not a term kvsim fit can "
                                 "calibrate"));
}

TEST(CalibrationTest, APerGpuTermUnderTermsIsAnErrorPointingToGpuTerms) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "terms:\n"
                                                 "  timing.roofline.gemm_efficiency: 0.6\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":6: terms.timing.roofline.gemm_efficiency: a per-GPU term"));
  EXPECT_THAT(message, HasSubstr("gpu_terms.<GPU card name>"));
}

TEST(CalibrationTest, AnEngineTermUnderGpuTermsIsAnErrorPointingToTerms) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "gpu_terms:\n"
                                                 "  H100-SXM:\n"
                                                 "    timing.engine.per_seq_s: 1.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":7: gpu_terms.H100-SXM.timing.engine.per_seq_s: an engine term"));
  EXPECT_THAT(message, HasSubstr("list it under terms"));
}

TEST(CalibrationTest, AValueOutsideItsTermsRangeIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "gpu_terms:\n"
                                                 "  H100-SXM:\n"
                                                 "    timing.roofline.gemm_efficiency: 1.5\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":7: gpu_terms.H100-SXM.timing.roofline.gemm_efficiency: must be "
                                 "in [0.05, 1], got 1.5"));
}

// Found by fuzzing (tests/fuzz/fuzz_calibration): a name that is not UTF-8 loaded, but
// CalibrationYaml wrote it back as U+FFFD, so the file kvsim fit writes named other GPUs.
TEST(CalibrationTest, ANameThatIsNotUtf8IsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "  gpus: [RTX-409\xE9\xC0]\n"
                                                 "terms:\n"
                                                 "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message,
              HasSubstr(dir.PathOf("cal.yaml") + ":5: byte 0xE9 at column 17 is not UTF-8 text"));
}

// Found by fuzzing (tests/fuzz/fuzz_calibration): a term without a value loaded as 0,
// outside its range (bus_efficiency 0 would make every all-reduce take forever).
TEST(CalibrationTest, ATermWithoutAValueIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) +
                                                 "gpu_terms:\n"
                                                 "  H100-SXM:\n"
                                                 "    timing.allreduce.bus_efficiency:\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":7: gpu_terms.H100-SXM.timing.allreduce.bus_efficiency: "
                                 "expected a number in [0.05, 1], got no value"));
  EXPECT_THAT(LoadError(dir, std::string(kHeader) + "terms: {timing.engine.per_seq_s: }\n"),
              HasSubstr(":5: terms.timing.engine.per_seq_s: expected a number"));
}

TEST(CalibrationTest, EngineKernelsBelowAFusedEnginesTenAreAnErrorNamingTheirLine) {
  TempDir dir;
  const std::string message =
      LoadError(dir, std::string(kHeader) +
                         "  engine_kernels: {cuda_graphs: true, fused_kernels: true, "
                         "kernels_per_layer: 5}\n"
                         "terms:\n"
                         "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":5: fitted_on.engine_kernels.kernels_per_layer: 0 (a fused "
                                 "engine's 10) or at least 10, got 5"));
}

TEST(CalibrationTest, EngineKernelsOfZeroKernelsPerLayerAreAFusedEnginesTen) {
  TempDir dir;
  const Calibration c = LoadCalibration(
      dir.Write("cal.yaml", std::string(kHeader) +
                                "  engine_kernels: {cuda_graphs: true, fused_kernels: true, "
                                "kernels_per_layer: 0}\n"
                                "terms:\n"
                                "  timing.engine.per_seq_s: 2.0e-05\n"
                                "residuals:\n"
                                "  run: {ttft_s.mean: 0.01}\n"));
  ASSERT_TRUE(c.engine_kernels.has_value());
  EXPECT_EQ(c.engine_kernels->kernels_per_layer, 10);
}

TEST(CalibrationTest, EngineKernelsWithoutAMappingAreAnErrorNamingTheirLine) {
  TempDir dir;
  for (const char* value : {"", " ~", " [true, true, 10]"}) {
    const std::string message = LoadError(dir, std::string(kHeader) + "  engine_kernels:" + value +
                                                   "\n"
                                                   "terms:\n"
                                                   "  timing.engine.per_seq_s: 2.0e-05\n");
    EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                   ":5: fitted_on.engine_kernels: expected a mapping"))
        << "value '" << value << "'";
  }
}

TEST(CalibrationTest, EngineKernelsMissingAFieldAreAnErrorNamingIt) {
  TempDir dir;
  const std::string message =
      LoadError(dir, std::string(kHeader) +
                         "  engine_kernels: {cuda_graphs: false, kernels_per_layer: 35}\n"
                         "terms:\n"
                         "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr("fitted_on.engine_kernels.fused_kernels: required"));
}

TEST(CalibrationTest, AMissingTimingTypeIsAnError) {
  TempDir dir;
  const std::string message = LoadError(dir,
                                        "kvsim_calibration: 1\n"
                                        "fitted_on:\n"
                                        "  engine_preset: vllm_v1\n"
                                        "terms:\n"
                                        "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ": fitted_on.timing_type: required"));
}

TEST(CalibrationTest, AnUnknownTimingTypeIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string message = LoadError(dir,
                                        "kvsim_calibration: 1\n"
                                        "fitted_on:\n"
                                        "  timing_type: analytic\n"
                                        "  engine_preset: vllm_v1\n"
                                        "terms:\n"
                                        "  timing.engine.per_seq_s: 2.0e-05\n");
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":3: fitted_on.timing_type: unknown value 'analytic'"));
}

TEST(CalibrationTest, ACalibrationWithoutTermsIsAnError) {
  TempDir dir;
  const std::string message = LoadError(dir, kHeader);
  EXPECT_THAT(message,
              HasSubstr(dir.PathOf("cal.yaml") + ": terms: the calibration holds no terms"));
}

TEST(CalibrationTest, EmptyTermsAreAnErrorNamingTheirLine) {
  TempDir dir;
  const std::string message = LoadError(dir, std::string(kHeader) + "terms: {}\ngpu_terms: {}\n");
  EXPECT_THAT(message,
              HasSubstr(dir.PathOf("cal.yaml") + ":5: terms: the calibration holds no terms"));
}

// ---------------------------------------------------------------------------
// Scenarios using a calibration

// A scenario on `gpu` whose timing section (lines 7-) is `timing`: line 7 names the
// calibration when `timing` starts with it.
std::string Scenario(const std::string& gpu, const std::string& timing) {
  return std::string("models_dir: ") + kModelsDir +
         "\n"
         "model: Llama-3-8B\n"
         "gpu: " +
         gpu +
         "\n"
         "workload:\n"
         "  trace: traces/t.csv\n"
         "timing:\n" +
         timing;
}

constexpr const char* kUsesCal = "  calibration: cal.yaml\n";

// Fitted under the scenarios' defaults (roofline, vllm_v1): two engine terms and one
// per-GPU term for each of two cards.
Calibration ScenarioCalibration() {
  Calibration c;
  c.runs = {"h100_run", "rtx4090_run"};
  c.models = {"Llama-3-8B"};
  c.gpus = {"H100-SXM", "RTX-4090"};
  c.timing_type = "roofline";
  c.engine_preset = "vllm_v1";
  c.engine_kernels = EngineKernelsOf(EnginePresetDefaults(EngineConfig::Preset::kVllmV1));
  c.terms = {{"timing.engine.per_seq_s", 2.5e-5}, {"timing.engine.per_iteration_s", 3.1e-3}};
  c.gpu_terms = {{"H100-SXM", {{"timing.roofline.gemm_efficiency", 0.62}}},
                 {"RTX-4090", {{"timing.roofline.memory_efficiency", 0.71}}}};
  return c;
}

// Writes `calibration` as cal.yaml and `scenario` as scenario.yaml in `dir`, and
// returns the scenario's tree.
ConfigTree WriteBoth(const TempDir& dir, const Calibration& calibration,
                     const std::string& scenario) {
  dir.Write("cal.yaml", CalibrationYaml(calibration));
  return ConfigTree::Load(dir.Write("scenario.yaml", scenario));
}

TEST(CalibrationTest, ScenarioTakesEngineTermsFromTheCalibration) {
  TempDir dir;
  const ScenarioConfig c = DecodeScenario(
      WriteBoth(dir, ScenarioCalibration(), Scenario("H100-SXM", kUsesCal)), kModelsDir);
  const EngineConfig preset = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);

  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_iteration_s, 3.1e-3);
  // Terms the calibration does not hold keep the preset's values.
  EXPECT_DOUBLE_EQ(c.timing.engine.per_prefill_token_s, preset.per_prefill_token_s);
  EXPECT_DOUBLE_EQ(c.timing.engine.kernel_gap_s, preset.kernel_gap_s);
  EXPECT_THAT(c.timing.engine.fitted, ElementsAre("per_seq_s", "per_iteration_s"));

  EXPECT_EQ(Normal(c.timing.calibration.path), Normal(dir.PathOf("cal.yaml")));
  EXPECT_THAT(c.timing.calibration.keys,
              ElementsAre("timing.engine.per_seq_s", "timing.engine.per_iteration_s",
                          "timing.roofline.gemm_efficiency"));
  EXPECT_THAT(c.timing.calibration.runs, ElementsAre("h100_run", "rtx4090_run"));
  EXPECT_THAT(c.timing.calibration.gpus, ElementsAre("H100-SXM", "RTX-4090"));
  EXPECT_THAT(c.timing.calibration.models, ElementsAre("Llama-3-8B"));
  // Written without fitted_on.tensor_parallel, as calibrations before kvsim recorded it.
  EXPECT_THAT(c.timing.calibration.tensor_parallel, IsEmpty());
}

TEST(CalibrationTest, ATensorParallelismThatIsNotAPositiveIntegerIsAnErrorNamingIt) {
  TempDir dir;
  Calibration c = ScenarioCalibration();
  std::string yaml = CalibrationYaml(c);
  const std::string gpus_line = "  gpus: [\"H100-SXM\", \"RTX-4090\"]\n";
  ASSERT_NE(yaml.find(gpus_line), std::string::npos);
  yaml.insert(yaml.find(gpus_line) + gpus_line.size(), "  tensor_parallel: [1, 0]\n");
  EXPECT_THAT(LoadError(dir, yaml),
              HasSubstr("fitted_on.tensor_parallel: expected a list of positive integers"));
}

TEST(CalibrationTest, ScenarioTakesOnlyTheGpuTermsOfItsOwnCard) {
  TempDir dir;
  const ScenarioConfig h100 = DecodeScenario(
      WriteBoth(dir, ScenarioCalibration(), Scenario("H100-SXM", kUsesCal)), kModelsDir);
  EXPECT_DOUBLE_EQ(h100.timing.roofline.gemm_efficiency, 0.62);
  EXPECT_DOUBLE_EQ(h100.timing.roofline.memory_efficiency, -1);  // the RTX-4090's term

  const ScenarioConfig rtx = DecodeScenario(
      WriteBoth(dir, ScenarioCalibration(), Scenario("RTX-4090", kUsesCal)), kModelsDir);
  EXPECT_DOUBLE_EQ(rtx.timing.roofline.gemm_efficiency, -1);  // the H100-SXM's term
  EXPECT_DOUBLE_EQ(rtx.timing.roofline.memory_efficiency, 0.71);
  EXPECT_THAT(rtx.timing.calibration.keys,
              ElementsAre("timing.engine.per_seq_s", "timing.engine.per_iteration_s",
                          "timing.roofline.memory_efficiency"));
  // The engine terms are shared by every card.
  EXPECT_DOUBLE_EQ(rtx.timing.engine.per_seq_s, 2.5e-5);
}

TEST(CalibrationTest, ScenarioMaySetAPerGpuTermTheCalibrationHoldsOnlyForAnotherCard) {
  TempDir dir;
  const ScenarioConfig c = DecodeScenario(
      WriteBoth(dir, ScenarioCalibration(),
                Scenario("H100-SXM", std::string(kUsesCal) + "  roofline:\n"
                                                             "    memory_efficiency: 0.5\n")),
      kModelsDir);
  EXPECT_DOUBLE_EQ(c.timing.roofline.memory_efficiency, 0.5);
  EXPECT_DOUBLE_EQ(c.timing.roofline.gemm_efficiency, 0.62);
}

TEST(CalibrationTest, AScenarioWithoutACalibrationHasNoneAndNoFittedTerms) {
  const ScenarioConfig c = DecodeScenario(
      ConfigTree::Parse(Scenario("H100-SXM", "  type: roofline\n"), "/x/s.yaml"), kModelsDir);
  EXPECT_EQ(c.timing.calibration.path, "");
  EXPECT_THAT(c.timing.calibration.keys, IsEmpty());
  EXPECT_THAT(c.timing.engine.fitted, IsEmpty());
}

// A null calibration used to read as none: the scenario ran uncalibrated, silently.
TEST(CalibrationTest, ACalibrationWithNoValueIsAnErrorNamingItsLine) {
  for (const char* value : {"", " ~", " null"}) {
    SCOPED_TRACE(value);
    const ConfigTree tree = ConfigTree::Parse(
        Scenario("H100-SXM", std::string("  calibration:") + value + "\n  type: roofline\n"),
        "/x/s.yaml");
    EXPECT_THAT(InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); }),
                HasSubstr("/x/s.yaml:7: timing.calibration: expected the path of a "
                          "calibration.yaml, got no value"));
  }
  ConfigTree tree = ConfigTree::Parse(Scenario("H100-SXM", "  type: roofline\n"), "/x/s.yaml");
  tree.Set("timing.calibration", "");
  EXPECT_THAT(InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); }),
              HasSubstr("/x/s.yaml: timing.calibration (set by an override): expected the path "
                        "of a calibration.yaml, got no value"));
}

// A scenario setting timing.engine.per_seq_s on line 9 that also uses the calibration.
ConfigTree ConflictingScenario(const TempDir& dir) {
  return WriteBoth(dir, ScenarioCalibration(),
                   Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                                "    per_seq_s: 0.00004\n"));
}

TEST(CalibrationTest, AKeySetInTheScenarioAndTheCalibrationIsAnErrorNamingBoth) {
  TempDir dir;
  const ConfigTree tree = ConflictingScenario(dir);
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":"));
  EXPECT_THAT(message, HasSubstr(": timing.engine.per_seq_s: also set by the calibration " +
                                 dir.PathOf("cal.yaml") + " (2.5e-05); remove one of the two"));
}

// The line comes from the scenario as read, not from the copy the calibration is
// applied to (copies of a ConfigTree carry no source positions).
TEST(CalibrationTest, AKeySetInTheScenarioAndTheCalibrationNamesTheScenarioLine) {
  TempDir dir;
  const ConfigTree tree = ConflictingScenario(dir);
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, HasSubstr(dir.PathOf("scenario.yaml") +
                                 ":9: timing.engine.per_seq_s: also set by the calibration"));
}

TEST(CalibrationTest, AGpuTermSetInTheScenarioAndForItsCardIsAnError) {
  TempDir dir;
  const ConfigTree tree =
      WriteBoth(dir, ScenarioCalibration(),
                Scenario("H100-SXM", std::string(kUsesCal) + "  roofline:\n"
                                                             "    gemm_efficiency: 0.5\n"));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":"));
  EXPECT_THAT(message, HasSubstr(": timing.roofline.gemm_efficiency: also set by the calibration " +
                                 dir.PathOf("cal.yaml") + " (0.62)"));
}

TEST(CalibrationTest, AnOverrideWinsOverTheCalibrationWithoutError) {
  TempDir dir;
  ConfigTree tree = WriteBoth(dir, ScenarioCalibration(), Scenario("H100-SXM", kUsesCal));
  tree.Set("timing.engine.per_seq_s", "0.001");
  const ScenarioConfig c = DecodeScenario(tree, kModelsDir);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 0.001);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_iteration_s, 3.1e-3);
  EXPECT_THAT(c.timing.engine.fitted, ElementsAre("per_iteration_s"));
  EXPECT_THAT(c.timing.calibration.keys,
              ElementsAre("timing.engine.per_iteration_s", "timing.roofline.gemm_efficiency"));
}

TEST(CalibrationTest, AnOverrideWinsOverTheCalibrationEvenWhenTheFileAlsoSetsTheKey) {
  TempDir dir;
  ConfigTree tree =
      WriteBoth(dir, ScenarioCalibration(),
                Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                             "    per_seq_s: 0.00004\n"));
  tree.Set("timing.engine.per_seq_s", "0.0002");
  const ScenarioConfig c = DecodeScenario(tree, kModelsDir);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 0.0002);
}

TEST(CalibrationTest, ACalibrationFittedUnderProfiledTimingIsRefusedByARooflineScenario) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.timing_type = "profiled";
  const ConfigTree tree = WriteBoth(dir, cal, Scenario("H100-SXM", kUsesCal));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr("was fitted with timing.type profiled and engine preset vllm_v1; "
                                 "this scenario runs roofline with vllm_v1"));
}

TEST(CalibrationTest, ACalibrationFittedUnderVllmV0IsRefusedByAVllmV1Scenario) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.engine_preset = "vllm_v0";
  const ConfigTree tree =
      WriteBoth(dir, cal,
                Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                             "    preset: vllm_v1\n"));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr("was fitted with timing.type roofline and engine preset vllm_v0; "
                                 "this scenario runs roofline with vllm_v1"));
}

TEST(CalibrationTest, ACalibrationFittedWithCudaGraphsIsRefusedByAnEagerLaunchingScenario) {
  TempDir dir;
  const ConfigTree tree =
      WriteBoth(dir, ScenarioCalibration(),
                Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                             "    cuda_graphs: false\n"));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message,
              HasSubstr("was fitted on an engine running CUDA graphs, fused kernels, 10 "
                        "kernels per layer; this scenario's engine runs eager launches, fused "
                        "kernels, 10 kernels per layer"));
}

TEST(CalibrationTest, ACalibrationFittedOnUnfusedKernelsIsRefusedByAFusedScenario) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.engine_kernels->fused_kernels = false;
  cal.engine_kernels->kernels_per_layer = 35;
  const std::string message = InputErrorMessage(
      [&] { DecodeScenario(WriteBoth(dir, cal, Scenario("H100-SXM", kUsesCal)), kModelsDir); });
  EXPECT_THAT(message,
              HasSubstr("CUDA graphs, unfused kernels, 35 kernels per layer; this "
                        "scenario's engine runs CUDA graphs, fused kernels, 10 kernels per layer"));
}

TEST(CalibrationTest, AMatchingExplicitKernelsPerLayerIsAcceptedAsTheFusedDefault) {
  // kernels_per_layer: 10 is what 0 (the default) resolves to.
  TempDir dir;
  const ScenarioConfig c = DecodeScenario(
      WriteBoth(dir, ScenarioCalibration(),
                Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                             "    kernels_per_layer: 10\n")),
      kModelsDir);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);
}

// Files written before kvsim recorded the engine's kernels.
TEST(CalibrationTest, AnOlderCalibrationIsTakenToHaveRunItsPresetsKernels) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.engine_kernels.reset();
  const ScenarioConfig c =
      DecodeScenario(WriteBoth(dir, cal, Scenario("H100-SXM", kUsesCal)), kModelsDir);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);

  const std::string message = InputErrorMessage([&] {
    DecodeScenario(WriteBoth(dir, cal,
                             Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                                          "    kernels_per_layer: "
                                                                          "12\n")),
                   kModelsDir);
  });
  EXPECT_THAT(message, HasSubstr("does not record how its engine ran its kernels (written by an "
                                 "earlier kvsim), so it is taken to be the vllm_v1 preset's (CUDA "
                                 "graphs, fused kernels, 10 kernels per layer); this scenario's "
                                 "engine runs CUDA graphs, fused kernels, 12 kernels per layer"));
}

TEST(CalibrationTest, AnOlderCalibrationFittedOnTheEagerPresetIsRefused) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.engine_preset = "eager";
  cal.engine_kernels.reset();
  const ConfigTree tree =
      WriteBoth(dir, cal,
                Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                             "    preset: eager\n"));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr("the eager preset now charges unfused operators and 35 kernels "
                                 "per layer that its terms were not fitted with: refit it"));
}

TEST(CalibrationTest, ACalibrationFittedOnTheEagerPresetsKernelsIsAcceptedByAnEagerScenario) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.engine_preset = "eager";
  cal.engine_kernels = EngineKernelsOf(EnginePresetDefaults(EngineConfig::Preset::kEager));
  const ScenarioConfig c =
      DecodeScenario(WriteBoth(dir, cal,
                               Scenario("H100-SXM", std::string(kUsesCal) + "  engine:\n"
                                                                            "    preset: eager\n")),
                     kModelsDir);
  EXPECT_FALSE(c.timing.engine.cuda_graphs);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);
}

TEST(CalibrationTest, FixedTimingReadsNoKernelsSoAnOlderEagerCalibrationOfItIsAccepted) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.timing_type = "fixed";
  cal.engine_preset = "eager";
  cal.engine_kernels.reset();
  const ScenarioConfig c =
      DecodeScenario(WriteBoth(dir, cal,
                               Scenario("H100-SXM", std::string(kUsesCal) + "  type: fixed\n"
                                                                            "  engine:\n"
                                                                            "    preset: eager\n")),
                     kModelsDir);
  EXPECT_EQ(c.timing.type, TimingType::kFixed);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);
}

TEST(CalibrationTest, AMatchingNonDefaultPresetAndTimingTypeAreAccepted) {
  TempDir dir;
  Calibration cal = ScenarioCalibration();
  cal.timing_type = "fixed";
  cal.engine_preset = "vllm_v0";
  const ScenarioConfig c = DecodeScenario(
      WriteBoth(dir, cal,
                Scenario("H100-SXM", std::string(kUsesCal) + "  type: fixed\n"
                                                             "  engine:\n"
                                                             "    preset: vllm_v0\n")),
      kModelsDir);
  EXPECT_EQ(c.timing.type, TimingType::kFixed);
  EXPECT_EQ(c.timing.engine.preset, EngineConfig::Preset::kVllmV0);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 2.5e-5);
}

TEST(CalibrationTest, AMissingCalibrationFileIsAnErrorNamingTheScenarioLine) {
  TempDir dir;
  const ConfigTree tree =
      ConfigTree::Load(dir.Write("scenario.yaml", Scenario("H100-SXM", kUsesCal)));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml")));
}

TEST(CalibrationTest, AnErrorInTheCalibrationFileNamesTheScenarioLineAndTheCalibrationLine) {
  TempDir dir;
  dir.Write("cal.yaml", std::string(kHeader) +
                            "terms:\n"
                            "  timing.engine.per_seq_s: 0.5\n");
  const ConfigTree tree =
      ConfigTree::Load(dir.Write("scenario.yaml", Scenario("H100-SXM", kUsesCal)));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") +
                                 ":6: terms.timing.engine.per_seq_s: must be in [0, 0.001], got "
                                 "0.5"));
}

// The review's case: a scenario ran on a calibration cut after its first term, the
// lost per_seq_s silently the preset's.
TEST(CalibrationTest, AScenarioWhoseCalibrationIsCutShortIsAnErrorNamingBothFiles) {
  TempDir dir;
  const std::string text = CalibrationYaml(ScenarioCalibration());
  dir.Write("cal.yaml", text.substr(0, text.find("  timing.engine.per_iteration_s: ")));
  const ConfigTree tree =
      ConfigTree::Load(dir.Write("scenario.yaml", Scenario("H100-SXM", kUsesCal)));
  const std::string message = InputErrorMessage([&] { DecodeScenario(tree, kModelsDir); });
  EXPECT_THAT(message, StartsWith(dir.PathOf("scenario.yaml") + ":7: timing.calibration: "));
  EXPECT_THAT(message, HasSubstr(dir.PathOf("cal.yaml") + ": ends without the line"));
}

TEST(CalibrationTest, ACalibrationPathThatIsNotAScalarIsAnError) {
  const std::string message = InputErrorMessage([] {
    DecodeScenario(
        ConfigTree::Parse(Scenario("H100-SXM", "  calibration: [a.yaml, b.yaml]\n"), "/x/s.yaml"),
        kModelsDir);
  });
  EXPECT_THAT(message, HasSubstr("/x/s.yaml:7: timing.calibration: expected the path of a "
                                 "calibration.yaml"));
}

}  // namespace
}  // namespace kvsim
