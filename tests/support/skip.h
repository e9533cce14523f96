// Skipping a test that cannot run here. Catch2 v2 (Debian 12's 2.13) has no
// SKIP(): such a test calls HPO_SKIP(reason) and returns. The marker goes to
// the test's output, and ctest, told by hpo_add_tests (tests/CMakeLists.txt,
// SKIP_REGULAR_EXPRESSION), reports the test as skipped instead of passed.
#pragma once

#include <catch2/catch.hpp>

#define HPO_SKIP_MARKER "HPO-TEST-SKIPPED:"

// Prints the marker and the reason; the caller returns right after.
#define HPO_SKIP_NOTE(reason) WARN(HPO_SKIP_MARKER " " << reason)

// Prints the marker and the reason, and ends the test case.
#define HPO_SKIP(reason)   \
  do {                     \
    HPO_SKIP_NOTE(reason); \
    return;                \
  } while (false)
