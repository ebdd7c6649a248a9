#pragma once
/// @file
/// froster umbrella header: the core, the backend concept with the reference backend, and the distillation
/// components. Needs only the C++20 standard library. Optional integrations have their own headers:
/// `<froster/eigen.hpp>` (Eigen adapters and `EigenBackend`) and `<froster/xtensor.hpp>` (xtensor adapters).

#include "froster/backends/backend.hpp"
#include "froster/backends/fused.hpp"
#include "froster/backends/fused_distillation.hpp"
#include "froster/backends/reference.hpp"
#include "froster/core.hpp"
#include "froster/distillation.hpp"
#include "froster/model.hpp"
#include "froster/nn.hpp"
#include "froster/version.hpp"
