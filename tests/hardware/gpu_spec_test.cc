// Tests for GpuSpec: the shipped cards in models/gpu/ and the strict rejection of
// malformed cards.
#include "sim/hardware/gpu_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "tests/testing/malformed_card.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::MalformedCardTest;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

GpuSpec LoadGpu(const std::string& name) {
  return LoadGpuSpec(std::string(KVSIM_SOURCE_DIR) + "/models/gpu/" + name + ".yaml");
}

TEST(GpuSpec, H100SxmHasTheMemoryTheCudaRuntimeReports) {
  const GpuSpec h100 = LoadGpu("H100-SXM");
  EXPECT_EQ(h100.name, "H100-SXM");
  EXPECT_EQ(h100.memory_bytes, int64_t{81079} * 1024 * 1024);
  EXPECT_EQ(h100.memory_bytes, 85'017'493'504);  // measured with cuMemGetInfo
}

TEST(GpuSpec, H100SxmRatesAreDensePeaksPerDirection) {
  const GpuSpec h100 = LoadGpu("H100-SXM");
  EXPECT_DOUBLE_EQ(h100.hbm_bandwidth_bytes_per_s, 3.35e12);
  EXPECT_DOUBLE_EQ(h100.bf16_flops_per_s, 989.4e12);
  EXPECT_DOUBLE_EQ(h100.link_bandwidth_bytes_per_s, 900e9 / 2);  // NVLink 4, one way
  EXPECT_GT(h100.price_per_hour, 0.0);
  // GPUS.md section 2: ridge point about 295 FLOP per byte.
  EXPECT_NEAR(h100.bf16_flops_per_s / h100.hbm_bandwidth_bytes_per_s, 295.0, 1.0);
}

TEST(GpuSpec, L40sHasNoNvlinkSoItsPeerLinkIsPcie) {
  const GpuSpec l40s = LoadGpu("L40S");
  EXPECT_EQ(l40s.memory_bytes, 48'000'000'000);
  EXPECT_DOUBLE_EQ(l40s.link_bandwidth_bytes_per_s, 32e9);  // PCIe Gen4 x16, one way
}

TEST(GpuSpec, NewerCardsOutrunOlderOnes) {
  const GpuSpec a100 = LoadGpu("A100-80GB");
  const GpuSpec h100 = LoadGpu("H100-SXM");
  const GpuSpec h200 = LoadGpu("H200");
  const GpuSpec b200 = LoadGpu("B200");
  EXPECT_LT(a100.hbm_bandwidth_bytes_per_s, h100.hbm_bandwidth_bytes_per_s);
  EXPECT_LT(h100.hbm_bandwidth_bytes_per_s, h200.hbm_bandwidth_bytes_per_s);
  EXPECT_LT(h200.hbm_bandwidth_bytes_per_s, b200.hbm_bandwidth_bytes_per_s);
  EXPECT_DOUBLE_EQ(h200.bf16_flops_per_s, h100.bf16_flops_per_s);  // same GH100 compute
  EXPECT_LT(h100.memory_bytes, h200.memory_bytes);
  EXPECT_LT(h200.memory_bytes, b200.memory_bytes);
  EXPECT_DOUBLE_EQ(b200.link_bandwidth_bytes_per_s, 2 * h100.link_bandwidth_bytes_per_s);
}

TEST(GpuSpec, EveryCardInModelsGpuLoadsAndIsNamedAfterItsFile) {
  std::set<std::string> seen;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(fs::path(KVSIM_SOURCE_DIR) / "models" / "gpu")) {
    if (entry.path().extension() != ".yaml") continue;
    GpuSpec gpu;
    ASSERT_NO_THROW(gpu = LoadGpuSpec(entry.path().string())) << entry.path();
    EXPECT_EQ(gpu.name, entry.path().stem().string());
    // Memory is never slower than the peer link.
    EXPECT_GT(gpu.hbm_bandwidth_bytes_per_s, gpu.link_bandwidth_bytes_per_s) << gpu.name;
    // Every bundled card names its device, so profiles are checked against it.
    EXPECT_FALSE(gpu.device_names.empty()) << gpu.name;
    for (const std::string& d : gpu.device_names) EXPECT_EQ(d.rfind("NVIDIA ", 0), 0u) << d;
    seen.insert(gpu.name);
  }
  for (const char* name : {"A100-80GB", "H100-SXM", "H200", "L40S", "B200", "RTX-4090",
                           "RTX-PRO-6000", "RTX-PRO-6000-Server"}) {
    EXPECT_EQ(seen.count(name), 1u) << "missing card " << name;
  }
}

TEST(GpuSpec, ToyFixtureAcceptsIntegerRatesALeadingPlusSignedExponentsAndAZeroPrice) {
  const GpuSpec toy = LoadGpuSpec(std::string(KVSIM_TEST_DATA_DIR) + "/hardware/toy-gpu.yaml");
  EXPECT_EQ(toy.name, "toy-gpu");
  EXPECT_EQ(toy.memory_bytes, int64_t{1} << 30);
  EXPECT_DOUBLE_EQ(toy.hbm_bandwidth_bytes_per_s, 1e9);
  EXPECT_DOUBLE_EQ(toy.bf16_flops_per_s, 2.5e12);
  EXPECT_DOUBLE_EQ(toy.link_bandwidth_bytes_per_s, 1e9);
  EXPECT_DOUBLE_EQ(toy.price_per_hour, 0.0);
}

// ---- Malformed cards -------------------------------------------------------------

// A valid card, one key per line (line 1 = name ... line 7 = source).
constexpr const char* kValidCard =
    "name: broken-gpu\n"
    "memory_bytes: 85017034752\n"
    "hbm_bandwidth_bytes_per_s: 3.35e12\n"
    "bf16_flops_per_s: 989.4e12\n"
    "link_bandwidth_bytes_per_s: 450e9\n"
    "price_per_hour: 3.5\n"
    "source: test\n";

// Cards written to a temporary directory: kValidCard, edited or not, or other text.
class MalformedGpuCard : public MalformedCardTest<&LoadGpuSpec> {
 protected:
  MalformedGpuCard() : MalformedCardTest(kValidCard) {}
};

TEST_F(MalformedGpuCard, TheValidBaseCardLoads) {
  const GpuSpec gpu = LoadGpuSpec(Write("ok.yaml", kValidCard));
  EXPECT_EQ(gpu.name, "broken-gpu");
  EXPECT_DOUBLE_EQ(gpu.link_bandwidth_bytes_per_s, 450e9);
  EXPECT_DOUBLE_EQ(gpu.price_per_hour, 3.5);
}

TEST_F(MalformedGpuCard, AnFp8RateBelowTheBf16RateIsAnErrorNamingItsLine) {
  const std::string path = Write("fp8.yaml", std::string(kValidCard) + "fp8_flops_per_s: 500e12\n");
  EXPECT_THAT(ErrorOf(path), HasSubstr(path + ":8: key 'fp8_flops_per_s': 5e+14 is below "
                                              "bf16_flops_per_s (9.894e+14)"));
  EXPECT_DOUBLE_EQ(
      LoadGpuSpec(Write("fp8ok.yaml", std::string(kValidCard) + "fp8_flops_per_s: 1978.8e12\n"))
          .fp8_flops_per_s,
      1978.8e12);
}

// Card names go into calibration.yaml's gpu_terms and JSON, which hold only UTF-8; a
// name written back as U+FFFD would no longer match its card (see ConfigTree's test of
// the fuzzing finding in tests/config/yaml_tree_test.cc).
TEST_F(MalformedGpuCard, TextThatIsNotUtf8IsRejectedWithItsLine) {
  EXPECT_THAT(ErrorOf(Write("latin1.yaml", Edit("name", "name: RTX-409\xE9"))),
              HasSubstr("latin1.yaml:1: byte 0xE9 at column 14 is not UTF-8 text"));
}

TEST_F(MalformedGpuCard, DeviceNamesAreOptionalAndAListOfStrings) {
  EXPECT_TRUE(LoadGpuSpec(Write("none.yaml", kValidCard)).device_names.empty());
  const GpuSpec two = LoadGpuSpec(Write(
      "two.yaml", Edit("source", "source: x\ndevice_names: [\"NVIDIA X1\", NVIDIA X1 PCIe]")));
  EXPECT_EQ(two.device_names, (std::vector<std::string>{"NVIDIA X1", "NVIDIA X1 PCIe"}));
  EXPECT_THAT(ErrorOf(Write("empty.yaml", Edit("source", "source: x\ndevice_names: []"))),
              AllOf(HasSubstr("empty.yaml:8:"), HasSubstr("'device_names'"),
                    HasSubstr("expected a non-empty list")));
  EXPECT_THAT(ErrorOf(Write("scalar.yaml", Edit("source", "source: x\ndevice_names: NVIDIA X1"))),
              HasSubstr("expected a non-empty list, got 'NVIDIA X1'"));
  EXPECT_THAT(ErrorOf(Write("nested.yaml", Edit("source", "source: x\ndevice_names: [[a]]"))),
              HasSubstr("expected a list of non-empty strings"));
}

TEST(GpuSpec, TheDgxCardsNameTheirHostCpuAndItsSpeed) {
  EXPECT_THAT(LoadGpu("A100-80GB").host_cpu, HasSubstr("EPYC 7742"));
  EXPECT_DOUBLE_EQ(LoadGpu("A100-80GB").host_cpu_speed, 0.81);
  EXPECT_THAT(LoadGpu("H100-SXM").host_cpu, HasSubstr("Xeon Platinum 8480C"));
  EXPECT_DOUBLE_EQ(LoadGpu("H100-SXM").host_cpu_speed, 1.0);  // the reference core
  EXPECT_LT(LoadGpu("L40S").host_cpu_speed, 0);               // not stated
}

TEST_F(MalformedGpuCard, AHostCpuComesWithItsSpeedInRange) {
  const GpuSpec both = LoadGpuSpec(
      Write("both.yaml", Edit("source", "source: x\nhost_cpu: a CPU\nhost_cpu_speed: 1.2")));
  EXPECT_EQ(both.host_cpu, "a CPU");
  EXPECT_DOUBLE_EQ(both.host_cpu_speed, 1.2);
  EXPECT_THAT(ErrorOf(Write("alone.yaml", Edit("source", "source: x\nhost_cpu: a CPU"))),
              AllOf(HasSubstr("alone.yaml:8:"), HasSubstr("'host_cpu'"),
                    HasSubstr("host_cpu and host_cpu_speed go together")));
  EXPECT_THAT(ErrorOf(Write("speed.yaml", Edit("source", "source: x\nhost_cpu_speed: 1"))),
              AllOf(HasSubstr("speed.yaml:8:"), HasSubstr("'host_cpu_speed'")));
  EXPECT_THAT(
      ErrorOf(Write("fast.yaml", Edit("source", "source: x\nhost_cpu: a CPU\nhost_cpu_speed: 20"))),
      AllOf(HasSubstr("fast.yaml:9:"), HasSubstr("'host_cpu_speed'"), HasSubstr("in [0.05, 10]")));
}

TEST_F(MalformedGpuCard, EfficienciesAreOptionalFractionsAndNcclLatenciesInSeconds) {
  const GpuSpec none = LoadGpuSpec(Write("none.yaml", kValidCard));
  EXPECT_LT(none.efficiency.gemm, 0);  // not stated: timing falls back and says so
  EXPECT_DOUBLE_EQ(none.fp32_flops_per_s, 0);
  const GpuSpec some = LoadGpuSpec(
      Write("some.yaml", Edit("source",
                              "source: x\nfp32_flops_per_s: 67e12\nefficiency: {gemm: 0.69, "
                              "allreduce_base_latency_s: 5.6e-6, allreduce_hop_latency_s: 1e-6, "
                              "allreduce_bus_efficiency: 1}")));
  EXPECT_DOUBLE_EQ(some.fp32_flops_per_s, 67e12);
  EXPECT_DOUBLE_EQ(some.efficiency.gemm, 0.69);
  EXPECT_DOUBLE_EQ(some.efficiency.allreduce_base_latency_s, 5.6e-6);
  EXPECT_DOUBLE_EQ(some.efficiency.allreduce_bus_efficiency, 1.0);
  EXPECT_LT(some.efficiency.memory, 0);
  EXPECT_THAT(ErrorOf(Write("over.yaml", Edit("source", "source: x\nefficiency: {memory: 1.2}"))),
              AllOf(HasSubstr("over.yaml:8:"), HasSubstr("'efficiency.memory'"),
                    HasSubstr("expected a fraction in (0, 1], got 1.2")));
  EXPECT_THAT(
      ErrorOf(Write("neg.yaml",
                    Edit("source", "source: x\nefficiency: {allreduce_hop_latency_s: -1}"))),
      HasSubstr("'efficiency.allreduce_hop_latency_s': expected seconds in [0, 1), got -1"));
  // The most GPUs the all-reduce terms were measured on: a whole number from 2.
  EXPECT_DOUBLE_EQ(LoadGpuSpec(Write("fit.yaml", Edit("source",
                                                      "source: x\nefficiency: "
                                                      "{allreduce_fit_max_gpus: 4}")))
                       .efficiency.allreduce_fit_max_gpus,
                   4.0);
  for (const char* bad : {"1", "2.5", "1000"}) {
    EXPECT_THAT(
        ErrorOf(Write("fit_bad.yaml", Edit("source", std::string("source: x\nefficiency: "
                                                                 "{allreduce_fit_max_gpus: ") +
                                                         bad + "}"))),
        HasSubstr("'efficiency.allreduce_fit_max_gpus': expected a whole number of GPUs "
                  "in [2, 576]"))
        << bad;
  }
  EXPECT_THAT(
      ErrorOf(Write("typo.yaml", Edit("source", "source: x\nefficiency: {gemmm: 0.7}"))),
      AllOf(HasSubstr("'efficiency.gemmm'"), HasSubstr("unknown key; valid:"), HasSubstr("gemm")));
  EXPECT_THAT(ErrorOf(Write("text.yaml", Edit("source", "source: x\nefficiency: {gemm: high}"))),
              HasSubstr("expected a number, got 'high'"));
  EXPECT_THAT(ErrorOf(Write("list.yaml", Edit("source", "source: x\nefficiency: {gemm: [1]}"))),
              HasSubstr("'efficiency.gemm': expected a number"));
  EXPECT_THAT(ErrorOf(Write("flat.yaml", Edit("source", "source: x\nefficiency: 0.7"))),
              HasSubstr("key 'efficiency': expected a mapping"));
  EXPECT_THAT(
      ErrorOf(Write("half.yaml",
                    Edit("source", "source: x\nefficiency: {allreduce_base_latency_s: 6e-6}"))),
      HasSubstr("allreduce_base_latency_s and allreduce_hop_latency_s go together"));
}

TEST_F(MalformedGpuCard, AnUnknownKeyIsRejectedWithItsFileAndLine) {
  const std::string path = Write("unknown.yaml", Edit("source", "source: x\ntdp_watts: 700"));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("unknown.yaml:8:"), HasSubstr("'tdp_watts'"),
                                   HasSubstr("unknown key")));
  // Keys no longer read are not offered as valid ones.
  EXPECT_THAT(ErrorOf(path), Not(HasSubstr("host_link")));
}

// Cards once gave the GPU-host link bandwidth; nothing models it, so a card still
// giving it is refused, with its line, rather than read and ignored.
TEST_F(MalformedGpuCard, TheRemovedHostLinkKeyIsRefusedWithItsLine) {
  const std::string path = Write("old.yaml", Edit("link_bandwidth_bytes_per_s",
                                                  "link_bandwidth_bytes_per_s: 450e9\n"
                                                  "host_link_bandwidth_bytes_per_s: 64e9"));
  EXPECT_THAT(ErrorOf(path),
              AllOf(HasSubstr("old.yaml:6: key 'host_link_bandwidth_bytes_per_s': removed: "),
                    HasSubstr("no simulator model uses"), HasSubstr("delete the line")));
}

TEST_F(MalformedGpuCard, AMissingKeyIsRejectedByName) {
  const std::string path = Write("missing.yaml", Edit("bf16_flops_per_s", ""));
  EXPECT_THAT(ErrorOf(path), AllOf(HasSubstr("missing.yaml"), HasSubstr("'bf16_flops_per_s'"),
                                   HasSubstr("missing")));
}

// Configs take "2MiB"; cards take units too, and mean the same numbers by them.
TEST_F(MalformedGpuCard, SizesAndRatesMayCarryUnits) {
  std::string text = Edit("memory_bytes", "memory_bytes: 24GB");
  for (const auto& [key, line] :
       {std::pair<std::string, std::string>{"hbm_bandwidth_bytes_per_s",
                                            "hbm_bandwidth_bytes_per_s: 3.35 TB/s"},
        {"bf16_flops_per_s", "bf16_flops_per_s: 989.4 TFLOPS"},
        {"link_bandwidth_bytes_per_s", "link_bandwidth_bytes_per_s: 450GB/s"}}) {
    const size_t at = text.find(key + ":");
    text.replace(at, text.find('\n', at) - at, line);
  }
  const GpuSpec with_units = LoadGpuSpec(Write("units.yaml", text));
  EXPECT_EQ(with_units.memory_bytes, 24'000'000'000);
  EXPECT_DOUBLE_EQ(with_units.hbm_bandwidth_bytes_per_s, 3.35e12);
  EXPECT_DOUBLE_EQ(with_units.bf16_flops_per_s, 989.4e12);
  EXPECT_DOUBLE_EQ(with_units.link_bandwidth_bytes_per_s, 450e9);
  EXPECT_EQ(
      LoadGpuSpec(Write("gib.yaml", Edit("memory_bytes", "memory_bytes: 80GiB"))).memory_bytes,
      int64_t{80} << 30);
  // A unit of another quantity is an error naming the units that fit.
  EXPECT_THAT(ErrorOf(Write("mixed.yaml", Edit("bf16_flops_per_s", "bf16_flops_per_s: 989 TB/s"))),
              AllOf(HasSubstr("mixed.yaml:4:"), HasSubstr("TFLOPS")));
}

TEST_F(MalformedGpuCard, ANegativeValueIsRejectedWithItsLine) {
  EXPECT_THAT(
      ErrorOf(Write("negative.yaml",
                    Edit("hbm_bandwidth_bytes_per_s", "hbm_bandwidth_bytes_per_s: -3.35e12"))),
      AllOf(HasSubstr("negative.yaml:3:"), HasSubstr("'hbm_bandwidth_bytes_per_s'"),
            HasSubstr("expected bytes/s in [1e+09, 1e+15], a plain number or with a unit")));
  EXPECT_THAT(ErrorOf(Write("price.yaml", Edit("price_per_hour", "price_per_hour: -1"))),
              AllOf(HasSubstr("price.yaml:6:"), HasSubstr("'price_per_hour'")));
}

TEST_F(MalformedGpuCard, RatesNoGpuHasAreRejectedWithTheirLine) {
  // 1e-3 FLOP/s would make one iteration outlast what kvsim simulates.
  EXPECT_THAT(ErrorOf(Write("slow.yaml", Edit("bf16_flops_per_s", "bf16_flops_per_s: 1e-3"))),
              AllOf(HasSubstr("slow.yaml:"), HasSubstr("'bf16_flops_per_s'"),
                    HasSubstr("in [1e+11, 1e+18]")));
  EXPECT_THAT(ErrorOf(Write("fast.yaml",
                            Edit("hbm_bandwidth_bytes_per_s", "hbm_bandwidth_bytes_per_s: 1e300"))),
              HasSubstr("'hbm_bandwidth_bytes_per_s'"));
}

// "80" meant as 80 GB would leave no room for weights, and the error would name the
// scenario's deployment keys instead of the card.
TEST_F(MalformedGpuCard, AMemorySizeNoGpuHasIsRejectedWithItsLine) {
  EXPECT_THAT(
      ErrorOf(Write("tiny.yaml", Edit("memory_bytes", "memory_bytes: 80"))),
      AllOf(HasSubstr("tiny.yaml:2:"), HasSubstr("'memory_bytes'"),
            HasSubstr("expected 1 GiB to 16 TiB (e.g. 80GB, 80GiB or 85017493504), got '80'")));
  EXPECT_EQ(
      LoadGpuSpec(Write("one_gib.yaml", Edit("memory_bytes", "memory_bytes: 1GiB"))).memory_bytes,
      int64_t{1} << 30);
}

TEST_F(MalformedGpuCard, GpusPerHostIsAPositiveIntegerUpToTheLargestNvlinkDomain) {
  EXPECT_EQ(LoadGpuSpec(
                Write("host8.yaml", Edit("price_per_hour", "price_per_hour: 1\ngpus_per_host: 8")))
                .gpus_per_host,
            8);
  EXPECT_EQ(LoadGpuSpec(Write("unstated.yaml", Edit("price_per_hour", "price_per_hour: 1")))
                .gpus_per_host,
            0);
  EXPECT_THAT(
      ErrorOf(Write("zero.yaml", Edit("price_per_hour", "price_per_hour: 1\ngpus_per_host: 0"))),
      AllOf(HasSubstr("'gpus_per_host'"), HasSubstr("expected a positive integer")));
  EXPECT_THAT(
      ErrorOf(Write("huge.yaml", Edit("price_per_hour", "price_per_hour: 1\ngpus_per_host: 1000"))),
      AllOf(HasSubstr("huge.yaml:7: key 'gpus_per_host'"), HasSubstr("at most 576")));
}

TEST_F(MalformedGpuCard, AZeroRateIsRejected) {
  const std::string path =
      Write("zero.yaml", Edit("link_bandwidth_bytes_per_s", "link_bandwidth_bytes_per_s: 0"));
  EXPECT_THAT(ErrorOf(path),
              AllOf(HasSubstr("zero.yaml:5:"), HasSubstr("'link_bandwidth_bytes_per_s'")));
}

TEST_F(MalformedGpuCard, WrongTypesAreRejected) {
  // Memory is a whole number of bytes.
  EXPECT_THAT(ErrorOf(Write("float.yaml", Edit("memory_bytes", "memory_bytes: 80.5"))),
              AllOf(HasSubstr("float.yaml:2:"), HasSubstr("'memory_bytes'"), HasSubstr("'80.5'")));
  EXPECT_THAT(ErrorOf(Write("word.yaml", Edit("bf16_flops_per_s", "bf16_flops_per_s: fast"))),
              AllOf(HasSubstr("word.yaml:4:"), HasSubstr("'bf16_flops_per_s'")));
  EXPECT_THAT(ErrorOf(Write("inf.yaml", Edit("bf16_flops_per_s", "bf16_flops_per_s: .inf"))),
              AllOf(HasSubstr("inf.yaml:4:"), HasSubstr("'bf16_flops_per_s'")));
  EXPECT_THAT(ErrorOf(Write("map.yaml", Edit("price_per_hour", "price_per_hour: {usd: 3}"))),
              AllOf(HasSubstr("map.yaml:6:"), HasSubstr("'price_per_hour'")));
}

TEST_F(MalformedGpuCard, TextThatIsNotYamlIsRejectedWithTheFileName) {
  EXPECT_THAT(ErrorOf(Write("garbage.yaml", "name: [unterminated\n")),
              AllOf(HasSubstr("garbage.yaml"), HasSubstr("not valid YAML")));
  EXPECT_THAT(ErrorOf(Write("list.yaml", "- name: H100\n")), HasSubstr("list.yaml"));
}

TEST_F(MalformedGpuCard, AMissingFileIsRejectedWithItsName) {
  EXPECT_THAT(ErrorOf(dir_.PathOf("no-such-gpu.yaml")), HasSubstr("no-such-gpu.yaml"));
}

}  // namespace
}  // namespace kvsim
