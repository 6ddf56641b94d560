// Names of the KV managers and vAttention's VMM backends; backend checks and caveats.
#include "sim/kvcache/kv_cache_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "sim/core/check.h"

namespace kvsim {

std::string PageSizeText(int64_t bytes, std::string_view space) {
  if (bytes > 0 && bytes % (int64_t{1} << 20) == 0) {
    return fmt::format("{}{}MiB", bytes >> 20, space);
  }
  if (bytes > 0 && bytes % 1024 == 0) return fmt::format("{}{}KiB", bytes >> 10, space);
  return fmt::format("{}{}bytes", bytes, space);
}

namespace {

bool IsUvmPageSizeText(int64_t bytes) {
  return bytes == 64 << 10 || bytes == 128 << 10 || bytes == 256 << 10;
}

// splitmix64's finaliser: a bijective 64-bit mix.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The key of a source alone; ContentKey and ContentGroupKey mix a position into it.
uint64_t SourceKey(const ContentSource& source) {
  return Mix(Mix(static_cast<uint64_t>(source.kind)) ^ source.base);
}

}  // namespace

ContentSourceSpan ContentSourceAt(const PrefixIdentity& prefix, int64_t end) {
  KVSIM_CHECK(end >= 1, "a content key covers at least one token");
  if (end <= prefix.hash_tokens && prefix.hash_block_tokens > 0) {
    const auto h = static_cast<size_t>((end - 1) / prefix.hash_block_tokens);
    KVSIM_CHECK(h < prefix.hash_ids.size(), "hash_tokens beyond the hash ids");
    const int64_t block_last_end = (static_cast<int64_t>(h) + 1) * prefix.hash_block_tokens;
    return {{ContentSource::Kind::kHash, prefix.hash_ids[h]},
            std::min(block_last_end, prefix.hash_tokens)};
  }
  if (prefix.stream != 0 && end <= prefix.stream_tokens) {
    return {{ContentSource::Kind::kStream, prefix.stream}, prefix.stream_tokens};
  }
  return {{ContentSource::Kind::kOwn, static_cast<uint64_t>(prefix.request_id)},
          std::numeric_limits<int64_t>::max()};
}

uint64_t ContentKey(const PrefixIdentity& prefix, int64_t end) {
  const uint64_t key =
      Mix(SourceKey(ContentSourceAt(prefix, end).source) ^ static_cast<uint64_t>(end));
  return key == 0 ? 1 : key;
}

uint64_t ContentGroupKey(const ContentSource& source, int64_t group) {
  const uint64_t key = Mix(SourceKey(source) ^ static_cast<uint64_t>(group));
  return key == 0 ? 1 : key;
}

void KvCacheManager::GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                                      int64_t rounds, std::vector<KvUsage>& usage) {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  usage.clear();
  for (int64_t j = 1; j <= rounds; ++j) {
    for (size_t i = 0; i < ids.size(); ++i) {
      KVSIM_CHECK(Grow(ids[i], tokens[i] + j, GrowthPhase::kDecode),
                  "a decode round promised by CertainDecodeRounds was refused");
    }
    usage.push_back(Usage());
  }
}

VmmBackend AutoVmmBackend(int64_t page_bytes) {
  return page_bytes < kStockVmmGranularityBytes ? VmmBackend::kUvm : VmmBackend::kStock;
}

std::optional<VmmConfigError> CheckVmmBackend(const VAttentionKvConfig& config) {
  const int64_t page = config.page_bytes;
  switch (config.backend) {
    case VmmBackend::kStock:
      if (page > 0 && page % kStockVmmGranularityBytes == 0) return std::nullopt;
      if (IsUvmPageSizeText(page)) {
        return VmmConfigError{
            "page_bytes",
            fmt::format("{} pages need the uvm backend (vAttention's modified driver): the stock "
                        "CUDA driver maps in multiples of its 2 MiB allocation granularity; set "
                        "kv_cache.vmm.backend: uvm or page_bytes: 2MiB",
                        PageSizeText(page))};
      }
      return VmmConfigError{
          "page_bytes",
          fmt::format("{} pages cannot be mapped by the stock CUDA driver, which maps in multiples "
                      "of its 2 MiB allocation granularity; set page_bytes: 2MiB",
                      PageSizeText(page))};
    case VmmBackend::kUvm:
      if (IsUvmPageSizeText(page)) return std::nullopt;
      return VmmConfigError{
          "vmm.backend",
          fmt::format("uvm (vAttention's modified driver) maps 64 KiB, 128 KiB or 256 KiB pages, "
                      "not {}; set kv_cache.vmm.backend: stock (or auto) for {} pages, or "
                      "page_bytes: 64KiB, 128KiB or 256KiB",
                      PageSizeText(page), PageSizeText(page))};
  }
  return VmmConfigError{"vmm.backend", "unknown VMM backend"};
}

std::string VmmCostCaveat(const VAttentionKvConfig& config) {
  if (config.backend != VmmBackend::kUvm || config.uvm_map_latency != kPaperUvmMapLatency) {
    return "";
  }
  return fmt::format(
      "kv_cache.vmm: uvm backend (vAttention's modified driver) map cost {} us per page is the "
      "paper's figure, not measured on this GPU",
      kPaperUvmMapLatency.count() / 1000);
}

}  // namespace kvsim
