// Tests for JsonWriter: nesting and indentation, string escaping, deterministic
// number formatting, and non-finite numbers written as null.
#include "sim/metrics/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// The document of a one-field object holding `value`.
std::string One(double value) {
  return JsonWriter().BeginObject().Field("x", value).EndObject().str();
}

std::string Doc(const std::string& value) { return "{\n  \"x\": " + value + "\n}\n"; }

TEST(JsonWriter, NestsObjectsAndArraysWithTwoSpaceIndentation) {
  JsonWriter w;
  w.BeginObject()
      .Field("name", "kvsim")
      .BeginObject("inner")
      .Field("n", int64_t{3})
      .EndObject()
      .BeginArray("list")
      .Field("", int64_t{1})
      .Field("", int64_t{2})
      .EndArray()
      .BeginArray("empty")
      .EndArray()
      .BeginObject("none")
      .EndObject()
      .EndObject();
  EXPECT_EQ(w.str(),
            "{\n"
            "  \"name\": \"kvsim\",\n"
            "  \"inner\": {\n"
            "    \"n\": 3\n"
            "  },\n"
            "  \"list\": [\n"
            "    1,\n"
            "    2\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"none\": {}\n"
            "}\n");
}

TEST(JsonWriter, WritesArraysOfObjects) {
  JsonWriter w;
  w.BeginArray().BeginObject().Field("a", true).EndObject().BeginObject().Field("b", false);
  w.EndObject().EndArray();
  EXPECT_EQ(w.str(),
            "[\n"
            "  {\n"
            "    \"a\": true\n"
            "  },\n"
            "  {\n"
            "    \"b\": false\n"
            "  }\n"
            "]\n");
}

TEST(JsonWriter, WritesAnEmptyTopLevelObject) {
  EXPECT_EQ(JsonWriter().BeginObject().EndObject().str(), "{}\n");
}

TEST(JsonWriter, SplicesRawJsonUnderAKey) {
  JsonWriter w;
  w.BeginObject().Raw("pre", "[1, 2]").Field("after", int64_t{0}).EndObject();
  EXPECT_EQ(w.str(), "{\n  \"pre\": [1, 2],\n  \"after\": 0\n}\n");
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonWriter::Quote(""), "\"\"");
  EXPECT_EQ(JsonWriter::Quote("plain"), "\"plain\"");
  EXPECT_EQ(JsonWriter::Quote("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(JsonWriter::Quote("C:\\dir"), "\"C:\\\\dir\"");
  EXPECT_EQ(JsonWriter::Quote("a\nb\tc"), "\"a\\nb\\tc\"");
  EXPECT_EQ(JsonWriter::Quote("\r"), "\"\\u000d\"");
  EXPECT_EQ(JsonWriter::Quote(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(JsonWriter::Quote(std::string("a\0b", 3)), "\"a\\u0000b\"");
}

TEST(JsonWriter, PassesUtf8AndPrintableAsciiThrough) {
  EXPECT_EQ(JsonWriter::Quote("caf\xc3\xa9 / ok ~"), "\"caf\xc3\xa9 / ok ~\"");
}

TEST(JsonWriter, EscapesKeysAndStringValues) {
  JsonWriter w;
  w.BeginObject().Field("k\"ey", "v\\al\n").EndObject();
  EXPECT_EQ(w.str(), "{\n  \"k\\\"ey\": \"v\\\\al\\n\"\n}\n");
}

TEST(JsonWriter, FormatsDoublesWithTenSignificantDigits) {
  EXPECT_EQ(One(0.1), Doc("0.1"));
  EXPECT_EQ(One(0.1 + 0.2), Doc("0.3"));  // 0.30000000000000004 to 10 digits
  EXPECT_EQ(One(1.0 / 3.0), Doc("0.3333333333"));
  EXPECT_EQ(One(2.0), Doc("2"));
  EXPECT_EQ(One(-2.5), Doc("-2.5"));
  EXPECT_EQ(One(0.0), Doc("0"));
  EXPECT_EQ(One(1234567890.0), Doc("1234567890"));       // 10 digits: fixed
  EXPECT_EQ(One(12345678901.0), Doc("1.23456789e+10"));  // 11 digits: exponent
  EXPECT_EQ(One(1e20), Doc("1e+20"));
  EXPECT_EQ(One(1.5e-7), Doc("1.5e-07"));
  EXPECT_EQ(One(0.0001), Doc("0.0001"));
}

TEST(JsonWriter, WritesConfiguredDoublesSoTheyReadBackExactly) {
  const auto exact = [](double v) {
    return JsonWriter().BeginObject().FieldExact("x", v).EndObject().str();
  };
  EXPECT_EQ(exact(12.345678901234), Doc("12.345678901234"));  // Field keeps 10 digits
  EXPECT_EQ(One(12.345678901234), Doc("12.3456789"));
  EXPECT_EQ(exact(0.1 + 0.2), Doc("0.30000000000000004"));
  EXPECT_EQ(exact(4.0), Doc("4"));
  EXPECT_EQ(exact(std::numeric_limits<double>::infinity()), Doc("null"));
}

TEST(JsonWriter, WritesIntegersInFull) {
  JsonWriter w;
  w.BeginObject()
      .Field("max", std::numeric_limits<int64_t>::max())
      .Field("min", std::numeric_limits<int64_t>::min())
      .Field("zero", int64_t{0})
      .EndObject();
  EXPECT_EQ(w.str(),
            "{\n  \"max\": 9223372036854775807,\n  \"min\": -9223372036854775808,\n"
            "  \"zero\": 0\n}\n");
}

TEST(JsonWriter, WritesNonFiniteNumbersAsNull) {
  EXPECT_EQ(One(std::numeric_limits<double>::quiet_NaN()), Doc("null"));
  EXPECT_EQ(One(std::numeric_limits<double>::infinity()), Doc("null"));
  EXPECT_EQ(One(-std::numeric_limits<double>::infinity()), Doc("null"));
}

TEST(JsonWriter, RefusesAnUnclosedOrUnbalancedDocument) {
  JsonWriter open;
  open.BeginObject().BeginArray("a");
  EXPECT_THROW(open.str(), InvariantError);
  open.EndArray();
  EXPECT_THROW(open.str(), InvariantError);
  open.EndObject();
  EXPECT_NO_THROW(open.str());
  EXPECT_THROW(JsonWriter().EndObject(), InvariantError);
  EXPECT_THROW(JsonWriter().EndArray(), InvariantError);
}

}  // namespace
}  // namespace kvsim
