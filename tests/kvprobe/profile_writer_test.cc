// kvprobe's profile writer: numbers as profile text, a small profile rendered exactly
// (tools/kvprobe/PROFILE_FORMAT.md), and the rows, fields, names and keys it refuses; the
// header lines written from the profile schema against kvprobe's committed H200 output.
#include "tools/kvprobe/host/profile_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/timing/profile.h"
#include "tests/testing/temp_dir.h"

namespace kvprobe {
namespace {

using ::testing::HasSubstr;

constexpr const char* kFirstLine = "# kvprobe profile (format: tools/kvprobe/PROFILE_FORMAT.md)\n";
// What every profile ends with: a blank line and the end marker kvsim looks for.
const std::string kLastLines = "\n" + std::string(kvsim::kProfileEndMarker) + "\n";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(NumTest, WritesIntegersExactly) {
  EXPECT_EQ(Num(0), "0");
  EXPECT_EQ(Num(12), "12");
  EXPECT_EQ(Num(-3), "-3");
  EXPECT_EQ(Num(2097152), "2097152");
  // More digits than `significant`: still written in full.
  EXPECT_EQ(Num(85017493504.0), "85017493504");
  EXPECT_EQ(Num(1073741824.0, 3), "1073741824");
}

TEST(NumTest, WritesFractionsWithSixSignificantDigitsByDefault) {
  EXPECT_EQ(Num(0.65), "0.65");
  EXPECT_EQ(Num(2.5), "2.5");
  EXPECT_EQ(Num(731.93), "731.93");
  EXPECT_EQ(Num(1.0 / 3.0), "0.333333");
  EXPECT_EQ(Num(2934.0123456), "2934.01");
}

TEST(NumTest, WritesFractionsWithTheSignificantDigitsAsked) {
  EXPECT_EQ(Num(1.0 / 3.0, 3), "0.333");
  EXPECT_EQ(Num(432.6701, 4), "432.7");
  EXPECT_EQ(Num(1234.5, 2), "1.2e+03");
}

TEST(NumTest, WritesTinyFractionsInExponentForm) {
  EXPECT_EQ(Num(1e-7), "1e-07");
  EXPECT_EQ(Num(-2.5e-9), "-2.5e-09");
}

TEST(NumTest, WrittenNumbersReadBackAsTheSameValue) {
  for (double v : {0.0, 1.0, 0.65, 1e-7, 22.16, 85017493504.0, 16384.0}) {
    EXPECT_EQ(std::stod(Num(v)), v) << Num(v);
  }
}

TEST(NumTest, NonFiniteNumbersThrow) {
  EXPECT_THROW(Num(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_THROW(Num(std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_THROW(Num(-std::numeric_limits<double>::infinity()), std::invalid_argument);
}

TEST(ProfileWriterTest, RendersMetaThenTablesInTheOrderTheyWereAdded) {
  ProfileWriter w;
  w.Meta("format_version", "1");
  w.Meta("gpu_name", "NVIDIA H100 80GB HBM3");
  ProfileWriter::Table& vmm = w.AddTable("vmm", {"call", "handle_bytes", "p50_us"});
  ProfileWriter::Table& copy = w.AddTable("copy", {"bytes", "time_us", "gbps"});
  copy.Row({Num(1073741824.0), Num(731.93), Num(2934.0)});
  vmm.Row({"cuMemMap", Num(2097152), Num(0.65)});
  vmm.Row({"cuMemUnmap", "2097152", "16.14"});
  EXPECT_EQ(w.Render(), std::string(kFirstLine) +
                            "[meta]\n"
                            "format_version: 1\n"
                            "gpu_name: NVIDIA H100 80GB HBM3\n"
                            "\n"
                            "[vmm]\n"
                            "call,handle_bytes,p50_us\n"
                            "cuMemMap,2097152,0.65\n"
                            "cuMemUnmap,2097152,16.14\n"
                            "\n"
                            "[copy]\n"
                            "bytes,time_us,gbps\n"
                            "1073741824,731.93,2934\n" +
                            kLastLines);
}

TEST(ProfileWriterTest, EmptyWriterRendersAnEmptyMetaSection) {
  EXPECT_EQ(ProfileWriter().Render(), std::string(kFirstLine) + "[meta]\n" + kLastLines);
}

TEST(ProfileWriterTest, EmptyTableIsRenderedAsItsHeaderOnly) {
  ProfileWriter w;
  w.AddTable("allreduce", {"gpus", "bytes"});
  EXPECT_EQ(w.Render(),
            std::string(kFirstLine) + "[meta]\n\n[allreduce]\ngpus,bytes\n" + kLastLines);
}

TEST(ProfileWriterTest, TableCountsItsRowsAndKnowsItsName) {
  ProfileWriter w;
  ProfileWriter::Table& t = w.AddTable("copy", {"bytes"});
  EXPECT_EQ(t.name(), "copy");
  EXPECT_EQ(t.size(), 0u);
  t.Row({"1"});
  t.Row({"2"});
  EXPECT_EQ(t.size(), 2u);
}

TEST(ProfileWriterTest, TableReferenceStaysValidWhileMoreTablesAreAdded) {
  ProfileWriter w;
  ProfileWriter::Table& first = w.AddTable("t0", {"x"});
  for (int i = 1; i < 50; ++i) w.AddTable("t" + std::to_string(i), {"x"});
  first.Row({"7"});
  EXPECT_THAT(w.Render(), HasSubstr("[t0]\nx\n7\n\n[t1]\n"));
}

TEST(ProfileWriterTest, MetaReplacesAnExistingKeyInPlace) {
  ProfileWriter w;
  w.Meta("a", "1");
  w.Meta("b", "2");
  w.Meta("a", "3");
  EXPECT_EQ(w.Render(), std::string(kFirstLine) + "[meta]\na: 3\nb: 2\n" + kLastLines);
}

TEST(ProfileWriterTest, MetaValueMayHoldSpacesAndColons) {
  ProfileWriter w;
  w.Meta("date_utc", "2025-01-15T10:42:07Z");
  w.Meta("host", "");
  EXPECT_EQ(w.Render(), std::string(kFirstLine) +
                            "[meta]\ndate_utc: 2025-01-15T10:42:07Z\nhost: \n" + kLastLines);
}

TEST(ProfileWriterTest, MalformedMetaKeysAndValuesThrow) {
  ProfileWriter w;
  EXPECT_THROW(w.Meta("", "1"), std::invalid_argument);
  EXPECT_THROW(w.Meta("a:b", "1"), std::invalid_argument);
  EXPECT_THROW(w.Meta("gpu name", "1"), std::invalid_argument);
  EXPECT_THROW(w.Meta("gpu\tname", "1"), std::invalid_argument);
  EXPECT_THROW(w.Meta("gpu\nname", "1"), std::invalid_argument);
  EXPECT_THROW(w.Meta("host", "a\nb"), std::invalid_argument);
  EXPECT_THROW(w.Meta("host", "a\rb"), std::invalid_argument);
  EXPECT_EQ(w.Render(), std::string(kFirstLine) + "[meta]\n" + kLastLines);
}

TEST(ProfileWriterTest, RowWithTheWrongFieldCountThrowsAndIsNotAdded) {
  ProfileWriter w;
  ProfileWriter::Table& t = w.AddTable("copy", {"bytes", "time_us", "gbps"});
  try {
    t.Row({"1", "2"});
    ADD_FAILURE() << "a short row was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("[copy]"));
    EXPECT_THAT(e.what(), HasSubstr("2 fields"));
    EXPECT_THAT(e.what(), HasSubstr("header has 3"));
  }
  EXPECT_THROW(t.Row({"1", "2", "3", "4"}), std::invalid_argument);
  EXPECT_THROW(t.Row({}), std::invalid_argument);
  EXPECT_EQ(t.size(), 0u);
}

TEST(ProfileWriterTest, FieldsWithCommasQuotesOrLineBreaksThrow) {
  ProfileWriter w;
  ProfileWriter::Table& t = w.AddTable("gemm", {"model", "layer"});
  EXPECT_THROW(t.Row({"Llama,3", "qkv"}), std::invalid_argument);
  EXPECT_THROW(t.Row({"Llama\"3", "qkv"}), std::invalid_argument);
  EXPECT_THROW(t.Row({"Llama", "qkv\n"}), std::invalid_argument);
  EXPECT_THROW(t.Row({"Llama", "q\rkv"}), std::invalid_argument);
  EXPECT_THROW(t.Row({"", "qkv"}), std::invalid_argument);
  EXPECT_EQ(t.size(), 0u);
  t.Row({"Llama-3-8B", "qkv"});
  EXPECT_EQ(t.size(), 1u);
}

TEST(ProfileWriterTest, DuplicateTableThrows) {
  ProfileWriter w;
  w.AddTable("vmm", {"call"});
  EXPECT_THROW(w.AddTable("vmm", {"other"}), std::invalid_argument);
  EXPECT_EQ(w.Render(), std::string(kFirstLine) + "[meta]\n\n[vmm]\ncall\n" + kLastLines);
}

TEST(ProfileWriterTest, BadTableNamesThrow) {
  ProfileWriter w;
  for (const char* name : {"", "meta", "Vmm", "vmm under load", "vmm-load", "[vmm]", "gemm,"}) {
    SCOPED_TRACE(name);
    EXPECT_THROW(w.AddTable(name, {"x"}), std::invalid_argument);
  }
  w.AddTable("vmm_under_load2", {"metric", "value"});
}

TEST(ProfileWriterTest, BadOrMissingColumnsThrow) {
  ProfileWriter w;
  EXPECT_THROW(w.AddTable("a", {}), std::invalid_argument);
  EXPECT_THROW(w.AddTable("b", {"time us"}), std::invalid_argument);
  EXPECT_THROW(w.AddTable("c", {"p50_us", ""}), std::invalid_argument);
  EXPECT_THROW(w.AddTable("d", {"Bytes"}), std::invalid_argument);
  EXPECT_THROW(w.AddTable("e", {"a,b"}), std::invalid_argument);
}

TEST(ProfileWriterTest, WriteToWritesTheRenderedText) {
  kvsim::testing::TempDir dir;
  ProfileWriter w;
  w.Meta("format_version", "1");
  w.AddTable("copy", {"bytes", "gbps"}).Row({"1024", "2.5"});
  const std::string path = dir.PathOf("profile.txt");
  w.WriteTo(path);
  EXPECT_EQ(ReadFile(path), w.Render());
}

TEST(ProfileWriterTest, WriteToReplacesAnExistingFile) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.Write("profile.txt", std::string(10000, 'x'));
  ProfileWriter w;
  w.WriteTo(path);
  EXPECT_EQ(ReadFile(path), w.Render());
}

TEST(ProfileWriterTest, WriteToAnUnwritablePathThrowsNamingIt) {
  kvsim::testing::TempDir dir;
  const std::string path = dir.PathOf("no/such/folder/profile.txt");
  try {
    ProfileWriter().WriteTo(path);
    ADD_FAILURE() << "wrote to " << path;
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
  }
}

}  // namespace
}  // namespace kvprobe

namespace kvprobe {
namespace {

TEST(ProfileWriterAndKvsimReader, WhatKvprobeWritesKvsimReadsBack) {
  ProfileWriter w;
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"format_version", "1"},
                                                        {"kvprobe_version", "0.1.0"},
                                                        {"gpu_name", "NVIDIA H100 80GB HBM3"},
                                                        {"gpu_memory_bytes", "85017493504"},
                                                        {"sm_count", "132"},
                                                        {"sm_clock_mhz", "1980"},
                                                        {"driver_version", "580.159.04"},
                                                        {"cuda_driver_api_version", "13.0"},
                                                        {"cuda_runtime_version", "13.0"},
                                                        {"date_utc", "2026-11-26T08:00:00Z"},
                                                        {"allocation_granularity_bytes", "2097152"},
                                                        {"host", "vm"}}) {
    w.Meta(key, value);
  }
  auto& vmm = w.AddTable(
      "vmm", {"call", "handle_bytes", "samples", "p10_us", "p50_us", "p90_us", "p99_us"});
  vmm.Row({"cuMemMap", Num(2097152), Num(1000), Num(0.5), Num(0.65), Num(0.9), Num(2.1)});
  vmm.Row({"cuMemSetAccess", Num(2097152), Num(1000), Num(20), Num(22.16), Num(24), Num(60)});
  vmm.Row({"cuMemUnmap", Num(2097152), Num(1000), Num(15), Num(16.14), Num(17), Num(30)});
  w.AddTable("copy", {"bytes", "time_us", "gbps"}).Row({Num(1073741824), Num(713.73), Num(3009)});
  w.AddTable("gemm",
             {"model", "layer", "tensor_parallel", "tokens", "m", "n", "k", "time_us", "tflops"})
      .Row({"Llama-3-8B", "qkv", "1", "64", "64", "6144", "4096", Num(23.268), Num(138.4)});
  auto& decode =
      w.AddTable("decode_attention", {"layout", "block_tokens", "batch", "context_tokens",
                                      "q_heads", "kv_heads", "head_dim", "time_us", "kv_gbps"});
  decode.Row({"contiguous", "0", "64", "4096", "32", "8", "128", Num(383.69), Num(2798)});
  decode.Row({"paged", "16", "64", "4096", "32", "8", "128", Num(449.24), Num(2390)});
  auto& prefill =
      w.AddTable("prefill_attention", {"layout", "block_tokens", "batch", "tokens", "q_heads",
                                       "kv_heads", "head_dim", "time_us", "tflops"});
  prefill.Row({"contiguous", "0", "1", "2048", "32", "8", "128", Num(1036.4), Num(33.17)});
  prefill.Row({"paged", "16", "1", "2048", "32", "8", "128", Num(1191.3), Num(28.86)});
  const std::string path = ::testing::TempDir() + "/kvprobe_roundtrip_profile.txt";
  w.WriteTo(path);

  const kvsim::Profile p = kvsim::LoadProfile(path);
  EXPECT_EQ(p.MetaText("gpu_name"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(p.MetaNumber("gpu_memory_bytes"), 85017493504.0);
  EXPECT_EQ(p.Table("vmm").size(), 3u);
  EXPECT_EQ(p.Table("vmm").Text(1, "call"), "cuMemSetAccess");
  EXPECT_EQ(p.Table("vmm").Number(1, "p50_us"), 22.16);
  EXPECT_EQ(p.Table("copy").Number(0, "gbps"), 3009);
  EXPECT_EQ(p.Table("decode_attention").Text(1, "layout"), "paged");
  EXPECT_EQ(p.Table("prefill_attention").Number(0, "time_us"), 1036.4);
  const kvsim::VmmLatencies v = kvsim::VmmLatencyFromProfile(p);
  EXPECT_EQ(v.set_access, kvsim::Nanos(22160));
  std::remove(path.c_str());
}

TEST(ProfileWriterAndKvsimReader, AProfileOfThisKvprobeCutAnywhereAfterItsVersionIsCutShort) {
  ProfileWriter w;
  for (const schema::Field& f : schema::kMeta.fields) {
    w.Meta(f.name, f.type == schema::Type::kText ? "x" : "1");
  }
  w.Meta(schema::meta::kKvprobeVersion, std::string(kvsim::kFirstKvprobeWithEndMarker));
  for (const schema::Section& s : schema::kSections) {
    if (s.layout != schema::Layout::kTable) continue;
    std::vector<std::string> row;
    for (const schema::Field& f : s.fields) {
      row.push_back(f.type == schema::Type::kText ? "x" : "12.5");
    }
    w.AddTable(s).Row(row);
  }
  const std::string text = w.Render();
  ASSERT_TRUE(text.ends_with(std::string(kvsim::kProfileEndMarker) + "\n"));
  EXPECT_NO_THROW(kvsim::ParseProfile(text, "p.txt"));
  // Every cut from the end of the version line to the marker's last character.
  const std::string version_line = std::string(schema::meta::kKvprobeVersion) + ": " +
                                   std::string(kvsim::kFirstKvprobeWithEndMarker) + "\n";
  const size_t first_cut = text.find(version_line) + version_line.size();
  for (size_t cut = first_cut; cut + 1 < text.size(); ++cut) {
    try {
      kvsim::ParseProfile(text.substr(0, cut), "p.txt");
      ADD_FAILURE() << "read a profile cut at byte " << cut;
    } catch (const kvsim::InputError& e) {
      EXPECT_THAT(e.what(),
                  HasSubstr("p.txt: ends without the end marker kvprobe writes last: the file is "
                            "cut short"))
          << "cut at byte " << cut;
    }
  }
}

TEST(KvprobeVersion, TheKvprobeBuiltHereWritesTheEndMarkerKvsimRequiresOfIt) {
  // The version kvprobe writes into [meta] is the build's KVPROBE_VERSION_STRING.
  const std::string cmake =
      ReadFile(std::string(KVSIM_SOURCE_DIR) + "/tools/kvprobe/CMakeLists.txt");
  const std::string key = "set(KVPROBE_VERSION_STRING \"";
  const size_t at = cmake.find(key);
  ASSERT_NE(at, std::string::npos);
  const std::string version =
      cmake.substr(at + key.size(), cmake.find('"', at + key.size()) - at - key.size());
  EXPECT_TRUE(kvsim::KvprobeWritesEndMarker(version)) << version;
  EXPECT_THAT(cmake, HasSubstr("project(kvprobe VERSION " + version + " "));
}

// ---- The profile schema --------------------------------------------------------

// The lines of a file of the repository.
std::vector<std::string> SourceLines(const std::string& path) {
  std::istringstream in(ReadFile(std::string(KVSIM_SOURCE_DIR) + "/" + path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ProfileSchemaTest, TablesHaveTheHeadersOfTheCommittedH200Profile) {
  // kvprobe's full run on an H200, with every table section.
  const std::vector<std::string> lines = SourceLines("models/profiles/H200/profile.txt");
  ASSERT_FALSE(lines.empty());
  std::map<std::string, std::string> headers;  // section line -> the line after it
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].starts_with("[")) headers[lines[i]] = lines[i + 1];
  }
  for (const schema::Section& s : schema::kSections) {
    if (s.layout != schema::Layout::kTable) continue;
    SCOPED_TRACE(s.name);
    ASSERT_TRUE(headers.contains(SectionLine(s)));
    EXPECT_EQ(headers[SectionLine(s)], HeaderLine(s));
    ProfileWriter w;
    w.AddTable(s);
    EXPECT_EQ(w.Render(), std::string(kFirstLine) + "[meta]\n\n" + SectionLine(s) + "\n" +
                              headers[SectionLine(s)] + "\n" + kLastLines);
  }
}

TEST(ProfileSchemaTest, MetaKeysOfTheCommittedH200ProfileAreSchemaKeys) {
  bool in_meta = false;
  int keys = 0;
  for (const std::string& line : SourceLines("models/profiles/H200/profile.txt")) {
    if (line.starts_with("[")) in_meta = line == SectionLine(schema::kMeta);
    if (!in_meta || line.find(": ") == std::string::npos) continue;
    const std::string key = line.substr(0, line.find(": "));
    EXPECT_NE(schema::FindField(schema::kMeta, key), nullptr) << key;
    ++keys;
  }
  EXPECT_GE(keys, 12);
}

TEST(ProfileSchemaTest, RawFilesHaveTheHeadersOfTheCommittedRawOutputs) {
  const std::pair<schema::RawFile, const char*> kCommitted[] = {
      {schema::kVmmSamplesFile, "models/profiles/H200/vmm_samples.csv"},
      {schema::kDecodeSplitsFile, "models/profiles/H200/decode_splits.csv"},
      {schema::kStepPassesFile, "models/profiles/H200/step_passes.csv"},
      {schema::kVattentionIterationsFile, "models/profiles/H200/vattention_iterations.csv"},
      {schema::kAllreduceRankFile,
       "models/profiles/H200/run_1911Z/allreduce_ranks/gpus2_rank0.csv"},
      {schema::kGemmClocksFile, "models/profiles/H200/gemm_clocks.csv"},
      {schema::kGemmRoundsFile, "models/profiles/H200/gemm_round_experiment/run1/gemm_rounds.csv"},
      {schema::kPrefillClocksFile, "models/profiles/H200/prefill_clocks.csv"},
      {schema::kStepClocksFile, "models/profiles/H200/step_clocks.csv"},
  };
  EXPECT_EQ(std::size(kCommitted), std::size(schema::kRawFiles));
  for (const auto& [file, committed] : kCommitted) {
    SCOPED_TRACE(committed);
    const std::vector<std::string> lines = SourceLines(committed);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0], HeaderLine(file));
  }
}

TEST(ProfileSchemaTest, RawFilePathFillsInTheGpuCountAndRank) {
  EXPECT_EQ(RawFilePath("out", schema::kVmmSamplesFile), "out/vmm_samples.csv");
  EXPECT_EQ(RawFilePath("out", schema::kAllreduceRankFile, 4, 3),
            "out/allreduce_ranks/gpus4_rank3.csv");
}

TEST(ProfileSchemaTest, MetaIsNoTable) {
  ProfileWriter w;
  EXPECT_THROW(w.AddTable(schema::kMeta), std::invalid_argument);
}

TEST(ProfileSchemaTest, EverySectionWrittenFromTheSchemaLoads) {
  // One row per table, "x" in text columns and 1 in numeric ones, and every [meta] key:
  // what kvprobe writes from the schema, kvsim reads by it.
  ProfileWriter w;
  for (const schema::Field& f : schema::kMeta.fields) {
    w.Meta(f.name, f.type == schema::Type::kText ? "x" : "1");
  }
  for (const schema::Section& s : schema::kSections) {
    if (s.layout != schema::Layout::kTable) continue;
    std::vector<std::string> row;
    for (const schema::Field& f : s.fields)
      row.push_back(f.type == schema::Type::kText ? "x" : "1");
    w.AddTable(s).Row(row);
  }
  const kvsim::Profile p = kvsim::ParseProfile(w.Render(), "p.txt");
  for (const schema::Section& s : schema::kSections) {
    if (s.layout != schema::Layout::kTable) continue;
    SCOPED_TRACE(s.name);
    const kvsim::ProfileTable& t = p.Table(s.name);
    ASSERT_EQ(t.size(), 1u);
    for (const schema::Field& f : s.fields) {
      EXPECT_EQ(t.Text(0, f.name), f.type == schema::Type::kText ? "x" : "1") << f.name;
      if (f.presence == schema::Presence::kRequired && f.type == schema::Type::kNumber) {
        EXPECT_EQ(t.Number(0, f.name), 1) << f.name;
      }
    }
  }
  EXPECT_EQ(p.MetaNumber(std::string(schema::meta::kFormatVersion)), 1);
}

}  // namespace
}  // namespace kvprobe
