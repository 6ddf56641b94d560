// FindNonUtf8Text: well-formed UTF-8 passes; NUL and each kind of malformed sequence
// are found at their line and column.
#include "sim/core/utf8.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>

namespace kvsim {
namespace {

TEST(Utf8, AsciiAndWellFormedMultibyteTextPass) {
  EXPECT_FALSE(FindNonUtf8Text(""));
  EXPECT_FALSE(FindNonUtf8Text("model: Llama-3-8B\n# plain ASCII\n"));
  // U+00E9, U+20AC, U+1F600, U+10FFFF, a byte order mark and other control characters.
  EXPECT_FALSE(FindNonUtf8Text("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(FindNonUtf8Text("\xEF\xBB\xBFx\ty\x01\x7F\r\n"));
}

// The first bad byte, as (line, column, byte).
std::optional<std::tuple<int64_t, int64_t, int>> Bad(const std::string& text) {
  const std::optional<TextError> e = FindNonUtf8Text(text);
  if (!e) return std::nullopt;
  return std::tuple(e->line, e->column, static_cast<int>(e->byte));
}

TEST(Utf8, MalformedSequencesAreFoundAtTheirLineAndColumn) {
  using T = std::tuple<int64_t, int64_t, int>;
  EXPECT_EQ(Bad("gpus: [RTX-409\xE9\xC0]"), T(1, 15, 0xE9));  // Latin-1 bytes
  EXPECT_EQ(Bad("a\nbc\n\x80"), T(3, 1, 0x80));               // a lone continuation byte
  EXPECT_EQ(Bad("x\xC0\x80"), T(1, 2, 0xC0));                 // overlong NUL
  EXPECT_EQ(Bad("x\xE0\x80\x80"), T(1, 2, 0xE0));             // overlong 3-byte form
  EXPECT_EQ(Bad("x\xED\xA0\x80"), T(1, 2, 0xED));             // a UTF-16 surrogate
  EXPECT_EQ(Bad("x\xF4\x90\x80\x80"), T(1, 2, 0xF4));         // above U+10FFFF
  EXPECT_EQ(Bad("x\xF5\x80\x80\x80"), T(1, 2, 0xF5));         // never a lead byte
  EXPECT_EQ(Bad("ok\n\xE2\x82"), T(2, 1, 0xE2));              // cut off at the end
  EXPECT_EQ(Bad("\xC3\xA9\xC3("), T(1, 3, 0xC3));             // bad continuation
}

}  // namespace
}  // namespace kvsim
