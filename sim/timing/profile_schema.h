// The schema of a kvprobe profile, format version 1 (tools/kvprobe/PROFILE_FORMAT.md):
// every section, the keys of [meta] and the columns of each table, and the raw CSV files
// kvprobe writes beside the profile. Units are part of the names: _us microseconds,
// _bytes bytes, _gbps 1e9 bytes per second, _tflops 1e12 FLOP per second, _mhz MHz.
// kvprobe writes its section and header lines from these names and kvsim reads by them;
// tests/timing/profile_schema_test.cc checks that PROFILE_FORMAT.md documents exactly
// this schema.
//
// Constant data only, on nothing but the C++17 standard library: kvprobe's CUDA sources
// (C++17, nvcc) include it as well as kvsim (C++20).
#pragma once

#include <cstddef>
#include <string_view>

namespace kvsim::profile_schema {

// What a field holds: a finite decimal number, or text (no commas, quotes or newlines).
enum class Type { kNumber, kText };

// Whether a reader requires a section or field. kvsim requires, and parses as the type
// says, the required fields of the sections present; it keeps optional fields as text,
// as it keeps the columns this schema does not name. Optional fields are ones kvprobe
// writes that earlier profiles lack.
enum class Presence { kRequired, kOptional };

// One [meta] key or table column.
struct Field {
  std::string_view name;
  Type type;
  Presence presence;
};

// Fields by type and presence.
constexpr Field Number(std::string_view name) { return {name, Type::kNumber, Presence::kRequired}; }
constexpr Field Text(std::string_view name) { return {name, Type::kText, Presence::kRequired}; }
constexpr Field OptionalNumber(std::string_view name) {
  return {name, Type::kNumber, Presence::kOptional};
}
constexpr Field OptionalText(std::string_view name) {
  return {name, Type::kText, Presence::kOptional};
}

// The items of a constant array, in order (std::span is C++20). Converts implicitly
// from the array, so that a section names its fields array alone.
template <typename T>
class Items {
 public:
  template <size_t N>
  constexpr Items(const T (&items)[N]) : data_(items), size_(N) {}
  constexpr const T* begin() const { return data_; }
  constexpr const T* end() const { return data_ + size_; }
  constexpr size_t size() const { return size_; }
  constexpr const T& operator[](size_t i) const { return data_[i]; }

 private:
  const T* data_;
  size_t size_;
};

// [meta] holds "key: value" lines; every other section is a table: a header line of
// column names (comma-separated), then rows of as many fields.
enum class Layout { kKeyValue, kTable };

struct Section {
  std::string_view name;  // as in "[name]"
  Presence presence;
  Layout layout;
  Items<Field> fields;  // its keys or columns, in the order kvprobe writes them
};

// A CSV file of raw samples that kvprobe writes into the profile's folder: a header
// line of the column names, then one row per sample.
struct RawFile {
  // Path relative to the profile's folder; <N> and <R> stand for numbers where kvprobe
  // writes one file per GPU count and rank.
  std::string_view path;
  Items<std::string_view> columns;
};

// ---- Names ----------------------------------------------------------------

// Section names, as in "[name]", in the order kvprobe writes the sections.
namespace section {
inline constexpr std::string_view kMeta = "meta";
inline constexpr std::string_view kVmm = "vmm";
inline constexpr std::string_view kVmmUnderLoad = "vmm_under_load";
inline constexpr std::string_view kCopy = "copy";
inline constexpr std::string_view kGemm = "gemm";
inline constexpr std::string_view kSmallKernels = "small_kernels";
inline constexpr std::string_view kDecodeAttention = "decode_attention";
inline constexpr std::string_view kPrefillAttention = "prefill_attention";
inline constexpr std::string_view kAllreduce = "allreduce";
inline constexpr std::string_view kVattention = "vattention";
inline constexpr std::string_view kStep = "step";
}  // namespace section

// [meta] keys, in the order kvprobe writes them.
namespace meta {
inline constexpr std::string_view kFormatVersion = "format_version";
inline constexpr std::string_view kKvprobeVersion = "kvprobe_version";
inline constexpr std::string_view kGpuName = "gpu_name";
inline constexpr std::string_view kGpuMemoryBytes = "gpu_memory_bytes";
inline constexpr std::string_view kSmCount = "sm_count";
inline constexpr std::string_view kSmClockMhz = "sm_clock_mhz";
inline constexpr std::string_view kDriverVersion = "driver_version";
inline constexpr std::string_view kCudaDriverApiVersion = "cuda_driver_api_version";
inline constexpr std::string_view kCudaRuntimeVersion = "cuda_runtime_version";
inline constexpr std::string_view kDateUtc = "date_utc";
inline constexpr std::string_view kAllocationGranularityBytes = "allocation_granularity_bytes";
inline constexpr std::string_view kHost = "host";
inline constexpr std::string_view kMode = "mode";
inline constexpr std::string_view kAttentionVerifiedMaxRelativeError =
    "attention_verified_max_relative_error";
inline constexpr std::string_view kStepLayersReuse = "step_layers_reuse";
inline constexpr std::string_view kNcclVersion = "nccl_version";
inline constexpr std::string_view kAllreduceLaunch = "allreduce_launch";
inline constexpr std::string_view kNcclNvlsEnable = "nccl_nvls_enable";
inline constexpr std::string_view kGpusPresent = "gpus_present";
inline constexpr std::string_view kSmClockMhzUnderLoad = "sm_clock_mhz_under_load";
inline constexpr std::string_view kProbeSeconds = "probe_seconds";
}  // namespace meta

// Column names of the tables and raw files. A name means the same in every table.
namespace column {
inline constexpr std::string_view kAlgbwGbps = "algbw_gbps";
inline constexpr std::string_view kAloneUs = "alone_us";
inline constexpr std::string_view kAllreduceUs = "allreduce_us";
inline constexpr std::string_view kAttentionUs = "attention_us";
inline constexpr std::string_view kBatch = "batch";
inline constexpr std::string_view kBlockTokens = "block_tokens";
inline constexpr std::string_view kBusbwGbps = "busbw_gbps";
inline constexpr std::string_view kBytes = "bytes";
inline constexpr std::string_view kCall = "call";
inline constexpr std::string_view kContextTokens = "context_tokens";
inline constexpr std::string_view kDecodeSeqs = "decode_seqs";
inline constexpr std::string_view kDecodeSplits = "decode_splits";
inline constexpr std::string_view kEnergyPowerW = "energy_power_w";
inline constexpr std::string_view kExposedMapUs = "exposed_map_us";
inline constexpr std::string_view kGbps = "gbps";
inline constexpr std::string_view kGemmEnergyPowerW = "gemm_energy_power_w";
inline constexpr std::string_view kGemmPowerW = "gemm_power_w";
inline constexpr std::string_view kGemmSamples = "gemm_samples";
inline constexpr std::string_view kGemmSmMhz = "gemm_sm_mhz";
inline constexpr std::string_view kGemmUs = "gemm_us";
inline constexpr std::string_view kGemms = "gemms";
inline constexpr std::string_view kGpus = "gpus";
inline constexpr std::string_view kGraph = "graph";
inline constexpr std::string_view kHandleBytes = "handle_bytes";
inline constexpr std::string_view kHeadDim = "head_dim";
inline constexpr std::string_view kInGraphUs = "in_graph_us";
inline constexpr std::string_view kAloneInGraphUs = "alone_in_graph_us";
inline constexpr std::string_view kIteration = "iteration";
inline constexpr std::string_view kIterationUs = "iteration_us";
inline constexpr std::string_view kIterations = "iterations";
inline constexpr std::string_view kK = "k";
inline constexpr std::string_view kKvGbps = "kv_gbps";
inline constexpr std::string_view kKvHeads = "kv_heads";
inline constexpr std::string_view kLayer = "layer";
inline constexpr std::string_view kLayout = "layout";
inline constexpr std::string_view kM = "m";
inline constexpr std::string_view kMapCalls = "map_calls";
inline constexpr std::string_view kMaxExposedMapUs = "max_exposed_map_us";
inline constexpr std::string_view kMeanExposedMapUs = "mean_exposed_map_us";
inline constexpr std::string_view kMeanIterationUs = "mean_iteration_us";
inline constexpr std::string_view kMetric = "metric";
inline constexpr std::string_view kModel = "model";
inline constexpr std::string_view kN = "n";
inline constexpr std::string_view kOtherUs = "other_us";
inline constexpr std::string_view kOverlap = "overlap";
inline constexpr std::string_view kP10Us = "p10_us";
inline constexpr std::string_view kP50IterationUs = "p50_iteration_us";
inline constexpr std::string_view kP50Us = "p50_us";
inline constexpr std::string_view kP90Us = "p90_us";
inline constexpr std::string_view kP99IterationUs = "p99_iteration_us";
inline constexpr std::string_view kP99Us = "p99_us";
inline constexpr std::string_view kPageBytes = "page_bytes";
inline constexpr std::string_view kPlanned = "planned";
inline constexpr std::string_view kPowerW = "power_w";
inline constexpr std::string_view kLoads = "loads";
inline constexpr std::string_view kPrefillTokens = "prefill_tokens";
inline constexpr std::string_view kQHeads = "q_heads";
inline constexpr std::string_view kRank = "rank";
inline constexpr std::string_view kRep = "rep";
inline constexpr std::string_view kSamples = "samples";
inline constexpr std::string_view kSmMhz = "sm_mhz";
inline constexpr std::string_view kSplits = "splits";
inline constexpr std::string_view kTensorParallel = "tensor_parallel";
inline constexpr std::string_view kTflops = "tflops";
inline constexpr std::string_view kTimeUs = "time_us";
inline constexpr std::string_view kTokens = "tokens";
inline constexpr std::string_view kUs = "us";
inline constexpr std::string_view kValue = "value";
inline constexpr std::string_view kWarmTimeUs = "warm_time_us";
}  // namespace column

// ---- Sections ---------------------------------------------------------------

inline constexpr Field kMetaKeys[] = {
    Number(meta::kFormatVersion),
    Text(meta::kKvprobeVersion),
    Text(meta::kGpuName),
    Number(meta::kGpuMemoryBytes),
    Number(meta::kSmCount),
    Number(meta::kSmClockMhz),
    Text(meta::kDriverVersion),
    Text(meta::kCudaDriverApiVersion),
    Text(meta::kCudaRuntimeVersion),
    Text(meta::kDateUtc),
    Number(meta::kAllocationGranularityBytes),
    Text(meta::kHost),
    OptionalText(meta::kMode),
    OptionalNumber(meta::kAttentionVerifiedMaxRelativeError),
    OptionalText(meta::kStepLayersReuse),
    OptionalNumber(meta::kNcclVersion),
    OptionalText(meta::kAllreduceLaunch),
    OptionalNumber(meta::kNcclNvlsEnable),
    OptionalNumber(meta::kGpusPresent),
    OptionalNumber(meta::kSmClockMhzUnderLoad),
    OptionalNumber(meta::kProbeSeconds),
};

inline constexpr Field kVmmColumns[] = {
    Text(column::kCall),    Number(column::kHandleBytes), Number(column::kSamples),
    Number(column::kP10Us), Number(column::kP50Us),       Number(column::kP90Us),
    Number(column::kP99Us),
};

inline constexpr Field kVmmUnderLoadColumns[] = {Text(column::kMetric), Number(column::kValue)};

inline constexpr Field kCopyColumns[] = {Number(column::kBytes), Number(column::kTimeUs),
                                         Number(column::kGbps)};

inline constexpr Field kGemmColumns[] = {
    Text(column::kModel),    Text(column::kLayer),    Number(column::kTensorParallel),
    Number(column::kTokens), Number(column::kM),      Number(column::kN),
    Number(column::kK),      Number(column::kTimeUs), Number(column::kTflops),
};

inline constexpr Field kSmallKernelsColumns[] = {
    Text(column::kModel),
    Number(column::kTensorParallel),
    Number(column::kTokens),
    Number(column::kTimeUs),
    OptionalNumber(column::kWarmTimeUs),  // from kvprobe 0.3.6
};

inline constexpr Field kDecodeAttentionColumns[] = {
    Text(column::kLayout),           Number(column::kBlockTokens), Number(column::kBatch),
    Number(column::kContextTokens),  Number(column::kQHeads),      Number(column::kKvHeads),
    Number(column::kHeadDim),        Number(column::kTimeUs),      Number(column::kKvGbps),
    OptionalNumber(column::kSplits),
};

inline constexpr Field kPrefillAttentionColumns[] = {
    Text(column::kLayout),    Number(column::kBlockTokens), Number(column::kBatch),
    Number(column::kTokens),  Number(column::kQHeads),      Number(column::kKvHeads),
    Number(column::kHeadDim), Number(column::kTimeUs),      Number(column::kTflops),
};

inline constexpr Field kAllreduceColumns[] = {
    Number(column::kGpus),
    Number(column::kBytes),
    Number(column::kTimeUs),
    Number(column::kAlgbwGbps),
    Number(column::kBusbwGbps),
    OptionalNumber(column::kInGraphUs),
    OptionalNumber(column::kAloneInGraphUs),
};

inline constexpr Field kVattentionColumns[] = {
    Number(column::kOverlap),         Number(column::kPageBytes),
    Number(column::kBatch),           Number(column::kIterations),
    Number(column::kMeanIterationUs), Number(column::kP50IterationUs),
    Number(column::kP99IterationUs),  Number(column::kMeanExposedMapUs),
    Number(column::kMaxExposedMapUs), Number(column::kMapCalls),
};

inline constexpr Field kStepColumns[] = {
    Text(column::kModel),
    Number(column::kTensorParallel),
    Text(column::kLayout),
    Number(column::kBlockTokens),
    Number(column::kDecodeSeqs),
    Number(column::kContextTokens),
    Number(column::kPrefillTokens),
    Number(column::kTimeUs),
    Number(column::kGraph),
    OptionalNumber(column::kGemmUs),
    OptionalNumber(column::kAttentionUs),
    OptionalNumber(column::kOtherUs),
    OptionalNumber(column::kDecodeSplits),
    OptionalNumber(column::kAllreduceUs),
};

inline constexpr Section kMeta{section::kMeta, Presence::kRequired, Layout::kKeyValue, kMetaKeys};
inline constexpr Section kVmm{section::kVmm, Presence::kRequired, Layout::kTable, kVmmColumns};
inline constexpr Section kVmmUnderLoad{section::kVmmUnderLoad, Presence::kOptional, Layout::kTable,
                                       kVmmUnderLoadColumns};
inline constexpr Section kCopy{section::kCopy, Presence::kRequired, Layout::kTable, kCopyColumns};
inline constexpr Section kGemm{section::kGemm, Presence::kRequired, Layout::kTable, kGemmColumns};
inline constexpr Section kSmallKernels{section::kSmallKernels, Presence::kOptional, Layout::kTable,
                                       kSmallKernelsColumns};
inline constexpr Section kDecodeAttention{section::kDecodeAttention, Presence::kRequired,
                                          Layout::kTable, kDecodeAttentionColumns};
inline constexpr Section kPrefillAttention{section::kPrefillAttention, Presence::kRequired,
                                           Layout::kTable, kPrefillAttentionColumns};
inline constexpr Section kAllreduce{section::kAllreduce, Presence::kOptional, Layout::kTable,
                                    kAllreduceColumns};
inline constexpr Section kVattention{section::kVattention, Presence::kOptional, Layout::kTable,
                                     kVattentionColumns};
inline constexpr Section kStep{section::kStep, Presence::kOptional, Layout::kTable, kStepColumns};

// Every section, [meta] first.
inline constexpr Section kSections[] = {
    kMeta,
    kVmm,
    kVmmUnderLoad,
    kCopy,
    kGemm,
    kSmallKernels,
    kDecodeAttention,
    kPrefillAttention,
    kAllreduce,
    kVattention,
    kStep,
};

// The section named `name`, or nullptr.
constexpr const Section* FindSection(std::string_view name) {
  for (const Section& s : kSections) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The field of `section` named `name`, or nullptr.
constexpr const Field* FindField(const Section& section, std::string_view name) {
  for (const Field& f : section.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// ---- Raw files ----------------------------------------------------------------

inline constexpr std::string_view kVmmSamplesColumns[] = {column::kCall, column::kHandleBytes,
                                                          column::kUs};
inline constexpr std::string_view kDecodeSplitsColumns[] = {
    column::kLayout,  column::kBlockTokens,   column::kBatch,
    column::kKvHeads, column::kContextTokens, column::kSplits,
    column::kLoads,   column::kPlanned,       column::kTimeUs,
};
inline constexpr std::string_view kStepPassesColumns[] = {
    column::kModel,         column::kTensorParallel, column::kRank,
    column::kLayout,        column::kBlockTokens,    column::kDecodeSeqs,
    column::kContextTokens, column::kPrefillTokens,  column::kGraph,
    column::kRep,           column::kTimeUs,
};
inline constexpr std::string_view kVattentionIterationsColumns[] = {
    column::kOverlap,      column::kIteration, column::kIterationUs,
    column::kExposedMapUs, column::kMapCalls,
};
inline constexpr std::string_view kAllreduceRankColumns[] = {
    column::kBytes, column::kTimeUs, column::kInGraphUs, column::kAloneInGraphUs};
inline constexpr std::string_view kGemmClocksColumns[] = {
    column::kM,     column::kN,      column::kK,       column::kTimeUs,       column::kTflops,
    column::kSmMhz, column::kPowerW, column::kSamples, column::kEnergyPowerW,
};
inline constexpr std::string_view kGemmRoundsColumns[] = {
    column::kModel,   column::kTensorParallel, column::kM,     column::kGemms,
    column::kTimeUs,  column::kAloneUs,        column::kSmMhz, column::kPowerW,
    column::kSamples, column::kEnergyPowerW,
};
inline constexpr std::string_view kPrefillClocksColumns[] = {
    column::kBlockTokens, column::kTokens, column::kQHeads, column::kKvHeads, column::kTimeUs,
    column::kTflops,      column::kSmMhz,  column::kPowerW, column::kSamples, column::kEnergyPowerW,
};
inline constexpr std::string_view kStepClocksColumns[] = {
    column::kModel,         column::kTensorParallel,   column::kLayout,
    column::kBlockTokens,   column::kDecodeSeqs,       column::kContextTokens,
    column::kPrefillTokens, column::kTimeUs,           column::kSmMhz,
    column::kPowerW,        column::kSamples,          column::kEnergyPowerW,
    column::kGemmUs,        column::kGemmSmMhz,        column::kGemmPowerW,
    column::kGemmSamples,   column::kGemmEnergyPowerW,
};

// Every timed VMM call behind [vmm] (`us`: that call's time).
inline constexpr RawFile kVmmSamplesFile{"vmm_samples.csv", kVmmSamplesColumns};
// Every split count timed for every [decode_attention] cell (`planned`: 1 for the
// split plan's count).
inline constexpr RawFile kDecodeSplitsFile{"decode_splits.csv", kDecodeSplitsColumns};
// Every timed forward pass behind [step] (`rank`: the tensor-parallel rank that timed
// it, 0 at TP 1; `rep`: the repetition, from 0).
inline constexpr RawFile kStepPassesFile{"step_passes.csv", kStepPassesColumns};
// Every iteration of the [vattention] runs.
inline constexpr RawFile kVattentionIterationsFile{"vattention_iterations.csv",
                                                   kVattentionIterationsColumns};
// One all-reduce rank's times (microseconds) by message size, as its process writes them.
inline constexpr RawFile kAllreduceRankFile{"allreduce_ranks/gpus<N>_rank<R>.csv",
                                            kAllreduceRankColumns};

// Each [gemm] / [prefill_attention] cell's mean SM clock (MHz) and board power (W,
// NVML's reading and the energy counter's) while it was timed (kvprobe 0.3.4 on); a
// [gemm] cell's time and clock alone (from kvprobe 0.3.15, the row of a cell from 256
// tokens is its share of its round's time, gemm_rounds.csv).
inline constexpr RawFile kGemmClocksFile{"gemm_clocks.csv", kGemmClocksColumns};
// Each round of a layer's GEMMs (lm_head aside) at one token count, timed one after the
// other as a pass runs them: the round's time, the sum of the same GEMMs' times alone
// (gemm_clocks.csv) and the round's clock and power (kvprobe 0.3.15 on). The [gemm] rows
// from 256 tokens share the round's time (ShareRoundUs in tools/kvprobe/host/timing_plan.h).
inline constexpr RawFile kGemmRoundsFile{"gemm_rounds.csv", kGemmRoundsColumns};
inline constexpr RawFile kPrefillClocksFile{"prefill_clocks.csv", kPrefillClocksColumns};
// The same for each TP 1 [step] pass and its GEMMs alone (kvprobe 0.3.4 on).
inline constexpr RawFile kStepClocksFile{"step_clocks.csv", kStepClocksColumns};

inline constexpr RawFile kRawFiles[] = {
    kVmmSamplesFile,           kDecodeSplitsFile,  kStepPassesFile,
    kVattentionIterationsFile, kAllreduceRankFile, kGemmClocksFile,
    kGemmRoundsFile,           kPrefillClocksFile, kStepClocksFile};

}  // namespace kvsim::profile_schema
