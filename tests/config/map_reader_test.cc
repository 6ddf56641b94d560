// MapReader: the scalar readers' defaults for absent keys, and their errors for a null
// value (`key:` with nothing after it, `~`, `null`, an empty --set value), which
// name the key path and, from a file, its line.
#include "sim/config/map_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/core/enum_table.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::HasSubstr;

constexpr const char* kFile = "/configs/test.yaml";

enum class Color { kRed, kBlue };
constexpr auto kColors = MakeEnumTable<Color>({{"red", Color::kRed}, {"blue", Color::kBlue}});

// The message of what `read` throws for the mapping `section` of `tree`.
std::string ReadError(const ConfigTree& tree, const std::string& section,
                      const std::function<void(MapReader&)>& read) {
  const DecodeContext ctx{tree.origin(), tree.overridden()};
  MapReader root(tree.root(), "", ctx);
  MapReader r = root.Child(section);
  return InputErrorMessage([&] { read(r); });
}

// Every scalar reader of MapReader on key `key`, each with what it expects.
struct ScalarReader {
  const char* expected;
  std::function<void(MapReader&, const std::string&)> read;
};
std::vector<ScalarReader> ScalarReaders() {
  return {
      {"an integer", [](MapReader& r, const std::string& k) { r.Int(k, 16, 1); }},
      {"a number", [](MapReader& r, const std::string& k) { r.Double(k, 0.5, 0, 1); }},
      {"true or false", [](MapReader& r, const std::string& k) { r.Bool(k, true); }},
      {"a string", [](MapReader& r, const std::string& k) { r.String(k, "x"); }},
      {"a byte size", [](MapReader& r, const std::string& k) { r.Bytes(k, 1024); }},
      {"a number of seconds", [](MapReader& r, const std::string& k) { r.Seconds(k, Nanos{1}); }},
      {"one of red, blue",
       [](MapReader& r, const std::string& k) { r.Enum(k, Color::kRed, kColors); }},
      {"one of red, blue", [](MapReader& r, const std::string& k) { r.Enum(k, kColors); }},
      {"one of on, off",
       [](MapReader& r, const std::string& k) {
         r.Enum(k, 1, {{"on", 1}, {"off", 0}});
       }},
  };
}

TEST(MapReader, AbsentScalarKeysTakeTheirDefaults) {
  const ConfigTree tree = ConfigTree::Parse("kv_cache:\n  type: paged\n", kFile);
  const DecodeContext ctx{tree.origin(), tree.overridden()};
  MapReader root(tree.root(), "", ctx);
  MapReader r = root.Child("kv_cache");
  EXPECT_EQ(r.Int("block_tokens", 16, 1), 16);
  EXPECT_EQ(r.Double("watermark", 0.01, 0, 1), 0.01);
  EXPECT_TRUE(r.Bool("overlap", true));
  EXPECT_EQ(r.String("profile", "x"), "x");
  EXPECT_EQ(r.Bytes("page_bytes", 2048), 2048);
  EXPECT_EQ(r.Enum("color", Color::kBlue, kColors), Color::kBlue);
}

TEST(MapReader, AnEmptyValueInAFileIsAnErrorNamingTheKeyPathAndItsLine) {
  // The empty value is followed by another key: the error names the empty key's line,
  // not the next token's.
  const ConfigTree tree =
      ConfigTree::Parse("seed: 1\nkv_cache:\n  block_tokens:\n  type: paged\n", kFile);
  for (const ScalarReader& reader : ScalarReaders()) {
    const std::string message =
        ReadError(tree, "kv_cache", [&](MapReader& r) { reader.read(r, "block_tokens"); });
    EXPECT_THAT(message, HasSubstr(std::string(kFile) + ":3: kv_cache.block_tokens: expected " +
                                   reader.expected + ", got no value"));
  }
}

TEST(MapReader, ATildeOrNullInAFileIsAnErrorNamingTheKeyPathAndItsLine) {
  for (const char* null : {"~", "null", "Null"}) {
    const ConfigTree tree = ConfigTree::Parse(
        std::string("kv_cache:\n  type: paged\n  block_tokens: ") + null + "\n", kFile);
    const std::string message =
        ReadError(tree, "kv_cache", [](MapReader& r) { r.Int("block_tokens", 16, 1); });
    EXPECT_THAT(message, HasSubstr(std::string(kFile) +
                                   ":3: kv_cache.block_tokens: expected an integer, got no value"))
        << null;
  }
}

TEST(MapReader, AnEmptyTildeOrNullOverrideIsAnErrorNamingTheKeyPathAsSetByAnOverride) {
  for (const char* null : {"", "~", "null"}) {
    ConfigTree tree = ConfigTree::Parse("workload:\n  max_requests: 100\n", kFile);
    tree.Set(std::string("workload.max_requests=") + null);
    const std::string message =
        ReadError(tree, "workload", [](MapReader& r) { r.Int("max_requests", 0, 0); });
    EXPECT_THAT(message, HasSubstr(std::string(kFile) +
                                   ": workload.max_requests (set by an override): expected an "
                                   "integer, got no value"))
        << "'" << null << "'";
  }
}

TEST(MapReader, ANullSectionStillReadsAsAnEmptyOne) {
  const ConfigTree tree = ConfigTree::Parse("kv_cache:\nseed: 1\n", kFile);
  const DecodeContext ctx{tree.origin(), tree.overridden()};
  MapReader root(tree.root(), "", ctx);
  EXPECT_FALSE(root.Has("kv_cache"));
  MapReader r = root.Child("kv_cache");
  EXPECT_EQ(r.Int("block_tokens", 16, 1), 16);
  EXPECT_NO_THROW(r.Finish());
}

// YAML 1.1 reads "010" as octal 8: an integer key written with a leading zero is
// refused, naming the number meant; "0" and "10" read as written.
TEST(MapReader, AnIntegerWithALeadingZeroIsAnErrorNamingTheNumberMeant) {
  const ConfigTree tree = ConfigTree::Parse(
      "kv_cache:\n  block_tokens: 016\n  a: -007\n  b: 0\n  c: 10\n  d: 00\n", kFile);
  EXPECT_THAT(ReadError(tree, "kv_cache", [](MapReader& r) { r.Int("block_tokens", 16, 1); }),
              HasSubstr(std::string(kFile) +
                        ":2: kv_cache.block_tokens: '016' has a leading zero; write 16 (YAML "
                        "reads a leading 0 as octal)"));
  EXPECT_THAT(ReadError(tree, "kv_cache", [](MapReader& r) { r.Int("a", 0, -100); }),
              HasSubstr("'-007' has a leading zero; write -7"));
  EXPECT_THAT(ReadError(tree, "kv_cache", [](MapReader& r) { r.Int("d", 1, 0); }),
              HasSubstr("'00' has a leading zero; write 0"));
  const DecodeContext ctx{tree.origin(), tree.overridden()};
  MapReader r = MapReader(tree.root(), "", ctx).Child("kv_cache");
  EXPECT_EQ(r.Int("b", 1, 0), 0);
  EXPECT_EQ(r.Int("c", 1, 0), 10);
}

}  // namespace
}  // namespace kvsim
