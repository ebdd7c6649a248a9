#pragma once
/// @file
/// Eigen integration: zero-copy adapters and the Eigen backend. Needs Eigen 3.4.

#include "froster/adapters/eigen.hpp"
#include "froster/backends/eigen.hpp"
