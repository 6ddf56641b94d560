// kvprobe command-line parsing.
#include "tools/kvprobe/host/args.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kvprobe {
namespace {

int ParseInt(const std::string& flag, const std::string& text, int min_value) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw ArgsError(flag + ": expected an integer, got '" + text + "'");
  }
  if (value < min_value) {
    throw ArgsError(flag + ": must be >= " + std::to_string(min_value) + ", got " + text);
  }
  return value;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text + ",") {
    if (c == ',') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  return parts;
}

}  // namespace

bool ProbeOptions::Runs(const std::string& section) const {
  return sections.empty() || std::find(sections.begin(), sections.end(), section) != sections.end();
}

ProbeOptions ParseArgs(int argc, const char* const* argv) {
  ProbeOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ArgsError(flag + ": missing value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      o.help = true;
    } else if (flag == "--out") {
      o.out_dir = value();
    } else if (flag == "--models") {
      o.models_dir = value();
    } else if (flag == "--model") {
      o.models.push_back(value());
    } else if (flag == "--only") {
      for (const std::string& s : SplitCommas(value())) {
        const auto& all = AllSections();
        if (std::find(all.begin(), all.end(), s) == all.end()) {
          std::string valid;
          for (const std::string& a : all) valid += (valid.empty() ? "" : ", ") + a;
          throw ArgsError("--only: unknown section '" + s + "'; valid: " + valid);
        }
        o.sections.push_back(s);
      }
      if (o.sections.empty()) throw ArgsError("--only: no section named");
    } else if (flag == "--gpu-name") {
      o.gpu_name = value();
      if (o.gpu_name.empty() || FolderName(o.gpu_name) != o.gpu_name) {
        throw ArgsError("--gpu-name: use letters, digits, '.', '_' and '-' only");
      }
    } else if (flag == "--device") {
      o.device = ParseInt(flag, value(), 0);
    } else if (flag == "--vmm-samples") {
      o.vmm_samples = ParseInt(flag, value(), 10);
    } else if (flag == "--quick") {
      o.quick = true;
    } else {
      throw ArgsError("unknown argument '" + flag + "'");
    }
  }
  return o;
}

std::string Usage() {
  return "usage: kvprobe [--out DIR] [--gpu-name NAME] [--models DIR] [--model NAME]...\n"
         "               [--only SECTION,...] [--device N] [--vmm-samples N] [--quick]\n"
         "Measures the GPU and writes DIR/profile.txt (default DIR: models/profiles/<gpu name>)\n"
         "plus raw CSVs. Sections: vmm, overlap, copy, gemm, attention, allreduce, vattention.\n";
}

std::string FolderName(const std::string& device_name) {
  std::string out;
  bool gap = false;  // characters to replace seen since the last kept one
  for (char c : device_name) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!keep) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += '-';
    gap = false;
    out += c;
  }
  return out;
}

}  // namespace kvprobe
