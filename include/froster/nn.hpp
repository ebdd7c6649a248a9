#pragma once
/// @file
/// nn module: CLIP's layers and encoders on any backend — LayerNorm, Linear, the pre-LN residual attention block
/// and transformer (with gradient checkpointing), the vision transformer (with the temporal expand view) and the
/// text transformer, forward and backward.

#include "froster/nn/layers.hpp"
#include "froster/nn/parameters.hpp"
#include "froster/nn/text_transformer.hpp"
#include "froster/nn/transformer.hpp"
#include "froster/nn/vision_transformer.hpp"
