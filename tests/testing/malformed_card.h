// MalformedCardTest: the fixture of the tests of how a card loader (model or GPU
// cards) rejects malformed cards. It writes cards into a TempDir, edits one key's line
// of a valid card, and returns the InputError message of loading a card.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim::testing {

// `Load` reads a card file, throwing InputError when the card is malformed.
template <auto Load>
class MalformedCardTest : public ::testing::Test {
 protected:
  // `valid_card`: a card that loads, one key per line.
  explicit MalformedCardTest(std::string valid_card) : valid_card_(std::move(valid_card)) {}

  // Writes `text` to `file_name` in the temp dir and returns its path.
  std::string Write(const std::string& file_name, const std::string& text) const {
    return dir_.Write(file_name, text);
  }

  // The valid card with the line starting with `key:` replaced by `replacement`
  // (removed when empty).
  std::string Edit(const std::string& key, const std::string& replacement) const {
    std::string text = valid_card_;
    const size_t begin = text.find(key + ":");
    EXPECT_NE(begin, std::string::npos) << key;
    const size_t end = text.find('\n', begin) + 1;
    text.replace(begin, end - begin, replacement.empty() ? "" : replacement + "\n");
    return text;
  }

  // The InputError message of loading `path` (fails the test if it loads).
  static std::string ErrorOf(const std::string& path) {
    SCOPED_TRACE(path + " loaded without error");
    return InputErrorMessage([&] { Load(path); });
  }

  TempDir dir_;

 private:
  std::string valid_card_;
};

}  // namespace kvsim::testing
