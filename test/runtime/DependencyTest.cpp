//===- DependencyTest.cpp - The runtime library stays LLVM-free -----------===//
//
// Deployments ship only libnormc_runtime, so its dynamic dependencies must
// be limited to the C/C++ system libraries (no LLVM, no MLIR, no CUDA), and
// it must export nothing but the C API.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

using namespace normc_test;

namespace {

/// Runs `command`; returns false if it could not run or failed.
bool runCommand(const std::string &command, std::string &output) {
  FILE *pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (!pipe)
    return false;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    output.append(buffer, got);
  return pclose(pipe) == 0;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

TEST(Dependencies, NeededLibrariesExcludeLlvmAndMlir) {
  std::string output;
  if (!runCommand("readelf -d '" NORMC_RUNTIME_LIBRARY "'", output))
    GTEST_SKIP() << "readelf is not available";
  std::vector<std::string> needed;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("(NEEDED)") == std::string::npos)
      continue;
    size_t open = line.find('['), close = line.find(']');
    ASSERT_NE(open, std::string::npos) << line;
    needed.push_back(line.substr(open + 1, close - open - 1));
  }
  ASSERT_FALSE(needed.empty()) << output;

  const char *allowed[] = {"libc.so", "libstdc++.so", "libm.so", "libgcc_s.so",
                           "libpthread.so", "libdl.so", "librt.so", "ld-linux",
                           "libc++.so", "libc++abi.so", "libunwind.so",
                           // Sanitizer builds of the test suite.
                           "libasan.so", "libtsan.so", "libubsan.so",
                           "liblsan.so", "libclang_rt."};
  for (const std::string &library : needed) {
    SCOPED_TRACE(library);
    EXPECT_EQ(lower(library).find("llvm"), std::string::npos);
    EXPECT_EQ(lower(library).find("mlir"), std::string::npos);
    EXPECT_EQ(lower(library).find("cuda"), std::string::npos);
    bool isAllowed = false;
    for (const char *prefix : allowed)
      isAllowed |= library.rfind(prefix, 0) == 0;
    EXPECT_TRUE(isAllowed) << "unexpected dependency " << library;
  }
}

TEST(Dependencies, ExportsOnlyTheCApi) {
  std::string output;
  if (!runCommand("readelf --dyn-syms -W '" NORMC_RUNTIME_LIBRARY "'", output))
    GTEST_SKIP() << "readelf is not available";
  size_t exported = 0;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    // Num: Value Size Type Bind Vis Ndx Name
    std::istringstream fields(line);
    std::string num, value, size, type, bind, visibility, index, name;
    if (!(fields >> num >> value >> size >> type >> bind >> visibility >>
          index >> name) ||
        num == "Num:" || num.back() != ':' || index == "UND" ||
        type == "SECTION" || type == "FILE" || bind == "LOCAL")
      continue;
    name = name.substr(0, name.find('@')); // drop symbol versions
    ++exported;
    EXPECT_EQ(name.rfind("normc_", 0), 0u) << "unexpected export " << name;
  }
  EXPECT_GT(exported, 20u);
}

} // namespace
