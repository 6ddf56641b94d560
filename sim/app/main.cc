// kvsim: command-line entry point. Subcommands: run, compare, sweep, plan, report, validate,
// fit.
#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "sim/app/commands.h"
#include "sim/core/check.h"
#include "sim/core/staged_directory.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "usage: kvsim <command> CONFIG [options]\n"
    "commands:\n"
    "  run      simulate one scenario; writes summary.json, requests.csv, timeseries.csv\n"
    "  compare  simulate the scenario once per KV manager of its compare list and print\n"
    "           them side by side; writes DIR/<label>/ and DIR/compare.json\n"
    "  sweep    simulate the scenario at each rate of --rates, once per KV manager;\n"
    "           writes DIR/<label>/rate_<qps>/ and DIR/sweep.json\n"
    "  plan     size a GPU fleet under latency SLOs (CONFIG is a plan file); writes\n"
    "           DIR/plan.csv and DIR/plan.json\n"
    "  report   turn the outputs in a run, compare, sweep, plan or profile directory\n"
    "           (CONFIG is that directory) into DIR/report.html and DIR/report.md\n"
    "  validate predict the [step] rows (whole forward passes timed on the GPU) of a kvprobe\n"
    "           profile (CONFIG is the profile.txt) with the profiled and roofline models and\n"
    "           print each one's error; with --out, writes DIR/validate.json:\n"
    "           kvsim validate PROFILE [--gpu CARD] [--models DIR] [--set timing.key=value]...\n"
    "  fit      fit timing terms to measured runs of a real engine (CONFIG is a fit file);\n"
    "           writes DIR/calibration.yaml (use: timing.calibration), DIR/fit.json:\n"
    "           kvsim fit FIT.yaml [--out DIR] [--jobs N] [--holdout]\n";

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command != "run" && command != "compare" && command != "plan" && command != "sweep" &&
      command != "report" && command != "validate" && command != "fit") {
    std::cerr << fmt::format("kvsim: unknown command '{}'\n{}", command, kUsage);
    return 2;
  }

  kvsim::CommandOptions o;
  po::options_description visible("options");
  visible.add_options()("help,h", "show this help")(
      "set", po::value<std::vector<std::string>>(&o.overrides)->composing(),
      "override a config key: --set key.path=value (repeatable)")(
      "out,o", po::value<std::string>(&o.out_dir),
      "output directory (default: reports/runs/<config name>[-compare])")(
      "jobs,j", po::value<int>(&o.jobs)->default_value(0),
      "compare, plan, fit: simulations run in parallel (0 = all cores / the plan's jobs)")(
      "quiet,q", po::bool_switch(&o.quiet), "print nothing on success")(
      "rates", po::value<std::string>(), "sweep: offered loads in requests/s, e.g. 1,2,4,8")(
      "gpu", po::value<std::string>(&o.gpu),
      "validate: the GPU card, a name in DIR/gpu/ or a path (default: the card whose "
      "device_names hold the profile's gpu_name)")(
      "models", po::value<std::string>(&o.models_dir),
      "validate: the directory of the gpu/ and llm/ cards (default: the source tree's models/)")(
      "holdout", po::bool_switch(&o.holdout),
      "fit: also predict each run from terms fitted on the other runs (leave one run out)");
  po::options_description hidden;
  hidden.add_options()("config", po::value<std::string>(&o.config_path));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("config", 1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(all).positional(positional).run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << fmt::format("kvsim {}: {}\n{}", command, e.what(), kUsage) << visible;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << visible;
    return 0;
  }
  if (o.config_path.empty()) {
    std::cerr << fmt::format("kvsim {}: missing {}\n{}", command,
                             command == "validate" ? "PROFILE" : "CONFIG", kUsage);
    return 2;
  }
  for (const char* option : {"gpu", "models"}) {
    if (vm.count(option) && command != "validate") {
      std::cerr << fmt::format("kvsim {}: --{} is an option of kvsim validate only\n", command,
                               option);
      return 2;
    }
  }
  if (o.holdout && command != "fit") {
    std::cerr << fmt::format("kvsim {}: --holdout is an option of kvsim fit only\n", command);
    return 2;
  }
  if (vm.count("rates")) {
    std::string part;
    for (char c : vm["rates"].as<std::string>() + ",") {
      if (c != ',') {
        part += c;
        continue;
      }
      if (part.empty()) continue;
      try {
        size_t used = 0;
        const double rate = std::stod(part, &used);
        if (used != part.size() || !(rate > 0 && rate <= 1e9)) throw std::invalid_argument(part);
        if (std::find(o.rates_qps.begin(), o.rates_qps.end(), rate) != o.rates_qps.end()) {
          std::cerr << fmt::format("kvsim {}: --rates: {} is given twice\n", command, part);
          return 2;
        }
        o.rates_qps.push_back(rate);
      } catch (const std::exception&) {
        std::cerr << fmt::format("kvsim {}: --rates: '{}' is not a number in (0, 1e9]\n", command,
                                 part);
        return 2;
      }
      part.clear();
    }
  }
  if (command == "plan") return kvsim::PlanCommand(o, std::cout);
  if (command == "sweep") return kvsim::SweepCommand(o, std::cout);
  if (command == "report") return kvsim::ReportCommand(o, std::cout);
  if (command == "validate") return kvsim::ValidateCommand(o, std::cout);
  if (command == "fit") return kvsim::FitCommand(o, std::cout);
  return command == "run" ? kvsim::RunCommand(o, std::cout) : kvsim::CompareCommand(o, std::cout);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const kvsim::InputError& e) {
    std::cerr << "kvsim: error: " << kvsim::NameStagedAsTarget(e.what()) << "\n";
    return 2;
  } catch (const kvsim::InvariantError& e) {
    std::cerr << "kvsim: internal error (please report): " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "kvsim: error: " << e.what() << "\n";
    return 1;
  }
}
