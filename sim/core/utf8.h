// FindNonUtf8Text: where text stops being well-formed UTF-8 text. YAML files must be
// UTF-8, and kvsim writes the names and paths it reads back into YAML and JSON, which
// cannot hold other bytes; yaml-cpp also misreads a raw NUL byte (a plain scalar
// "a<NUL>_b" comes back as "a", 0xA0, "b"). Configs and cards are checked with it
// before they are parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kvsim {

// The first byte of `text` that is NUL or does not begin a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), with its
// 1-based line and column (in bytes).
struct TextError {
  int64_t line = 1;
  int64_t column = 1;
  unsigned char byte = 0;
};

// nullopt when all of `text` is well-formed UTF-8 without NUL bytes.
inline std::optional<TextError> FindNonUtf8Text(std::string_view text) {
  const auto at = [&](size_t i) -> unsigned { return static_cast<unsigned char>(text[i]); };
  TextError where;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const unsigned b = at(i);
    size_t length = 1;
    unsigned low = 0x80, high = 0xBF;  // the range of the second byte
    if (b != 0 && b < 0x80) {
      if (b == '\n') {
        ++where.line;
        line_start = i + 1;
      }
    } else if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      if (b == 0xE0) low = 0xA0;   // overlong
      if (b == 0xED) high = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      if (b == 0xF0) low = 0x90;   // overlong
      if (b == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      // NUL (valid UTF-8, but no text), or 0x80-0xC1 or 0xF5-0xFF (cannot start a
      // sequence).
      length = 0;
    }
    bool ok = length > 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k) {
      const unsigned c = at(i + k);
      ok = k == 1 ? (c >= low && c <= high) : (c >= 0x80 && c <= 0xBF);
    }
    if (!ok) {
      where.column = static_cast<int64_t>(i - line_start) + 1;
      where.byte = static_cast<unsigned char>(b);
      return where;
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace kvsim
