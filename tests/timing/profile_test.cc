// The kvprobe profile reader: the H100 fixture read back cell by cell, every rule of
// tools/kvprobe/PROFILE_FORMAT.md rejected with "file:line", and the VMM latencies.
#include "sim/timing/profile.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kFixture = KVSIM_TEST_DATA_DIR "/timing/h100_profile.txt";
constexpr const char* kPath = "p.txt";  // the name parsed strings are read as

// The smallest valid profile, one line per element (line N of the file is index N-1).
std::vector<std::string> MinimalLines() {
  return {
      "[meta]",                                                                              // 1
      "format_version: 1",                                                                   // 2
      "kvprobe_version: 0.1.0",                                                              // 3
      "gpu_name: NVIDIA H100 80GB HBM3",                                                     // 4
      "gpu_memory_bytes: 85017493504",                                                       // 5
      "sm_count: 132",                                                                       // 6
      "sm_clock_mhz: 1980",                                                                  // 7
      "driver_version: 550.54.15",                                                           // 8
      "cuda_driver_api_version: 12040",                                                      // 9
      "cuda_runtime_version: 12040",                                                         // 10
      "date_utc: 2025-01-15T10:42:07Z",                                                      // 11
      "allocation_granularity_bytes: 2097152",                                               // 12
      "host: gpu-node-07",                                                                   // 13
      "[vmm]",                                                                               // 14
      "call,handle_bytes,samples,p10_us,p50_us,p90_us,p99_us",                               // 15
      "cuMemMap,2097152,2000,0.57,0.65,2.33,4.05",                                           // 16
      "cuMemSetAccess,2097152,2000,20.61,22.16,24.30,67.53",                                 // 17
      "cuMemUnmap,2097152,2000,15.24,16.14,17.43,24.51",                                     // 18
      "[copy]",                                                                              // 19
      "bytes,time_us,gbps",                                                                  // 20
      "1073741824,731.93,2934.0",                                                            // 21
      "[gemm]",                                                                              // 22
      "model,layer,tensor_parallel,tokens,m,n,k,time_us,tflops",                             // 23
      "Llama-3-8B,qkv,1,256,256,6144,4096,29.78,432.670",                                    // 24
      "[decode_attention]",                                                                  // 25
      "layout,block_tokens,batch,context_tokens,q_heads,kv_heads,head_dim,time_us,kv_gbps",  // 26
      "contiguous,0,16,2048,32,8,128,54.65,2456.0",                                          // 27
      "[prefill_attention]",                                                                 // 28
      "layout,block_tokens,batch,tokens,q_heads,kv_heads,head_dim,time_us,tflops",           // 29
      "contiguous,0,1,2048,32,8,128,102.73,334.63",                                          // 30
  };
}

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// The message of the InputError that parsing `lines` throws ("" when none is thrown).
std::string ParseError(const std::vector<std::string>& lines) {
  try {
    ParseProfile(Join(lines), kPath);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

// ---- The H100 fixture -----------------------------------------------------

TEST(Profile, TheFixtureMetaKeysAreReadAsTextAndNumbers) {
  const Profile p = LoadProfile(kFixture);
  EXPECT_EQ(p.path(), kFixture);
  EXPECT_EQ(p.meta().size(), 12u);
  EXPECT_EQ(p.MetaText("gpu_name"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(p.MetaText("date_utc"), "2025-01-15T10:42:07Z");  // colons after the first stay
  EXPECT_EQ(p.MetaText("driver_version"), "550.54.15");
  EXPECT_EQ(p.MetaNumber("format_version"), 1);
  EXPECT_EQ(p.MetaNumber("gpu_memory_bytes"), 85017493504.0);
  EXPECT_EQ(p.MetaNumber("sm_count"), 132);
  EXPECT_EQ(p.MetaNumber("allocation_granularity_bytes"), 2097152);
  EXPECT_EQ(p.MetaLine("format_version"), 5);
  EXPECT_EQ(p.MetaLine("host"), 16);
}

TEST(Profile, TheFixtureHasEveryTableWithItsRows) {
  const Profile p = LoadProfile(kFixture);
  EXPECT_EQ(p.Table("vmm").size(), 17u);
  EXPECT_EQ(p.Table("vmm_under_load").size(), 6u);
  EXPECT_EQ(p.Table("copy").size(), 4u);
  EXPECT_EQ(p.Table("gemm").size(), 150u);  // 5 layers x 15 token counts x TP 1 and 2
  // 5 layouts x (5 batches x 4 contexts - the one that does not fit in memory).
  EXPECT_EQ(p.Table("decode_attention").size(), 95u);
  EXPECT_EQ(p.Table("prefill_attention").size(), 30u);
  EXPECT_EQ(p.Table("allreduce").size(), 14u);
  EXPECT_EQ(p.Table("vattention").size(), 3u);
}

TEST(Profile, TableCellsAreReadByColumnNameWithTheirFileLine) {
  const Profile p = LoadProfile(kFixture);
  const ProfileTable& gemm = p.Table("gemm");
  EXPECT_EQ(gemm.name(), "gemm");
  EXPECT_EQ(gemm.section_line(), 54);
  EXPECT_EQ(gemm.header_line(), 55);
  EXPECT_EQ(gemm.columns(), (std::vector<std::string>{"model", "layer", "tensor_parallel", "tokens",
                                                      "m", "n", "k", "time_us", "tflops"}));
  // Line 56: Llama-3-8B,qkv,1,1,1,6144,4096,21.56,2.334
  EXPECT_EQ(gemm.line(0), 56);
  EXPECT_EQ(gemm.Text(0, "model"), "Llama-3-8B");
  EXPECT_EQ(gemm.Text(0, "layer"), "qkv");
  EXPECT_EQ(gemm.Number(0, "tokens"), 1);
  EXPECT_EQ(gemm.Number(0, "n"), 6144);
  EXPECT_DOUBLE_EQ(gemm.Number(0, "time_us"), 21.56);
  EXPECT_EQ(gemm.Text(0, "time_us"), "21.56");  // every cell keeps its text too

  const ProfileTable& vmm = p.Table("vmm");
  EXPECT_EQ(vmm.line(1), 21);  // cuMemMap,2097152,2000,0.57,0.65,2.33,4.05
  EXPECT_EQ(vmm.Text(1, "call"), "cuMemMap");
  EXPECT_DOUBLE_EQ(vmm.Number(1, "p50_us"), 0.65);
}

TEST(Profile, AskingForANumberFromATextColumnIsABug) {
  const Profile p = LoadProfile(kFixture);
  EXPECT_THROW(p.Table("gemm").Number(0, "model"), InvariantError);
  EXPECT_THROW(p.Table("gemm").Number(0, "no_such_column"), InvariantError);
  EXPECT_THROW(p.Table("gemm").Text(150, "model"), InvariantError);
}

TEST(Profile, OptionalSectionsMayBeAbsent) {
  const Profile p = ParseProfile(Join(MinimalLines()), kPath);
  EXPECT_EQ(p.Find("allreduce"), nullptr);
  EXPECT_EQ(p.Find("vattention"), nullptr);
  EXPECT_EQ(p.Find("vmm_under_load"), nullptr);
  EXPECT_EQ(p.Find("step"), nullptr);
  ASSERT_NE(p.Find("gemm"), nullptr);
  EXPECT_EQ(p.Find("gemm")->size(), 1u);
}

TEST(Profile, CommentsBlankLinesSpacesAndCarriageReturnsAreIgnored) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin(), {"# written by kvprobe", "", "   "});
  lines[3 + 23] = "  Llama-3-8B , qkv , 1 , 256 , 256 , 6144 , 4096 , 29.78 , 432.670\r";
  lines.push_back("# trailing comment");
  const Profile p = ParseProfile(Join(lines), kPath);
  const ProfileTable& gemm = p.Table("gemm");
  EXPECT_EQ(gemm.line(0), 27);
  EXPECT_EQ(gemm.Text(0, "layer"), "qkv");
  EXPECT_DOUBLE_EQ(gemm.Number(0, "tflops"), 432.670);
  EXPECT_EQ(p.MetaLine("format_version"), 5);
}

TEST(Profile, AByteOrderMarkBeforeTheFirstLineIsSkipped) {
  // Some editors save UTF-8 with a byte order mark; the marker is not part of "[meta]",
  // and lines keep their numbers.
  const Profile p = ParseProfile("\xEF\xBB\xBF" + Join(MinimalLines()), kPath);
  EXPECT_EQ(p.MetaLine("format_version"), 2);
  EXPECT_EQ(p.Table("gemm").line(0), 24);
  // Anywhere else it is text like any other: here a section name it is no part of.
  std::vector<std::string> lines = MinimalLines();
  lines[13] = "\xEF\xBB\xBF[vmm]";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:14: [meta] line '\xEF\xBB\xBF[vmm]' is not "
                                           "'key: value'"));
}

TEST(Profile, UnknownColumnsInAKnownTableAreKeptAsTextAndNotChecked) {
  std::vector<std::string> lines = MinimalLines();
  lines[19] = "bytes,time_us,gbps,note";
  lines[20] = "1073741824,731.93,2934.0,not a number";
  const Profile p = ParseProfile(Join(lines), kPath);
  const ProfileTable& copy = p.Table("copy");
  EXPECT_TRUE(copy.HasColumn("note"));
  EXPECT_EQ(copy.Text(0, "note"), "not a number");
  EXPECT_THROW(copy.Number(0, "note"), InvariantError);
  EXPECT_DOUBLE_EQ(copy.Number(0, "gbps"), 2934.0);
}

TEST(Profile, NumbersMayUseExponentsAndSigns) {
  std::vector<std::string> lines = MinimalLines();
  lines[20] = "1.073741824e+09,7.3193E2,-0";
  const Profile p = ParseProfile(Join(lines), kPath);
  EXPECT_EQ(p.Table("copy").Number(0, "bytes"), 1073741824.0);
  EXPECT_DOUBLE_EQ(p.Table("copy").Number(0, "time_us"), 731.93);
}

TEST(Profile, UnknownMetaKeysAreKept) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin() + 13, "ecc: enabled");
  EXPECT_EQ(ParseProfile(Join(lines), kPath).MetaText("ecc"), "enabled");
}

TEST(Profile, AProfileKvprobeWroteIsRead) {
  // kvprobe --quick --model Llama-3-8B on an H200: extra [meta] keys, rows of paged and
  // contiguous layouts interleaved, no [allreduce] on one GPU.
  const Profile p = LoadProfile(KVSIM_TEST_DATA_DIR "/timing/h200_kvprobe_quick_profile.txt");
  EXPECT_EQ(p.MetaText("gpu_name"), "NVIDIA H200");
  EXPECT_EQ(p.MetaText("mode"), "quick");
  EXPECT_EQ(p.MetaText("cuda_runtime_version"), "13.0");
  EXPECT_EQ(p.Find("allreduce"), nullptr);
  EXPECT_EQ(p.Table("gemm").size(), 120u);  // 5 layers x 6 token counts x TP 1, 2, 4, 8
  EXPECT_EQ(p.Table("decode_attention").size(), 30u);
  // cuMemMap 0.582 us; pooled map + set access 33.01 us, so set access counts
  // 33.01 - 0.582 = 32.428 us; pooled unmap 20.47 us.
  const VmmLatencies v = VmmLatencyFromProfile(p);
  EXPECT_EQ(v.map, Nanos(582));
  EXPECT_EQ(v.set_access, Nanos(32428));
  EXPECT_EQ(v.unmap, Nanos(20470));
}

TEST(Profile, TheOptionalStepSectionIsReadWithModelAndLayoutAsText) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.end(),
               {"[step]",  // 31
                "model,tensor_parallel,layout,block_tokens,decode_seqs,context_tokens,"
                "prefill_tokens,time_us,graph",
                "Llama-3-8B,1,paged,16,64,512,0,6544.383,1"});  // 33
  const Profile p = ParseProfile(Join(lines), kPath);
  const ProfileTable& step = p.Table("step");
  EXPECT_EQ(step.line(0), 33);
  EXPECT_EQ(step.Text(0, "model"), "Llama-3-8B");
  EXPECT_EQ(step.Text(0, "layout"), "paged");
  EXPECT_EQ(step.Number(0, "decode_seqs"), 64);
  EXPECT_DOUBLE_EQ(step.Number(0, "time_us"), 6544.383);
  EXPECT_EQ(step.Number(0, "graph"), 1);
  EXPECT_THROW(step.Number(0, "layout"), InvariantError);
}

// ---- Every malformed case names file:line ----------------------------------

TEST(Profile, AnUnknownSectionIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin() + 18, "[power]");  // becomes line 19
  const std::string message = ParseError(lines);
  EXPECT_THAT(message, HasSubstr("p.txt:19: unknown section [power]"));
  EXPECT_THAT(message, HasSubstr("known: meta, vmm"));
}

TEST(Profile, ADuplicateSectionIsAnErrorNamingTheFirst) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.end(), {"[copy]", "bytes,time_us,gbps", "1048576,6.08,344.8"});  // 31-33
  EXPECT_THAT(ParseError(lines),
              HasSubstr("p.txt:31: duplicate section [copy] (first at line 19)"));
}

TEST(Profile, ADuplicateMetaSectionIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines.push_back("[meta]");
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:31: duplicate section [meta]"));
}

TEST(Profile, ARowWithTooFewOrTooManyFieldsIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines[23] = "Llama-3-8B,qkv,1,256,256,6144,4096,29.78";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:24: [gemm] row has 8 fields, the header has 9"));
  lines[23] = "Llama-3-8B,qkv,1,256,256,6144,4096,29.78,432.670,1";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:24: [gemm] row has 10 fields, the header has 9"));
}

TEST(Profile, ANonNumericValueInANumericColumnIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines[26] = "contiguous,0,16,2048,32,8,128,fast,2456.0";
  EXPECT_THAT(ParseError(lines),
              HasSubstr("p.txt:27: [decode_attention] column 'time_us': 'fast' is not a number"));
}

TEST(Profile, EmptyNanAndInfiniteNumbersAreRejected) {
  for (const char* bad : {"", "nan", "inf", "-inf", "1e999", "12us", "0x10", "1,5"}) {
    std::vector<std::string> lines = MinimalLines();
    lines[20] = std::string("1073741824,") + bad + ",2934.0";
    EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:21: [copy]")) << "value '" << bad << "'";
  }
}

TEST(Profile, TextColumnsAcceptAnyText) {
  std::vector<std::string> lines = MinimalLines();
  lines[15] = "cuMemMap_v2,2097152,2000,0.57,0.65,2.33,4.05";
  EXPECT_EQ(ParseProfile(Join(lines), kPath).Table("vmm").Text(0, "call"), "cuMemMap_v2");
}

TEST(Profile, AMissingRequiredColumnIsAnErrorAtTheHeader) {
  std::vector<std::string> lines = MinimalLines();
  lines[28] = "layout,block_tokens,batch,tokens,q_heads,kv_heads,head_dim,tflops";
  lines[29] = "contiguous,0,1,2048,32,8,128,334.63";
  EXPECT_THAT(ParseError(lines),
              HasSubstr("p.txt:29: [prefill_attention] header lacks required column 'time_us'"));
}

TEST(Profile, ARepeatedColumnIsAnErrorAtTheHeader) {
  std::vector<std::string> lines = MinimalLines();
  lines[19] = "bytes,time_us,gbps,bytes";
  lines[20] = "1073741824,731.93,2934.0,1";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:20: [copy] header repeats column 'bytes'"));
}

TEST(Profile, AMissingRequiredSectionIsAnErrorAtTheLastLine) {
  std::vector<std::string> lines = MinimalLines();
  lines.erase(lines.begin() + 18, lines.begin() + 21);  // [copy], 3 lines: 27 remain
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:27: required section [copy] is missing"));
  std::vector<std::string> no_meta = MinimalLines();
  no_meta.erase(no_meta.begin(), no_meta.begin() + 13);  // 17 remain
  EXPECT_THAT(ParseError(no_meta), HasSubstr("p.txt:17: required section [meta] is missing"));
}

TEST(Profile, AFileReadForItsStepRowsNeedsOnlyMeta) {
  std::vector<std::string> lines = MinimalLines();
  lines.resize(13);  // [meta] alone
  lines.push_back("[step]");
  lines.push_back(
      "model,tensor_parallel,layout,block_tokens,decode_seqs,context_tokens,prefill_tokens,"
      "time_us,graph");
  lines.push_back("Llama-3-8B,1,contiguous,0,16,2048,0,6106.630,1");
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:16: required section [vmm] is missing"));
  const Profile p = ParseProfile(Join(lines), kPath, RequiredSections::kMetaOnly);
  EXPECT_EQ(p.MetaText("gpu_name"), "NVIDIA H100 80GB HBM3");
  ASSERT_NE(p.Find("step"), nullptr);
  EXPECT_EQ(p.Find("step")->line(0), 16);
  EXPECT_EQ(p.Find("gemm"), nullptr);
  // [meta] itself is still required.
  const std::vector<std::string> no_meta(lines.begin() + 13, lines.end());
  try {
    ParseProfile(Join(no_meta), kPath, RequiredSections::kMetaOnly);
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:3: required section [meta] is missing"));
  }
}

TEST(Profile, ARequiredSectionWithoutRowsIsAnErrorAtItsHeader) {
  std::vector<std::string> lines = MinimalLines();
  lines.erase(lines.begin() + 23);  // the only [gemm] row
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:22: required section [gemm] has no rows"));
}

TEST(Profile, ATableWithoutAHeaderIsAnErrorAtItsSectionLine) {
  std::vector<std::string> lines = MinimalLines();
  lines.push_back("[allreduce]");  // line 31, then the end of the file
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:31: section [allreduce] has no header line"));
  lines.insert(lines.end(), {"[vattention]"});
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:31: section [allreduce] has no header line"));
}

TEST(Profile, AMalformedSectionHeaderIsAnError) {
  for (const char* bad : {"[Gemm]", "[gemm", "[]", "[2gemm]", "[ge mm]"}) {
    std::vector<std::string> lines = MinimalLines();
    lines[21] = bad;
    EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:22: malformed section header")) << bad;
  }
}

TEST(Profile, ALineBeforeAnySectionIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin(), "format_version: 1");
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:1: "));
  EXPECT_THAT(ParseError(lines), HasSubstr("outside any section"));
}

TEST(Profile, AMetaLineWithoutAColonIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines[12] = "host gpu-node-07";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:13: [meta] line 'host gpu-node-07' is not"));
}

TEST(Profile, ARepeatedMetaKeyIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin() + 13, "sm_count: 144");  // line 14
  EXPECT_THAT(ParseError(lines),
              HasSubstr("p.txt:14: duplicate [meta] key 'sm_count' (first at line 6)"));
}

TEST(Profile, AMissingMetaKeyIsAnErrorAtTheMetaSection) {
  std::vector<std::string> lines = MinimalLines();
  lines.erase(lines.begin() + 11);  // allocation_granularity_bytes
  EXPECT_THAT(ParseError(lines),
              HasSubstr("p.txt:1: [meta] lacks required key 'allocation_granularity_bytes'"));
}

TEST(Profile, ANonNumericMetaNumberIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines[5] = "sm_count: many";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:6: [meta] sm_count: 'many' is not a number"));
}

TEST(Profile, ANonPositiveMetaNumberIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines[5] = "sm_count: -1";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:6: [meta] sm_count: '-1' must be positive"));
}

TEST(Profile, AnotherFormatVersionIsRejected) {
  std::vector<std::string> lines = MinimalLines();
  lines[1] = "format_version: 2";
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:2: [meta] format_version 2 is not supported"));
}

TEST(Profile, AMissingFileIsAnErrorNamingIt) {
  try {
    LoadProfile("/no/such/dir/profile.txt");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/no/such/dir/profile.txt: profile not found"));
  }
}

TEST(Profile, AnEmptyFileLacksTheMetaSectionAtLineOne) {
  EXPECT_THAT(ParseError({}), HasSubstr("p.txt:1: required section [meta] is missing"));
}

// ---- A file cut short ----------------------------------------------------------

TEST(Profile, ARowCutMidwayIsAnErrorEvenWithoutTheEndMarker) {
  // An earlier kvprobe's profile cut inside its last row: the line has no newline and
  // too few fields.
  const std::string whole = Join(MinimalLines());
  const std::string cut = whole.substr(0, whole.rfind(",334.63"));
  try {
    ParseProfile(cut, kPath);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:30: [prefill_attention] row has 8 fields, the header "
                                    "has 9"));
  }
}

TEST(Profile, VersionsFromTheFirstThatWritesTheEndMarkerOnAreComparedNumerically) {
  EXPECT_EQ(kFirstKvprobeWithEndMarker, "0.3.16");
  for (const char* later : {"0.3.16", "0.3.17", "0.3.100", "0.4", "0.10.0", "1", "0.3.16-dirty"}) {
    EXPECT_TRUE(KvprobeWritesEndMarker(later)) << later;
  }
  for (const char* earlier : {"0.3.15", "0.3.9", "0.3", "0.1.0", "0.2.99", "", "dev", "v0.3.16"}) {
    EXPECT_FALSE(KvprobeWritesEndMarker(earlier)) << earlier;
  }
}

// MinimalLines() as the kvprobe that writes the end marker writes it: its version, a blank
// line and the marker last.
std::vector<std::string> MarkedLines() {
  std::vector<std::string> lines = MinimalLines();
  lines[2] = "kvprobe_version: " + std::string(kFirstKvprobeWithEndMarker);
  lines.push_back("");
  lines.emplace_back(kProfileEndMarker);
  return lines;
}

TEST(Profile, AProfileEndingWithTheEndMarkerIsWhole) {
  EXPECT_EQ(ParseProfile(Join(MarkedLines()), kPath).Table("prefill_attention").size(), 1u);
  // Blank lines, spaces and a carriage return after it change nothing.
  EXPECT_NO_THROW(ParseProfile(Join(MarkedLines()) + "\n  \r\n", kPath));
  std::string crlf = Join(MarkedLines());
  crlf.insert(crlf.size() - 1, "\r");
  EXPECT_NO_THROW(ParseProfile(crlf, kPath));
}

TEST(Profile, AProfileOfAKvprobeThatWritesTheEndMarkerIsCutShortWithoutIt) {
  std::vector<std::string> lines = MarkedLines();
  lines.resize(lines.size() - 2);  // cut after the last row: nothing else is missing
  EXPECT_THAT(ParseError(lines),
              HasSubstr(fmt::format("p.txt: ends without the end marker kvprobe writes last: the "
                                    "file is cut short (kvprobe_version {} ends every profile "
                                    "with the line '{}'; this file ends at line {})",
                                    kFirstKvprobeWithEndMarker, kProfileEndMarker, lines.size())));
}

TEST(Profile, ACutThatShortensARowOrDropsASectionIsNamedCutShort) {
  // Cut inside the last number: every field still there, the value wrong.
  const std::string whole = Join(MarkedLines());
  const std::string in_number = whole.substr(0, whole.rfind("34.63"));
  // Cut inside the last row: too few fields.
  const std::string in_row = whole.substr(0, whole.rfind(",334.63"));
  // Cut before the last required section.
  const std::string in_sections = whole.substr(0, whole.find("[prefill_attention]"));
  // Cut inside the marker itself.
  const std::string in_marker = whole.substr(0, whole.size() - 4);
  for (const std::string& text : {in_number, in_row, in_sections, in_marker}) {
    try {
      ParseProfile(text, kPath);
      ADD_FAILURE() << "a cut profile was read: ..." << text.substr(text.size() - 30);
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr("p.txt: ends without the end marker kvprobe writes last"));
    }
  }
  // Only the final newline gone: the marker is whole, and so is the file.
  EXPECT_NO_THROW(ParseProfile(whole.substr(0, whole.size() - 1), kPath));
}

TEST(Profile, LinesAfterTheEndMarkerAreNamedWithTheMarkersLine) {
  // Two files concatenated, or rows merged in by an older kvprobe: the marker is in
  // the middle.
  std::vector<std::string> lines = MarkedLines();
  const size_t marker_line = lines.size();  // MarkedLines ends with the marker
  ASSERT_EQ(lines.back(), kProfileEndMarker);
  lines.push_back("# another copy");
  EXPECT_THAT(ParseError(lines),
              HasSubstr(fmt::format("p.txt:{}: lines after the end marker of line {}",
                                    marker_line + 1, marker_line)));
}

TEST(Profile, ACutInMetaBeforeTheVersionIsNamedByWhatIsMissing) {
  // Without kvprobe_version nothing says the file should end with the marker.
  std::vector<std::string> lines = MarkedLines();
  lines.resize(2);
  EXPECT_THAT(ParseError(lines), HasSubstr("p.txt:2: required section [vmm] is missing"));
}

TEST(Profile, EveryCommittedProfileIsReadAndThoseOfAKvprobeThatWritesTheMarkerEndWithIt) {
  int profiles = 0, marked = 0;
  for (const char* dir : {KVSIM_SOURCE_DIR "/models/profiles", KVSIM_TEST_DATA_DIR "/timing"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (entry.path().extension() != ".txt") continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      if (!text.str().starts_with("# kvprobe profile")) continue;
      SCOPED_TRACE(entry.path().string());
      // Partial runs (kvprobe --only) hold [meta] and some sections.
      const Profile p = LoadProfile(entry.path().string(), RequiredSections::kMetaOnly);
      std::string body = text.str();
      while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
      const bool ends_with_marker = body.ends_with(kProfileEndMarker);
      EXPECT_EQ(ends_with_marker, KvprobeWritesEndMarker(p.MetaText("kvprobe_version")));
      ++profiles;
      marked += ends_with_marker ? 1 : 0;
    }
  }
  EXPECT_GE(profiles, 50);
  EXPECT_GE(marked, 2);  // H200/repeat_1235Z's profile.txt and step_profile.txt
}

// ---- VMM latencies -----------------------------------------------------------

TEST(VmmLatencyFromProfile, TheFixtureGivesThePooledTwoMiBMedians) {
  // At 2 MiB: cuMemMap 0.65 us; pooled map + set access 23.55 us, so set access counts
  // 23.55 - 0.65 = 22.90 us; pooled unmap 15.98 us. The 32 MiB rows (0.66, 21.73,
  // 15.76 us) are a different handle size.
  const VmmLatencies v = VmmLatencyFromProfile(LoadProfile(kFixture));
  EXPECT_EQ(v.map, Nanos(650));
  EXPECT_EQ(v.set_access, Nanos(22900));
  EXPECT_EQ(v.unmap, Nanos(15980));
}

TEST(VmmLatencyFromProfile, WithoutPooledRowsTheCallsTimedApartAreUsed) {
  std::string text;
  {
    std::ifstream in(kFixture);
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  for (const std::string row : {"map_set_access_pooled,", "unmap_pooled,"}) {
    size_t at;
    while ((at = text.find("\n" + row)) != std::string::npos) {
      text.erase(at + 1, text.find('\n', at + 1) - at);
    }
  }
  const VmmLatencies v = VmmLatencyFromProfile(ParseProfile(text, "p.txt"));
  EXPECT_EQ(v.map, Nanos(650));
  EXPECT_EQ(v.set_access, Nanos(22160));
  EXPECT_EQ(v.unmap, Nanos(16140));
}

TEST(VmmLatencyFromProfile, RowsAreMatchedAtTheAllocationGranularity) {
  std::vector<std::string> lines = MinimalLines();
  lines[11] = "allocation_granularity_bytes: 65536";
  lines.insert(lines.begin() + 18, "cuMemMap,65536,2000,0.2,0.31,0.5,0.9");
  const Profile p = ParseProfile(Join(lines), kPath);
  // cuMemMap now has a 64 KiB row, cuMemSetAccess does not.
  try {
    VmmLatencyFromProfile(p);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("p.txt:14: [vmm] has no cuMemSetAccess row with handle_bytes 65536"));
  }
}

TEST(VmmLatencyFromProfile, ARepeatedRowIsAnErrorAtItsLine) {
  std::vector<std::string> lines = MinimalLines();
  lines.insert(lines.begin() + 18, "cuMemUnmap,2097152,100,15.0,16.0,17.0,24.0");  // line 19
  try {
    VmmLatencyFromProfile(ParseProfile(Join(lines), kPath));
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:19: [vmm] repeats cuMemUnmap"));
    EXPECT_THAT(e.what(), HasSubstr("first at line 18"));
  }
}

TEST(VmmLatencyFromProfile, AZeroLatencyIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines[15] = "cuMemMap,2097152,2000,0,0,0,0";
  try {
    VmmLatencyFromProfile(ParseProfile(Join(lines), kPath));
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:16: [vmm] cuMemMap p50_us must be in (0, 1e6]"));
  }
}

TEST(VmmLatencyFromProfile, ACallOfMoreThanASecondIsAnError) {
  std::vector<std::string> lines = MinimalLines();
  lines[15] = "cuMemMap,2097152,2000,2e6,2e6,2e6,2e6";  // 2 s a call
  try {
    VmmLatencyFromProfile(ParseProfile(Join(lines), kPath));
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:16: [vmm] cuMemMap p50_us must be in (0, 1e6]"));
  }
  // Beyond 1000 s a time is refused by any section, as the profile is read.
  lines[15] = "cuMemMap,2097152,2000,1e12,1e12,1e12,1e12";  // would overflow a page's cost
  try {
    ParseProfile(Join(lines), kPath);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("p.txt:16: [vmm] column 'p10_us': 1e12 is not a time"));
  }
}

}  // namespace
}  // namespace kvsim

namespace kvsim {
namespace {

constexpr const char* kCommittedH100 = KVSIM_SOURCE_DIR "/models/profiles/H100-SXM/profile.txt";

// The p50 of a [vmm] call at 2 MiB, read straight from the table.
double VmmP50Us(const Profile& p, const std::string& call) {
  const ProfileTable& t = p.Table("vmm");
  for (size_t r = 0; r < t.size(); ++r) {
    if (t.Text(r, "call") == call && t.Number(r, "handle_bytes") == 2097152) {
      return t.Number(r, "p50_us");
    }
  }
  ADD_FAILURE() << "no " << call << " row";
  return 0;
}

TEST(Profile, TheCommittedH100ProfileHasEveryMeasurement) {
  const Profile p = LoadProfile(kCommittedH100);
  EXPECT_EQ(p.MetaText("gpu_name"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(p.MetaNumber("allocation_granularity_bytes"), 2097152);
  for (const char* table : {"vmm", "vmm_under_load", "copy", "gemm", "decode_attention",
                            "prefill_attention", "vattention"}) {
    EXPECT_NE(p.Find(table), nullptr) << table;
  }
  // All-reduce on 2, 3 and 4 GPUs of a 4-GPU host: 64 KiB to 256 MiB, doubling.
  ASSERT_NE(p.Find("allreduce"), nullptr);
  const ProfileTable& allreduce = p.Table("allreduce");
  ASSERT_EQ(allreduce.size(), 3u * 13);
  for (size_t r = 0; r < allreduce.size(); ++r) {
    EXPECT_EQ(allreduce.Number(r, "gpus"), 2.0 + static_cast<double>(r / 13)) << r;
    EXPECT_EQ(allreduce.Number(r, "bytes"), 65536.0 * std::pow(2.0, r % 13)) << r;
  }
  // 15 token counts (1..16384) for 4 layers and 11 (1..1024) for the LM head, at each
  // TP that splits the card: 1, 2, 4, 8 for 11 cards, 1, 2, 4 for Qwen2.5-7B (28 heads).
  EXPECT_EQ(p.Table("gemm").size(), (11u * 4 + 3) * (4 * 15 + 11));
}

TEST(Profile, TheCommittedH100ProfileGivesVAttentionThePooledMappingCosts) {
  const Profile p = LoadProfile(kCommittedH100);
  const VmmLatencies v = VmmLatencyFromProfile(p);
  EXPECT_EQ(v.map, SecondsToNanos(VmmP50Us(p, "cuMemMap") * 1e-6));
  EXPECT_EQ(v.set_access, SecondsToNanos(VmmP50Us(p, "map_set_access_pooled") * 1e-6) - v.map);
  EXPECT_EQ(v.unmap, SecondsToNanos(VmmP50Us(p, "unmap_pooled") * 1e-6));
}

}  // namespace
}  // namespace kvsim
