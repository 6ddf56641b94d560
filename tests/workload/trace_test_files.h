// Helpers of the trace reader tests: small trace files written by each test, reading a
// trace to its end, and checking that an error names path:line.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/workload/trace_reader.h"
#include "tests/testing/temp_dir.h"

namespace kvsim::testing {

// Writes `contents` verbatim to a file named after the running test and `name`, in a
// temporary directory that this executable's tests share and that is removed when it
// exits; returns the file's path. `name` keeps its extension (format detection uses it).
inline std::string WriteTraceFile(const std::string& name, const std::string& contents) {
  static const TempDir dir;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return dir.Write(std::string(info->test_suite_name()) + "_" + info->name() + "_" + name,
                   contents);
}

inline std::vector<TraceRecord> ReadRecords(TraceReader& reader) {
  std::vector<TraceRecord> records;
  while (std::optional<TraceRecord> r = reader.Next()) records.push_back(std::move(*r));
  return records;
}

inline std::vector<TraceRecord> ReadRecords(const std::string& path, TraceFormat format,
                                            const TraceColumns& columns = {}) {
  std::unique_ptr<TraceReader> reader = OpenTrace(path, format, columns);
  return ReadRecords(*reader);
}

// Opens `path` as `format`, reads it to the end and returns the InputError message (from
// opening or from any row), or "" when the whole file reads cleanly.
inline std::string TraceError(const std::string& path, TraceFormat format,
                              const TraceColumns& columns = {}) {
  try {
    ReadRecords(path, format, columns);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Expects reading `path` to fail with a message that starts with "path:line: " and
// contains `what`.
inline void ExpectTraceErrorAt(const std::string& path, TraceFormat format, int line,
                               const std::string& what, const TraceColumns& columns = {}) {
  const std::string message = TraceError(path, format, columns);
  ASSERT_FALSE(message.empty()) << path << " read without error";
  EXPECT_THAT(message, ::testing::StartsWith(path + ":" + std::to_string(line) + ": ")) << message;
  EXPECT_THAT(message, ::testing::HasSubstr(what)) << message;
}

}  // namespace kvsim::testing
