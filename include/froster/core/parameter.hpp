#pragma once
/// @file
/// A trainable parameter as an optimiser sees it: its name, its values and its accumulated gradient.

#include <string_view>

#include "froster/core/tensor_view.hpp"

namespace froster {

template <class T>
struct Parameter {
  std::string_view name;
  TensorView<T> value;
  TensorView<T> grad;  ///< Accumulated (`+=`) by backward passes; cleared by `zero_grad()`.
};

}  // namespace froster
