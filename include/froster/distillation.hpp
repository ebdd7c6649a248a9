#pragma once
/// @file
/// Distillation module: residual projector, feature normalisation, losses, similarity logits, temporal pooling,
/// and the feature distiller that composes them.

#include "froster/distillation/distiller.hpp"
#include "froster/distillation/losses.hpp"
#include "froster/distillation/normalize.hpp"
#include "froster/distillation/pooling.hpp"
#include "froster/distillation/projector.hpp"
#include "froster/distillation/similarity.hpp"
