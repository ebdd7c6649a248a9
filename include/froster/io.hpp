#pragma once
/// @file
/// io module (link `froster::io`: zlib, libpng, libjpeg, nlohmann_json, utf8proc): checkpoints (safetensors read and
/// write, `torch.save` zip files and TorchScript archives, Hugging Face directories), the CLIP BPE tokenizer, PNG/JPEG
/// decoding with CLIP's PIL-exact preprocessing, and .npy output.

#include "froster/io/clip_checkpoint.hpp"
#include "froster/io/clip_loader.hpp"
#include "froster/io/image.hpp"
#include "froster/io/npy.hpp"
#include "froster/io/resize.hpp"
#include "froster/io/safetensors.hpp"
#include "froster/io/state_dict.hpp"
#include "froster/io/tokenizer.hpp"
#include "froster/io/torch_checkpoint.hpp"
