#pragma once
/// @file
/// froster's version: the single source; CMakeLists.txt reads the project and package version from here.

#define FROSTER_VERSION_MAJOR 0
#define FROSTER_VERSION_MINOR 1
#define FROSTER_VERSION_PATCH 0

namespace froster {
inline constexpr int version_major = FROSTER_VERSION_MAJOR;
inline constexpr int version_minor = FROSTER_VERSION_MINOR;
inline constexpr int version_patch = FROSTER_VERSION_PATCH;
}  // namespace froster
