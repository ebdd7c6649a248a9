#pragma once
/// @file
/// xtensor integration: zero-copy adapters between froster views and xtensor expressions. Needs xtensor 0.24.

#include "froster/adapters/xtensor.hpp"
