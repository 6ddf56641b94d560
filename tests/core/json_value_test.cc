// Tests for the strict JSON reader: every value type, nesting and key order, escapes,
// Python's non-finite number tokens, the line each value remembers, syntax and type
// errors that name origin:line, and parsing that keeps only some top-level keys.
#include "sim/core/json_value.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "sim/core/check.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;

// The message of the InputError that parsing `text` as "doc.json" throws.
std::string ParseError(const std::string& text) {
  return InputErrorMessage([&] { ParseJson(text, "doc.json"); });
}

TEST(JsonValueTest, ParsesEveryScalarType) {
  const JsonValue doc =
      ParseJson(R"({"n": null, "t": true, "f": false, "i": -42, "x": 2.5e-1, "s": "hi"})", "d");
  EXPECT_TRUE(doc.IsObject());
  EXPECT_TRUE(doc.At("n").IsNull());
  EXPECT_TRUE(doc.At("t").AsBool());
  EXPECT_FALSE(doc.At("f").AsBool());
  EXPECT_EQ(doc.At("i").AsInt(), -42);
  EXPECT_TRUE(doc.At("i").IsIntegral());
  EXPECT_EQ(doc.At("i").AsNumber(), -42.0);
  EXPECT_EQ(doc.At("x").AsNumber(), 0.25);
  EXPECT_FALSE(doc.At("x").IsIntegral());
  EXPECT_EQ(doc.At("s").AsString(), "hi");
  EXPECT_EQ(doc.size(), 6u);
}

TEST(JsonValueTest, KeepsNestedArraysAndObjectsWithKeysInTextOrder) {
  const JsonValue doc =
      ParseJson(R"({"zeta": [1, [2, 3], {"k": []}], "alpha": {}, "mid": {"b": 1, "a": 2}})", "d");
  const std::vector<JsonValue::Member>& members = doc.AsObject();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].key, "zeta");
  EXPECT_EQ(members[1].key, "alpha");
  EXPECT_EQ(members[2].key, "mid");

  const JsonValue& zeta = doc.At("zeta");
  ASSERT_EQ(zeta.size(), 3u);
  EXPECT_EQ(zeta.Element(0).AsInt(), 1);
  EXPECT_EQ(zeta.Element(1).Element(1).AsInt(), 3);
  EXPECT_TRUE(zeta.Element(2).At("k").IsArray());
  EXPECT_EQ(zeta.Element(2).At("k").size(), 0u);
  EXPECT_EQ(doc.At("alpha").size(), 0u);
  EXPECT_EQ(doc.At("mid").AsObject()[0].key, "b");
  EXPECT_EQ(doc.At("mid").AsObject()[1].key, "a");

  EXPECT_EQ(zeta.Element(1).Element(0).where(), "zeta[1][0]");
  EXPECT_EQ(zeta.Element(2).At("k").where(), "zeta[2].k");
  EXPECT_EQ(doc.where(), "");
}

TEST(JsonValueTest, ParsesAScalarOrAnArrayAsTheWholeDocument) {
  EXPECT_EQ(ParseJson("  7  ", "d").AsInt(), 7);
  EXPECT_EQ(ParseJson("\"s\"", "d").AsString(), "s");
  EXPECT_TRUE(ParseJson("null", "d").IsNull());
  EXPECT_EQ(ParseJson("[1,2]", "d").size(), 2u);
}

TEST(JsonValueTest, DecodesEveryEscapeIncludingUnicodeToUtf8) {
  const JsonValue s = ParseJson(R"("q\" b\\ s\/ \b\f\n\r\t")", "d");
  EXPECT_EQ(s.AsString(), "q\" b\\ s/ \b\f\n\r\t");
  EXPECT_EQ(ParseJson(R"("\u0041\u00e9\u20AC")", "d").AsString(), "A\xC3\xA9\xE2\x82\xAC");
  // U+1F600 as the surrogate pair D83D DE00.
  EXPECT_EQ(ParseJson(R"("\ud83d\ude00")", "d").AsString(), "\xF0\x9F\x98\x80");
  // Raw UTF-8 passes through unchanged.
  EXPECT_EQ(ParseJson("\"caf\xC3\xA9\"", "d").AsString(), "caf\xC3\xA9");
}

TEST(JsonValueTest, RejectsBadEscapesAndUnpairedSurrogates) {
  EXPECT_THAT(ParseError(R"("a\x")"),
              HasSubstr("doc.json:1: malformed JSON at column 3: invalid escape"));
  EXPECT_THAT(ParseError(R"("\u12G4")"), HasSubstr("expected 4 hex digits after \\u"));
  EXPECT_THAT(ParseError(R"("\ud83d")"), HasSubstr("unpaired high surrogate"));
  EXPECT_THAT(ParseError(R"("\ud83d\u0041")"), HasSubstr("unpaired high surrogate"));
  EXPECT_THAT(ParseError(R"("\ude00")"), HasSubstr("unpaired low surrogate"));
}

TEST(JsonValueTest, AcceptsPythonsInfinityAndNanNumberTokens) {
  const JsonValue doc = ParseJson(R"({"rate": Infinity, "low": -Infinity, "bad": NaN})", "d");
  EXPECT_EQ(doc.At("rate").AsNumber(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(doc.At("low").AsNumber(), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(doc.At("bad").AsNumber()));
  EXPECT_FALSE(doc.At("rate").IsIntegral());
  EXPECT_THAT(InputErrorMessage([&] { doc.At("rate").AsInt(); }),
              HasSubstr("d:1: 'rate': expected an integer literal"));
  // Only the exact spellings json.dumps writes.
  EXPECT_THAT(ParseError("infinity"), HasSubstr("unexpected character 'i'"));
  EXPECT_THAT(ParseError("Inf"), HasSubstr("doc.json:1: malformed JSON at column 1"));
  EXPECT_THAT(ParseError("-NaN"), HasSubstr("expected digits in a number"));
}

TEST(JsonValueTest, AsIntRequiresAnIntegerLiteralInTheInt64Range) {
  const JsonValue doc = ParseJson(
      R"({"a": 3.0, "b": 1e2, "min": -9223372036854775808, "big": 9223372036854775808})", "d");
  EXPECT_THAT(InputErrorMessage([&] { doc.At("a").AsInt(); }),
              HasSubstr("d:1: 'a': expected an integer literal (no fraction or exponent), got 3"));
  EXPECT_THAT(InputErrorMessage([&] { doc.At("b").AsInt(); }),
              HasSubstr("'b': expected an integer"));
  EXPECT_EQ(doc.At("a").AsNumber(), 3.0);
  EXPECT_EQ(doc.At("b").AsNumber(), 100.0);
  EXPECT_EQ(doc.At("min").AsInt(), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(doc.At("big").IsIntegral());
  EXPECT_EQ(doc.At("big").AsNumber(), 9223372036854775808.0);
  EXPECT_THAT(InputErrorMessage([&] { doc.At("big").AsInt(); }),
              AllOf(HasSubstr("d:1: 'big': integer "), HasSubstr("is out of the 64-bit range")));
}

TEST(JsonValueTest, EachValueRemembersTheLineWhereItStarts) {
  const std::string text =
      "{\n"                   // 1
      "  \"a\": 1,\n"         // 2
      "  \"b\": [\n"          // 3
      "    true,\n"           // 4
      "\n"                    // 5
      "    {\"c\": \"x\"}\n"  // 6
      "  ],\n"                // 7
      "  \"d\":\n"            // 8
      "    null\n"            // 9
      "}\n";                  // 10
  const JsonValue doc = ParseJson(text, "d");
  EXPECT_EQ(doc.line(), 1);
  EXPECT_EQ(doc.At("a").line(), 2);
  EXPECT_EQ(doc.At("b").line(), 3);
  EXPECT_EQ(doc.At("b").Element(0).line(), 4);
  EXPECT_EQ(doc.At("b").Element(1).line(), 6);
  EXPECT_EQ(doc.At("b").Element(1).At("c").line(), 6);
  EXPECT_EQ(doc.At("d").line(), 9);
  EXPECT_EQ(doc.origin(), "d");
}

TEST(JsonValueTest, FirstLineNumbersTheTextAsOneLineOfALargerFile) {
  const JsonValue doc = ParseJson(R"({"k": 1})", "log.jsonl", 41);
  EXPECT_EQ(doc.line(), 41);
  EXPECT_EQ(doc.At("k").line(), 41);
  EXPECT_THAT(InputErrorMessage([] { ParseJson("{\"k\": tru}", "log.jsonl", 41); }),
              HasSubstr("log.jsonl:41: malformed JSON at column 7: unexpected character 't'"));
  EXPECT_THAT(InputErrorMessage([] { ParseJson("[\n1,\n}", "log.jsonl", 10); }),
              HasSubstr("log.jsonl:12: malformed JSON at column 1"));
}

TEST(JsonValueTest, RejectsADuplicateKeyAtTheLineOfItsSecondOccurrence) {
  EXPECT_THAT(ParseError("{\"a\": 1,\n \"b\": 2,\n \"a\": 3}"),
              HasSubstr("doc.json:3: duplicate key 'a'"));
  EXPECT_THAT(ParseError(R"({"o": {"x": 1, "x": 1}})"),
              HasSubstr("doc.json:1: duplicate key 'o.x'"));
  // The same key in sibling objects is fine.
  EXPECT_NO_THROW(ParseJson(R"([{"x": 1}, {"x": 2}])", "d"));
}

TEST(JsonValueTest, RejectsTrailingCommas) {
  EXPECT_THAT(ParseError("[1, 2,]"), HasSubstr("doc.json:1: malformed JSON at column 7: "
                                               "unexpected character ']', expected a value"));
  EXPECT_THAT(ParseError(R"({"a": 1,})"), HasSubstr("column 9: expected a key string"));
  EXPECT_THAT(ParseError("[,]"), HasSubstr("expected a value"));
}

TEST(JsonValueTest, RejectsMalformedDocumentsNamingLineAndColumn) {
  EXPECT_THAT(ParseError(""), HasSubstr("doc.json:1: malformed JSON at column 1: unexpected end"));
  EXPECT_THAT(ParseError("  \n  "), HasSubstr("doc.json:2: malformed JSON at column 3"));
  EXPECT_THAT(ParseError(R"({"a": "open)"), HasSubstr("unterminated string"));
  EXPECT_THAT(ParseError("\"line\nbreak\""), HasSubstr("unterminated string (end of line)"));
  EXPECT_THAT(ParseError("\"tab\there\""), HasSubstr("control character in a string"));
  EXPECT_THAT(ParseError("{} {}"),
              HasSubstr("column 4: unexpected characters after the JSON value"));
  EXPECT_THAT(ParseError("[1]\n]"), HasSubstr("doc.json:2: malformed JSON at column 1: unexpected "
                                              "characters after"));
  EXPECT_THAT(ParseError("[01]"), HasSubstr("leading zeros are not allowed"));
  EXPECT_THAT(ParseError("[1.]"), HasSubstr("expected digits after '.'"));
  EXPECT_THAT(ParseError("[1e]"), HasSubstr("expected digits in an exponent"));
  EXPECT_THAT(ParseError("[-]"), HasSubstr("expected digits in a number"));
  EXPECT_THAT(ParseError("[+1]"), HasSubstr("unexpected character '+'"));
  EXPECT_THAT(ParseError("[.5]"), HasSubstr("unexpected character '.'"));
  EXPECT_THAT(ParseError("[1e999]"), HasSubstr("number 1e999 is out of range"));
  EXPECT_THAT(ParseError("{'a': 1}"), HasSubstr("expected a key string"));
  EXPECT_THAT(ParseError("{a: 1}"), HasSubstr("expected a key string"));
  EXPECT_THAT(ParseError(R"({"a" 1})"), HasSubstr("expected ':' after a key"));
  EXPECT_THAT(ParseError(R"({"a": 1 "b": 2})"), HasSubstr("expected ',' or '}'"));
  EXPECT_THAT(ParseError("[1 2]"), HasSubstr("expected ',' or ']'"));
  EXPECT_THAT(ParseError("[1, // two\n 2]"), HasSubstr("unexpected character '/'"));
  EXPECT_THAT(ParseError("[tru]"), HasSubstr("unexpected character 't'"));
  EXPECT_THAT(ParseError("nul"), HasSubstr("unexpected character 'n'"));
}

TEST(JsonValueTest, RejectsNestingDeeperThanTheLimitButAcceptsDeepEnoughDocuments) {
  EXPECT_NO_THROW(ParseJson(std::string(200, '[') + std::string(200, ']'), "d"));
  EXPECT_THAT(ParseError(std::string(300, '[') + std::string(300, ']')),
              HasSubstr("nesting deeper than 256 levels"));
}

TEST(JsonValueTest, SkipsALeadingByteOrderMark) {
  EXPECT_EQ(ParseJson("\xEF\xBB\xBF{\"a\": 1}", "d").At("a").AsInt(), 1);
}

TEST(JsonValueTest, TypeMismatchNamesOriginLineAndKeyPath) {
  const JsonValue doc = ParseJson("{\n\"a\": {\"b\": [1,\n \"x\"]}}", "doc.json");
  const JsonValue& x = doc.At("a").At("b").Element(1);
  EXPECT_THAT(InputErrorMessage([&] { x.AsNumber(); }),
              HasSubstr("doc.json:3: 'a.b[1]': expected a number, got a string"));
  EXPECT_THAT(InputErrorMessage([&] { doc.At("a").AsArray(); }),
              HasSubstr("doc.json:2: 'a': expected an array, got an object"));
  EXPECT_THAT(InputErrorMessage([&] { doc.At("a").At("b").AsString(); }),
              HasSubstr("doc.json:2: 'a.b': expected a string, got an array"));
  EXPECT_THAT(InputErrorMessage([&] { x.AsBool(); }),
              HasSubstr("expected a boolean, got a string"));
  EXPECT_THAT(InputErrorMessage([&] { doc.AsArray(); }),
              HasSubstr("doc.json:1: expected an array, got an object"));
  EXPECT_THAT(InputErrorMessage([&] { x.Find("k"); }),
              HasSubstr("doc.json:3: 'a.b[1]': expected an object, got a string"));
  EXPECT_THAT(InputErrorMessage([&] { x.size(); }),
              HasSubstr("expected an array or an object, got a string"));
}

TEST(JsonValueTest, FindReturnsNullForAnAbsentKeyAndAtNamesIt) {
  const JsonValue doc = ParseJson("{\"a\": {\"b\": 1}}", "doc.json", 5);
  EXPECT_EQ(doc.Find("zz"), nullptr);
  ASSERT_NE(doc.Find("a"), nullptr);
  EXPECT_EQ(doc.Find("a")->At("b").AsInt(), 1);
  EXPECT_THAT(InputErrorMessage([&] { doc.At("x"); }), HasSubstr("doc.json:5: missing key 'x'"));
  EXPECT_THAT(InputErrorMessage([&] { doc.At("a").At("c"); }),
              HasSubstr("doc.json:5: missing key 'a.c'"));
}

TEST(JsonValueTest, ElementRejectsAnIndexPastTheEnd) {
  const JsonValue doc = ParseJson(R"({"v": [10, 20]})", "doc.json");
  EXPECT_EQ(doc.At("v").Element(1).AsInt(), 20);
  EXPECT_THAT(InputErrorMessage([&] { doc.At("v").Element(2); }),
              HasSubstr("doc.json:1: 'v': index 2 is out of range (the array has 2 elements)"));
}

TEST(JsonValueTest, FailNamesTheValueForCallersRangeChecks) {
  const JsonValue doc = ParseJson("{\n\"rate\": -1}", "doc.json");
  EXPECT_THAT(InputErrorMessage([&] { doc.At("rate").Fail("must be > 0"); }),
              HasSubstr("doc.json:2: 'rate': must be > 0"));
  EXPECT_THAT(InputErrorMessage([&] { doc.Fail("empty"); }), HasSubstr("doc.json:1: empty"));
}

TEST(JsonValueTest, IntegerLiteralsGiveTheNearestDoubleAndKeepTheSignOfZero) {
  const JsonValue doc = ParseJson("[9007199254740993, -0, 12, -7, 99999999999999999999]", "d");
  EXPECT_EQ(doc.Element(0).AsNumber(), 9007199254740992.0);  // 2^53 + 1 rounds to even
  EXPECT_EQ(doc.Element(0).AsInt(), 9007199254740993);
  EXPECT_TRUE(std::signbit(doc.Element(1).AsNumber()));
  EXPECT_EQ(doc.Element(2).AsNumber(), 12.0);
  EXPECT_EQ(doc.Element(3).AsNumber(), -7.0);
  EXPECT_EQ(doc.Element(4).AsNumber(), 1e20);  // beyond int64: parsed as a double
}

// ---------------------------------------------------------------------------------------
// ParseJsonKeeping

// Keeps the top-level keys "a" and "c".
bool KeepAOrC(std::string_view key) { return key == "a" || key == "c"; }

TEST(JsonValueTest, KeepingStoresOnlyTheTopLevelMembersItIsAskedFor) {
  const JsonValue doc =
      ParseJsonKeeping("{\"a\": 1,\n\"b\": [1, {\"a\": 2}],\n\"c\": {\"b\": 3, \"z\": [true]}}",
                       "doc.json", 1, KeepAOrC);
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc.AsObject()[0].key, "a");
  EXPECT_EQ(doc.AsObject()[1].key, "c");
  EXPECT_EQ(doc.Find("b"), nullptr);
  // Below the top level nothing is left out.
  EXPECT_EQ(doc.At("c").At("b").AsInt(), 3);
  EXPECT_TRUE(doc.At("c").At("z").Element(0).AsBool());
  EXPECT_EQ(doc.At("c").line(), 3);
  EXPECT_EQ(doc.At("c").At("b").where(), "c.b");
}

TEST(JsonValueTest, KeepingChecksTheMembersItLeavesOutAsJson) {
  auto error = [](const std::string& text) {
    return InputErrorMessage([&] { ParseJsonKeeping(text, "doc.json", 1, KeepAOrC); });
  };
  EXPECT_THAT(error("{\"a\": 1,\n\"b\": [1,\n 2,]}"),
              HasSubstr("doc.json:3: malformed JSON at column 4: unexpected character ']'"));
  EXPECT_THAT(error(R"({"b": {"k": 1, "k": 2}})"), HasSubstr("doc.json:1: duplicate key 'k'"));
  EXPECT_THAT(error(R"({"b": 1, "a": 2, "b": 3})"), HasSubstr("doc.json:1: duplicate key 'b'"));
  EXPECT_THAT(error(R"({"b": {"x" 1}})"), HasSubstr("expected ':' after a key"));
  EXPECT_THAT(error(R"({"b": [1 2]})"), HasSubstr("expected ',' or ']' after an element"));
  EXPECT_THAT(error(R"({"b": {"x": 1 "y": 2}})"), HasSubstr("expected ',' or '}' after a member"));
  EXPECT_THAT(error(R"({"b": {1: 2}})"), HasSubstr("expected a key string"));
  EXPECT_THAT(error(R"({"b": [nul]})"), HasSubstr("expected a value"));
  EXPECT_THAT(error("{\"b\": " + std::string(300, '[') + std::string(300, ']') + "}"),
              HasSubstr("nesting deeper than 256 levels"));
  EXPECT_NO_THROW(
      ParseJsonKeeping(R"({"b": {"x": [], "y": {}, "z": "\u00e9"}, "a": 1})", "d", 1, KeepAOrC));
}

TEST(JsonValueTest, KeepingParsesADocumentThatIsNotAnObjectWhole) {
  const JsonValue doc = ParseJsonKeeping("[1, {\"b\": 2}]", "doc.json", 4, KeepAOrC);
  EXPECT_EQ(doc.Element(1).At("b").AsInt(), 2);
  EXPECT_EQ(doc.line(), 4);
}

}  // namespace
}  // namespace kvsim
