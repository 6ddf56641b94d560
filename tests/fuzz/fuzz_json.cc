// Fuzz target: the JSON reader of `kvsim fit` (ParseJson, sim/core/json_value.h). What
// parses is walked with every typed accessor its values admit.
#include "sim/core/json_value.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

void Walk(const JsonValue& v, int first_line) {
  KVSIM_FUZZ_EXPECT(v.line() >= first_line, "a value before the first line");
  (void)v.where();
  (void)v.origin();
  switch (v.type()) {
    case JsonValue::Type::kNull:
      break;
    case JsonValue::Type::kBool:
      (void)v.AsBool();
      break;
    case JsonValue::Type::kNumber:
      (void)v.AsNumber();
      if (v.IsIntegral()) ExpectOnlyInputErrors("AsInt", [&] { (void)v.AsInt(); });
      break;
    case JsonValue::Type::kString:
      (void)v.AsString();
      ExpectOnlyInputErrors("AsNumber of a string", [&] { (void)v.AsNumber(); });
      break;
    case JsonValue::Type::kArray:
      KVSIM_FUZZ_EXPECT(v.size() == v.AsArray().size(), "size() is not the array's");
      for (const JsonValue& e : v.AsArray()) Walk(e, first_line);
      ExpectOnlyInputErrors("Element past the end", [&] { (void)v.Element(v.size()); });
      break;
    case JsonValue::Type::kObject:
      KVSIM_FUZZ_EXPECT(v.size() == v.AsObject().size(), "size() is not the object's");
      for (const JsonValue::Member& m : v.AsObject()) {
        KVSIM_FUZZ_EXPECT(v.Find(m.key) == &m.value, "Find does not find a member");
        Walk(m.value, first_line);
      }
      ExpectOnlyInputErrors("At a missing key", [&] { (void)v.At("\x01 no such key"); });
      break;
  }
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const int first_line = size > 0 ? 1 + data[0] % 3 : 1;
  ExpectOnlyInputErrors("json", [&] {
    const JsonValue v = ParseJson(AsText(data, size), "fuzz.json", first_line);
    Walk(v, first_line);
  });
  return 0;
}
