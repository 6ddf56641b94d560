// ParseQuantity and ParseByteSize: numbers with units, as configs and cards write them.
#include "sim/core/units.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sim/core/check.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using testing::InputErrorMessage;

// ---------------------------------------------------------------------------
// ParseByteSize

TEST(ParseByteSize, APlainIntegerIsAByteCount) {
  EXPECT_EQ(ParseByteSize("65536", "k"), 65536);
  EXPECT_EQ(ParseByteSize("0", "k"), 0);
  EXPECT_EQ(ParseByteSize("3000", "k"), 3000);
}

TEST(ParseByteSize, BinaryUnitsArePowersOf1024) {
  EXPECT_EQ(ParseByteSize("64KiB", "k"), 65536);
  EXPECT_EQ(ParseByteSize("2MiB", "k"), 2097152);
  EXPECT_EQ(ParseByteSize("1GiB", "k"), int64_t{1} << 30);
  EXPECT_EQ(ParseByteSize("1TiB", "k"), int64_t{1} << 40);
  EXPECT_EQ(ParseByteSize("12B", "k"), 12);
}

TEST(ParseByteSize, DecimalUnitsArePowersOf1000) {
  EXPECT_EQ(ParseByteSize("1KB", "k"), 1000);
  EXPECT_EQ(ParseByteSize("3MB", "k"), 3000000);
  EXPECT_EQ(ParseByteSize("2GB", "k"), 2000000000);
  EXPECT_EQ(ParseByteSize("1TB", "k"), 1000000000000);
}

TEST(ParseByteSize, AFractionalNumberIsAcceptedWhenTheBytesAreWhole) {
  EXPECT_EQ(ParseByteSize("1.5KiB", "k"), 1536);
  EXPECT_EQ(ParseByteSize("0.5MiB", "k"), 524288);
}

TEST(ParseByteSize, ASpaceBeforeTheUnitIsAllowed) {
  EXPECT_EQ(ParseByteSize("64 KiB", "k"), 65536);
}

TEST(ParseByteSize, AnUnknownUnitIsAnErrorNamingWhere) {
  const std::string message =
      InputErrorMessage([] { ParseByteSize("12XB", "cfg.yaml:3: kv_cache.page_bytes"); });
  EXPECT_THAT(message, HasSubstr("cfg.yaml:3: kv_cache.page_bytes"));
  EXPECT_THAT(message, HasSubstr("12XB"));
}

TEST(ParseByteSize, TextWithoutANumberIsAnError) {
  EXPECT_THAT(InputErrorMessage([] { ParseByteSize("abc", "where"); }), HasSubstr("where"));
  EXPECT_THROW(ParseByteSize("", "where"), InputError);
  EXPECT_THROW(ParseByteSize("KiB", "where"), InputError);
  EXPECT_THROW(ParseByteSize("1.2.3KiB", "where"), InputError);
}

TEST(ParseByteSize, AFractionOfAByteIsAnError) {
  EXPECT_THAT(InputErrorMessage([] { ParseByteSize("1.5B", "where"); }), HasSubstr("1.5B"));
  EXPECT_THROW(ParseByteSize("0.5", "where"), InputError);
}

TEST(ParseByteSize, ANegativeSizeIsAnError) {
  EXPECT_THROW(ParseByteSize("-1", "where"), InputError);
  EXPECT_THROW(ParseByteSize("-64KiB", "where"), InputError);
}

TEST(ParseByteSize, UnitsAreCaseSensitive) {
  EXPECT_THROW(ParseByteSize("64kib", "where"), InputError);
  EXPECT_THROW(ParseByteSize("2mib", "where"), InputError);
}

TEST(ParseQuantity, RatesTakeTheirOwnUnitsOrAPlainNumber) {
  EXPECT_EQ(ParseQuantity("3.35e12", Quantity::kBytesPerSecond), 3.35e12);
  EXPECT_EQ(ParseQuantity("3.35TB/s", Quantity::kBytesPerSecond), 3.35e12);
  EXPECT_EQ(ParseQuantity("900 GiB/s", Quantity::kBytesPerSecond), 900.0 * (1 << 30));
  EXPECT_EQ(ParseQuantity("989.4 TFLOPS", Quantity::kFlopsPerSecond), 989.4e12);
  EXPECT_EQ(ParseQuantity("2PFLOP/s", Quantity::kFlopsPerSecond), 2e15);
  EXPECT_EQ(ParseQuantity("24GB", Quantity::kBytes), 24e9);
}

TEST(ParseQuantity, AUnitOfAnotherKindOrNoNumberIsRefused) {
  EXPECT_FALSE(ParseQuantity("3.35TB", Quantity::kBytesPerSecond));  // bytes, not a rate
  EXPECT_FALSE(ParseQuantity("3.35TB/s", Quantity::kBytes));
  EXPECT_FALSE(ParseQuantity("989 TB/s", Quantity::kFlopsPerSecond));
  EXPECT_FALSE(ParseQuantity("TFLOPS", Quantity::kFlopsPerSecond));
  EXPECT_FALSE(ParseQuantity("-1 GB/s", Quantity::kBytesPerSecond));
  EXPECT_FALSE(ParseQuantity("inf", Quantity::kBytes));
  EXPECT_FALSE(ParseQuantity("1e400", Quantity::kBytes));
  EXPECT_FALSE(ParseQuantity("5 tflops", Quantity::kFlopsPerSecond));  // units are case-sensitive
}

}  // namespace
}  // namespace kvsim
