#pragma once
/// @file
/// Core module: errors, element types and devices, views, owning tensors, parameters.

#include "froster/core/checks.hpp"
#include "froster/core/error.hpp"
#include "froster/core/parameter.hpp"
#include "froster/core/random.hpp"
#include "froster/core/tensor.hpp"
#include "froster/core/tensor_view.hpp"
#include "froster/core/types.hpp"
