#pragma once
/// ldns (the DNS library mesh names use), included safely from C++. ldns/common.h defines
/// `bool`, `true` and `false` as macros unless `__bool_true_false_are_defined` is set — which
/// wrecks the C++ standard library headers included after it (seen with clang and libstdc++).
/// <stdbool.h> sets that flag and, in C++, defines nothing else. Include this, never
/// <ldns/ldns.h> directly.

// The order is the point: keep clang-format from sorting these two.
// clang-format off
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): needed for its flag, see above
#include <ldns/ldns.h>
// clang-format on
