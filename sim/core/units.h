// Quantities written with units, as configs and cards accept them: "2MiB", "24GB",
// "3.35 TB/s", "989.4 TFLOPS".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvsim {

enum class Quantity {
  kBytes,           // B, KiB, MiB, GiB, TiB (powers of 1024); KB, MB, GB, TB (of 1000)
  kBytesPerSecond,  // the byte units above followed by "/s", e.g. "3.35TB/s", "900 GiB/s"
  kFlopsPerSecond,  // FLOPS or FLOP/s with an optional prefix K, M, G, T, P (powers of 1000)
};

// `text` as a number of the quantity's base unit (bytes, bytes/s, FLOP/s): a plain
// number ("3.35e12"), or a number, optional spaces and one of the kind's units. The
// value is finite and >= 0. nullopt for anything else.
std::optional<double> ParseQuantity(std::string_view text, Quantity kind);

// The units `kind` accepts, for messages ("B, KiB, ... TB").
const char* QuantityUnits(Quantity kind);

// `bytes` in GiB (2^30 bytes), for printing.
constexpr double ToGiB(int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
}
constexpr double ToGiB(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

// Parses a byte size: an integer, or a number with a unit of Quantity::kBytes, e.g.
// "64KiB", "2MiB". Throws InputError naming `where` on anything else or a
// non-integral byte count.
int64_t ParseByteSize(const std::string& text, const std::string& where);

}  // namespace kvsim
