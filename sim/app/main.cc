// kvsim: command-line entry point. Subcommands: run, compare, sweep, plan, report, validate,
// fit.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "sim/app/commands.h"
#include "sim/app/plan_mpi.h"
#include "sim/core/check.h"
#include "sim/core/staged_directory.h"

namespace po = boost::program_options;

namespace {

// One subcommand: its operand, what it does, and the options it takes (nothing else
// is accepted: an option of another command is an error, never silently ignored).
struct Command {
  const char* name;
  const char* operand;  // CONFIG, PLAN, DIR, PROFILE, FIT
  const char* summary;  // for `kvsim --help`
  const char* details;  // for `kvsim NAME --help`
  std::vector<std::string> options;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"run",
       "CONFIG",
       "simulate one scenario",
       "Simulates the scenario of CONFIG and writes DIR/summary.json, requests.csv,\n"
       "timeseries.csv, config.yaml and manifest.json.",
       {"set", "out", "force", "quiet"}},
      {"compare",
       "CONFIG",
       "the scenario once per entry of its compare list, side by side",
       "Simulates the scenario once per entry of its compare list (default: static, paged,\n"
       "vattention_2MiB, vattention_64KiB) and prints them side by side; writes\n"
       "DIR/<label>/ and DIR/compare.json.",
       {"set", "out", "force", "jobs", "quiet"}},
      {"sweep",
       "CONFIG",
       "the scenario at each offered load of --rates, per compare entry",
       "Simulates the scenario at each offered load of --rates, once per compare entry;\n"
       "writes DIR/<label>/rate_<qps>/ and DIR/sweep.json. Under mpirun -np N the runs\n"
       "spread over the ranks (rank 0 writes).",
       {"rates", "set", "out", "force", "jobs", "quiet"}},
      {"plan",
       "PLAN",
       "size a GPU fleet under latency SLOs",
       "Sizes a GPU fleet under latency SLOs (PLAN is a plan file; overrides go under its\n"
       "`set:`; candidate dimensions take lists and ranges {from, to, step|times}; several\n"
       "`scenarios:` combine by `combine: one_fleet|separate_fleets`); writes DIR/plan.csv\n"
       "and DIR/plan.json (and DIR/plan_scenarios.csv for several scenarios). Under mpirun\n"
       "-np N the candidates spread over the ranks (rank 0 writes); --shard I/N evaluates\n"
       "one shard of them and writes DIR/shard.json, for `kvsim plan merge`. Exits 5 when\n"
       "no candidate meets the SLOs, 6 when the recommendation's whole-fleet check did not\n"
       "verify it (the outputs are written either way).",
       {"out", "force", "jobs", "shard", "quiet"}},
      {"plan merge",
       "DIR...",
       "merge the shards of a plan (kvsim plan --shard I/N)",
       "Merges the shard directories of one plan (each written by kvsim plan --shard I/N)\n"
       "into the outputs one process writes: --out DIR/plan.csv and plan.json. Names any\n"
       "shard missing or unfinished.",
       {"out", "force", "jobs", "quiet"}},
      {"report",
       "DIR",
       "HTML and Markdown report of an output directory",
       "Turns the outputs in DIR (of run, compare, sweep, plan or a kvprobe profile)\n"
       "into DIR/report.html and DIR/report.md.",
       {}},
      {"validate",
       "PROFILE",
       "predict a kvprobe profile's measured forward passes",
       "Predicts the [step] rows (whole forward passes timed on the GPU) of a kvprobe\n"
       "profile with the profiled and roofline models and prints each one's error; with\n"
       "--steps FILE, the [step] rows of FILE (another run of the same GPU) instead, from\n"
       "PROFILE's kernel rows. With --out, writes DIR/validate.json. --set takes timing.*\n"
       "keys. With --check, exits 4 unless every row is predicted within its tolerance.",
       {"gpu", "models", "set", "steps", "tolerance", "mixed-tolerance", "check", "out", "force",
        "quiet"}},
      {"fit",
       "FIT",
       "fit timing terms to measured runs of a real engine",
       "Fits the free timing terms of a fit file to measured runs of a real engine; writes\n"
       "DIR/calibration.yaml (use it with timing.calibration), DIR/fit.json, DIR/fit.txt.",
       {"set", "out", "force", "jobs", "holdout", "quiet"}},
  };
  return commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::string Usage() {
  std::string text = "usage: kvsim COMMAND OPERAND [options]\ncommands:\n";
  for (const Command& c : Commands()) {
    text += fmt::format("  {:<11}{:<9}{}\n", c.name, c.operand, c.summary);
  }
  text +=
      "kvsim COMMAND --help lists a command's options; kvsim --version prints the version.\n"
      "Outputs go to --out DIR (default reports/runs/<name>[-compare|-sweep|-plan|-fit]);\n"
      "an existing DIR of an earlier run is replaced only with --force.\n";
  return text;
}

// Adds option `name` of `command` to `d`, bound to its field of `o`.
void AddOption(po::options_description& d, const std::string& name, const Command& command,
               kvsim::CommandOptions& o) {
  const std::string cmd = command.name;
  if (name == "set") {
    d.add_options()("set", po::value<std::vector<std::string>>(&o.overrides)->composing(),
                    "override a key: --set key.path=value (repeatable)");
  } else if (name == "out") {
    d.add_options()("out,o", po::value<std::string>(&o.out_dir),
                    cmd == "validate" ? "write DIR/validate.json"
                                      : "output directory (default: reports/runs/<name>...)");
  } else if (name == "force") {
    d.add_options()("force", po::bool_switch(&o.force),
                    "replace the outputs of an earlier run in --out");
  } else if (name == "jobs") {
    d.add_options()("jobs,j", po::value<int>(&o.jobs)->default_value(0),
                    cmd == "plan" ? "simulations in parallel (0: the plan's jobs, else all cores)"
                                  : "simulations in parallel (0: all cores)");
  } else if (name == "quiet") {
    d.add_options()("quiet,q", po::bool_switch(&o.quiet), "print nothing on success");
  } else if (name == "rates") {
    d.add_options()("rates", po::value<std::string>()->required(),
                    "offered loads in requests/s, e.g. 1,2,4,8 (required)");
  } else if (name == "gpu") {
    d.add_options()("gpu", po::value<std::string>(&o.gpu),
                    "the GPU card, a name in MODELS/gpu/ or a path (default: the card whose "
                    "device_names hold the profile's gpu_name)");
  } else if (name == "models") {
    d.add_options()("models", po::value<std::string>(&o.models_dir),
                    "the directory of the gpu/ and llm/ cards (default: kvsim's models/)");
  } else if (name == "shard") {
    d.add_options()("shard", po::value<std::string>(&o.shard),
                    "I/N: evaluate shard I of N (every N-th candidate from the I-th) and write "
                    "DIR/shard.json");
  } else if (name == "tolerance") {
    d.add_options()("tolerance", po::value<double>(&o.tolerance_pct)->default_value(5),
                    "percent: a decode-only or prefill-only pass is within tolerance when "
                    "|error| is at most this");
  } else if (name == "mixed-tolerance") {
    d.add_options()("mixed-tolerance", po::value<double>(&o.mixed_tolerance_pct)->default_value(10),
                    "percent: the same for mixed batches (prefill and decode)");
  } else if (name == "steps") {
    d.add_options()("steps", po::value<std::string>(&o.steps_path),
                    "predict the [step] rows of this kvprobe profile (another run on a GPU of "
                    "the same name) from PROFILE's kernel rows");
  } else if (name == "check") {
    d.add_options()("check", po::bool_switch(&o.check),
                    "exit 4 unless every row is predicted within its tolerance");
  } else if (name == "holdout") {
    d.add_options()("holdout", po::bool_switch(&o.holdout),
                    "also predict each run from terms fitted on the others (leave one out)");
  }
}

// The commands that take option `name`, for an error about it elsewhere.
std::vector<std::string> CommandsTaking(const std::string& name) {
  std::vector<std::string> names;
  for (const Command& c : Commands()) {
    if (std::find(c.options.begin(), c.options.end(), name) != c.options.end()) {
      names.push_back(c.name);
    }
  }
  return names;
}

// Parses --rates "1,2,4" into `rates_qps`: each a number in (0, 1e9], none twice (1
// and 1.0 are the same rate, given twice), no item empty ("1,,2" or "1,").
// Returns an error message, or "" when they parse.
std::string ParseRates(const std::string& text, std::vector<double>& rates_qps) {
  if (text.empty()) return "--rates: no rate given, e.g. --rates 1,2,4,8";
  std::vector<std::string> parts;  // as given, for the message about a repeat
  std::string part;
  for (char c : text + ",") {
    if (c != ',') {
      part += c;
      continue;
    }
    if (part.empty()) {
      return fmt::format("--rates '{}': item {} is empty, e.g. --rates 1,2,4,8", text,
                         parts.size() + 1);
    }
    size_t used = 0;
    double rate = 0;
    try {
      rate = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || !(rate > 0 && rate <= 1e9)) {
      return fmt::format("--rates: '{}' is not a number in (0, 1e9]", part);
    }
    if (const auto at = std::find(rates_qps.begin(), rates_qps.end(), rate);
        at != rates_qps.end()) {
      const std::string& first = parts[static_cast<size_t>(at - rates_qps.begin())];
      return first == part
                 ? fmt::format("--rates: {} is given twice", part)
                 : fmt::format("--rates: {} is given twice ({} is the same rate)", part, first);
    }
    rates_qps.push_back(rate);
    parts.push_back(part);
    part.clear();
  }
  return "";
}

// `--set key value`, `--set key = value` or `--set key =value` on the line of command
// `name` (a value outside the key's word would be taken for a second operand): prints
// the error, naming the words given and the one word meant, and returns true.
bool MisusedSet(const std::string& name, int argc, char** argv) {
  for (int i = 2; i + 1 < argc; ++i) {
    const std::string key = argv[i + 1];
    if (std::string(argv[i]) != "--set" || key.find('=') != std::string::npos) continue;
    std::string given = key;  // the words after --set, as typed
    std::string value = "VALUE";
    // A word that is not an option: the value meant, or the '=' before it.
    const auto word = [&](int at) { return at < argc && argv[at][0] != '-'; };
    int next = i + 2;
    if (word(next) && argv[next][0] == '=') {
      given += fmt::format(" {}", argv[next]);
      if (argv[next][1] != '\0') value = argv[next] + 1;  // `key =value`
      ++next;
    }
    if (value == "VALUE" && word(next)) {
      given += fmt::format(" {}", argv[next]);
      value = argv[next];
    }
    std::cerr << fmt::format(
        "kvsim {}: --set '{}': expected key.path=value in one word, e.g. --set {}={}\n", name,
        given, key, value);
    return true;
  }
  return false;
}

// The hint after "unknown option 'OPTION'": the commands that take it, or the options
// an abbreviation would have matched ("; did you mean ...?"), or "".
std::string UnknownOptionHint(const std::string& option) {
  std::string bare = option.substr(option.find_first_not_of('-'));
  bare = bare.substr(0, bare.find('='));
  std::string hint;
  if (const std::vector<std::string> takers = CommandsTaking(bare); !takers.empty()) {
    return fmt::format(" (an option of kvsim {})", fmt::join(takers, ", kvsim "));
  }
  // Abbreviations are not accepted; name the options they would have matched.
  for (const Command& c : Commands()) {
    for (const std::string& full : c.options) {
      if (!bare.empty() && full.starts_with(bare) && hint.find("--" + full) == std::string::npos) {
        hint += fmt::format("{}--{} (kvsim {})", hint.empty() ? "; did you mean " : ", ", full,
                            fmt::join(CommandsTaking(full), ", kvsim "));
      }
    }
  }
  if (!hint.empty()) hint += "?";
  return hint;
}

// The usage error in the values of --out and --jobs of command `name`, or nothing.
// An empty --out (a script's unset "$DIR") would write to the default directory.
std::optional<std::string> BadValue(const std::string& name, const po::variables_map& vm,
                                    const kvsim::CommandOptions& o) {
  if (vm.count("out") && o.out_dir.empty()) {
    return "--out is empty: give a directory, or leave --out out for the default";
  }
  if (o.jobs < 0) {
    return fmt::format("--jobs must be >= 0 ({}), got {}",
                       name == "plan" ? "0: the plan's jobs, else all cores" : "0: all cores",
                       o.jobs);
  }
  return std::nullopt;
}

// Parses the options and operand of `command` (argv[2..]) into `o`. Returns the exit
// code when the command is not to run: 0 after printing --help, 2 after printing a
// usage error; nothing when it is to run.
std::optional<int> ParseCommandLine(const Command& command, int argc, char** argv,
                                    kvsim::CommandOptions& o) {
  const std::string name = command.name;
  po::options_description visible("options");
  visible.add_options()("help,h", "show this help");
  for (const std::string& option : command.options) AddOption(visible, option, command, o);
  po::options_description all;
  all.add(visible);
  // `plan merge` takes several directories; the others one operand.
  const bool many = std::string(command.operand).ends_with("...");
  if (many) {
    all.add_options()("operand", po::value<std::vector<std::string>>(&o.operands));
  } else {
    all.add_options()("operand", po::value<std::string>(&o.config_path));
  }
  po::positional_options_description positional;
  positional.add("operand", many ? -1 : 1);
  const std::string help =
      fmt::format("usage: kvsim {} {} [options]\n{}\n", name, command.operand, command.details);
  if (MisusedSet(name, argc, argv)) return 2;

  po::variables_map vm;
  try {
    // No abbreviations: --rate is not --rates, --r is nothing.
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(argc - 1, argv + 1)
                  .options(all)
                  .positional(positional)
                  .style(style)
                  .run(),
              vm);
    if (vm.count("help")) {
      std::cout << help << visible;
      return 0;
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    const std::string option = e.get_option_name();
    std::cerr << fmt::format("kvsim {}: unknown option '{}'{}\n{}", name, option,
                             UnknownOptionHint(option), help)
              << visible;
    return 2;
  } catch (const po::too_many_positional_options_error&) {
    std::cerr << fmt::format("kvsim {}: one {} only; the rest of the line is not an option\n{}",
                             name, command.operand, help)
              << visible;
    return 2;
  } catch (const po::error& e) {
    std::cerr << fmt::format("kvsim {}: {}\n{}", name, e.what(), help) << visible;
    return 2;
  }
  if (o.config_path.empty() && o.operands.empty()) {
    std::cerr << fmt::format("kvsim {}: missing {}\n{}", name, command.operand, help) << visible;
    return 2;
  }
  if (const std::optional<std::string> error = BadValue(name, vm, o)) {
    std::cerr << fmt::format("kvsim {}: {}\n", name, *error);
    return 2;
  }
  if (vm.count("rates")) {
    const std::string error = ParseRates(vm["rates"].as<std::string>(), o.rates_qps);
    if (!error.empty()) {
      std::cerr << fmt::format("kvsim {}: {}\n", name, error);
      return 2;
    }
  }
  return std::nullopt;
}

// Runs subcommand `name` with the parsed options; returns its exit code.
int Dispatch(const std::string& name, const kvsim::CommandOptions& o) {
  if (name == "plan") return kvsim::PlanCommand(o, std::cout);
  if (name == "plan merge") return kvsim::PlanMergeCommand(o, std::cout);
  if (name == "sweep") return kvsim::SweepCommand(o, std::cout);
  if (name == "report") return kvsim::ReportCommand(o, std::cout);
  if (name == "validate") return kvsim::ValidateCommand(o, std::cout);
  if (name == "fit") return kvsim::FitCommand(o, std::cout);
  if (name == "compare") return kvsim::CompareCommand(o, std::cout);
  return kvsim::RunCommand(o, std::cout);
}

int Main(int argc, char** argv) {
  const std::string first = argc >= 2 ? argv[1] : "";
  if (argc < 2 || first == "--help" || first == "-h" || first == "help") {
    // `kvsim help COMMAND` (a command of one or two words): that command's --help.
    if (first == "help" && argc >= 3) {
      const bool merge =
          argc == 4 && std::string(argv[2]) == "plan" && std::string(argv[3]) == "merge";
      if (argc == 3 && FindCommand(argv[2]) != nullptr) {
        const char* args[] = {argv[0], argv[2], "--help"};
        return Main(3, const_cast<char**>(args));
      }
      if (merge) {
        const char* args[] = {argv[0], "plan", "merge", "--help"};
        return Main(4, const_cast<char**>(args));
      }
      if (argc == 3) {
        std::cerr << fmt::format("kvsim help: unknown command '{}'\n{}", argv[2], Usage());
        return 2;
      }
    }
    if (argc > 2) {
      std::cerr << fmt::format(
          "kvsim {}: unexpected '{}' (kvsim help COMMAND for a command's help)\n{}", first,
          argv[first == "help" && argc > 3 ? 3 : 2], Usage());
      return 2;
    }
    (argc < 2 ? std::cerr : std::cout) << Usage();
    return argc < 2 ? 2 : 0;
  }
  if (first == "--version" || first == "-V") {
    if (argc > 2) {
      std::cerr << fmt::format("kvsim {}: takes nothing after it, got '{}'\n", first, argv[2]);
      return 2;
    }
    std::cout << "kvsim " << KVSIM_VERSION << "\n";
    return 0;
  }
  // `kvsim plan merge DIR...`: a command of two words, its options after both.
  const int words = first == "plan" && argc >= 3 && std::string(argv[2]) == "merge" ? 2 : 1;
  const Command* command = FindCommand(words == 2 ? "plan merge" : first);
  if (command == nullptr) {
    std::cerr << fmt::format("kvsim: unknown command '{}'\n{}", first, Usage());
    return 2;
  }
  kvsim::CommandOptions o;
  if (const std::optional<int> exit_code =
          ParseCommandLine(*command, argc - (words - 1), argv + (words - 1), o)) {
    return *exit_code;
  }
  return Dispatch(command->name, o);
}

// Runs Main; an error (an exception) on one MPI rank ends every rank (MpiAbort). A
// command's own non-zero status (validate --check, an infeasible plan) is a result,
// returned after the ranks finish together.
int MainCatching(int argc, char** argv) {
  int code = 0;
  bool failed = true;
  try {
    kvsim::MpiStart(&argc, &argv);
    code = Main(argc, argv);
    failed = false;
  } catch (const kvsim::InputError& e) {
    std::cerr << "kvsim: error: " << kvsim::NameStagedAsTarget(e.what()) << "\n";
    code = 2;
  } catch (const kvsim::InvariantError& e) {
    std::cerr << "kvsim: internal error (please report): " << e.what() << "\n";
    code = 3;
  } catch (const std::exception& e) {
    std::cerr << "kvsim: error: " << e.what() << "\n";
    code = 1;
  }
  if (failed && kvsim::MpiSize() > 1) kvsim::MpiAbort(code);
  kvsim::MpiStop();
  return code;
}

}  // namespace

int main(int argc, char** argv) { return MainCatching(argc, argv); }
