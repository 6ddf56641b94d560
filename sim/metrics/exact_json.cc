// The non-template parts of the exact JSON encodings (exact_json.h).
#include "sim/metrics/exact_json.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

#include "sim/core/check.h"

namespace kvsim::exact_json {
namespace {

// Bits of the quiet NaN (positive); with the sign bit, the negative one.
constexpr uint64_t kQuietNanBits = 0x7ff8000000000000;
constexpr uint64_t kSignBit = 0x8000000000000000;
constexpr std::string_view kNanBitsPrefix = "NaN:0x";

// The non-finite double that PutDouble writes as the string `s`, or nullopt.
std::optional<double> NonFinite(std::string_view s) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (s == "Infinity") return kInf;
  if (s == "-Infinity") return -kInf;
  if (s == "NaN") return std::bit_cast<double>(kQuietNanBits);
  if (s == "-NaN") return std::bit_cast<double>(kQuietNanBits | kSignBit);
  if (!s.starts_with(kNanBitsPrefix) || s.size() != kNanBitsPrefix.size() + 16) {
    return std::nullopt;
  }
  uint64_t bits = 0;
  const char* last = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data() + kNanBitsPrefix.size(), last, bits, 16);
  if (ec != std::errc() || ptr != last || !std::isnan(std::bit_cast<double>(bits))) {
    return std::nullopt;
  }
  return std::bit_cast<double>(bits);
}

}  // namespace

void PutDouble(std::string& out, double v) {
  if (std::isfinite(v)) {
    fmt::format_to(std::back_inserter(out), "{}", v);
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else if (const auto bits = std::bit_cast<uint64_t>(v); bits == kQuietNanBits) {
    out += "\"NaN\"";
  } else if (bits == (kQuietNanBits | kSignBit)) {
    out += "\"-NaN\"";
  } else {
    fmt::format_to(std::back_inserter(out), "\"{}{:016x}\"", kNanBitsPrefix, bits);
  }
}

void Fail(const std::string& where, const JsonValue& v, const std::string& path,
          std::string_view what) {
  if (path.empty()) throw InputError(fmt::format("{}:{}: {}", where, v.line(), what));
  throw InputError(fmt::format("{}:{}: '{}': {}", where, v.line(), path, what));
}

void FailType(const std::string& where, const JsonValue& v, const std::string& path,
              std::string_view expected) {
  Fail(where, v, path, fmt::format("expected {}, got {}", expected, JsonValue::TypeName(v.type())));
}

std::string MemberPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

double GetDouble(const std::string& where, const JsonValue& v, const std::string& path) {
  if (v.IsNumber()) return v.AsNumber();
  if (!v.IsString()) FailType(where, v, path, "a number");
  const std::optional<double> d = NonFinite(v.AsString());
  if (!d) {
    Fail(where, v, path,
         fmt::format("expected a number, \"Infinity\", \"-Infinity\", \"NaN\", \"-NaN\" or "
                     "\"{}\" and 16 hex digits of a NaN, got \"{}\"",
                     kNanBitsPrefix, v.AsString()));
  }
  return *d;
}

int64_t GetInt(const std::string& where, const JsonValue& v, const std::string& path) {
  if (!v.IsNumber()) FailType(where, v, path, "an integer");
  if (!v.IsIntegral()) {
    Fail(
        where, v, path,
        fmt::format("expected an integer literal (no fraction or exponent), got {}", v.AsNumber()));
  }
  try {
    return v.AsInt();
  } catch (const InputError&) {
    Fail(where, v, path, "integer out of the 64-bit range");
  }
}

void CheckVersion(const std::string& where, const JsonValue& v, int64_t version,
                  std::string_view what) {
  if (!v.IsObject()) FailType(where, v, "", fmt::format("an object ({})", what));
  const std::string version_key(kVersionKey);
  const JsonValue* found = v.Find(kVersionKey);
  if (found == nullptr) Fail(where, v, version_key, "missing field (the encoding's version)");
  const int64_t got = GetInt(where, *found, version_key);
  if (got != version) {
    Fail(where, *found, version_key,
         fmt::format("encoding version {}; this kvsim reads version {} only", got, version));
  }
}

}  // namespace kvsim::exact_json
