#pragma once
/// @file
/// model module: `ClipModel` (both CLIP encoders loaded from a checkpoint's state dict) and `ZeroShotClassifier`.

#include "froster/model/clip.hpp"
