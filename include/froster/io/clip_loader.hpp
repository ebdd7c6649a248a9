#pragma once
/// @file
/// One entry point for every CLIP checkpoint a user may have: `load_clip_checkpoint(path)` takes a safetensors
/// file, a PyTorch `torch.save` file (a FROSTER / Open-VCLIP training checkpoint included: `model.` / `module.`
/// prefixes are stripped), or a Hugging Face model directory (`model.safetensors` or `pytorch_model.bin`, with
/// `config.json` for the head counts), detected by content, not by name.
///
/// A training checkpoint may hold more than one CLIP plus other tensors: FROSTER and Open-VCLIP save the fine-tuned
/// student under `model.`, the frozen teacher under `raw_model.`, and the distillation projectors / prompts at the
/// top level. The CLIP to load is the one under `ClipLoadOptions::prefix`, or else the only one found (top level
/// or under a prefix); several without a choice is an error listing them. Tensors outside the chosen prefix are
/// left out and listed in `ClipCheckpoint::ignored`.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "froster/io/clip_checkpoint.hpp"
#include "froster/io/mapped_file.hpp"
#include "froster/io/safetensors.hpp"
#include "froster/io/torch_checkpoint.hpp"

namespace froster::io {

struct ClipLoadOptions {
  /// Where the CLIP's tensors are ("model.", "raw_model.", "" for the top level), as the file names them; unset:
  /// the only CLIP in the file.
  std::optional<std::string> prefix;
};

struct ClipCheckpoint {
  StateDict state;           ///< As stored (either naming), prefix removed; ClipModel::from_state_dict renames.
  std::string prefix;        ///< The prefix the CLIP was found under ("" = top level).
  std::vector<std::string> ignored;  ///< Tensors outside it (teacher, projectors, ...), as named in the file.
  index_t vision_heads = 0;  ///< From config.json where there is one; 0 = width / 64.
  index_t text_heads = 0;
  std::string format;        ///< "safetensors", "torch" or "hugging face directory (...)", for messages.
};

namespace clip_detail {

/// Heads, activation and LayerNorm eps from a Hugging Face CLIP config.json; what froster cannot run is an error.
inline void read_hf_clip_config(const std::filesystem::path& path, ClipCheckpoint& out) {
  std::ifstream in(path);
  if (!in) throw IoError(froster::detail::concat("cannot open '", path.string(), "'"));
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(froster::detail::concat("'", path.string(), "' is not valid JSON: ", e.what()));
  }
  const auto tower = [&](const char* key, index_t& heads) {
    if (!config.is_object() || !config.contains(key) || !config[key].is_object()) return;
    const nlohmann::json& t = config[key];
    if (t.contains("num_attention_heads") && t["num_attention_heads"].is_number_integer())
      heads = t["num_attention_heads"].get<index_t>();
    if (t.contains("hidden_act") && t["hidden_act"].is_string())
      require<FormatError>(t["hidden_act"] == "quick_gelu", "'", path.string(), "': ", key, ".hidden_act is ",
                           t["hidden_act"].dump(), "; froster's CLIP blocks use quick_gelu (OpenAI's models)");
    if (t.contains("layer_norm_eps") && t["layer_norm_eps"].is_number())
      require<FormatError>(std::abs(t["layer_norm_eps"].get<double>() - 1e-5) < 1e-12, "'", path.string(), "': ", key,
                           ".layer_norm_eps is ", t["layer_norm_eps"].dump(), "; froster's LayerNorm uses 1e-5");
  };
  tower("vision_config", out.vision_heads);
  tower("text_config", out.text_heads);
}

inline bool starts_with_bytes(const std::filesystem::path& path, std::string_view magic) {
  std::ifstream in(path, std::ios::binary);
  std::string head(magic.size(), '\0');
  return in.read(head.data(), std::streamsize(head.size())) && head == magic;
}

/// The prefixes ("" = top level) under which `sd` holds a CLIP: where a root tensor of either naming is.
inline std::vector<std::string> clip_prefixes(const StateDict& sd) {
  std::vector<std::string> found;
  for (const auto& e : sd) {
    // Hugging Face's roots first: its text root ends with OpenAI's ("...embeddings.token_embedding.weight").
    const auto root = [&]() -> std::optional<std::string_view> {
      for (const auto* roots : {&hugging_face_clip_roots, &openai_clip_roots})
        for (std::string_view r : *roots)
          if (e.name.ends_with(r)) return r;
      return std::nullopt;
    }();
    if (!root) continue;
    std::string prefix = e.name.substr(0, e.name.size() - root->size());
    if ((prefix.empty() || prefix.back() == '.') && std::find(found.begin(), found.end(), prefix) == found.end())
      found.push_back(std::move(prefix));
  }
  return found;
}

/// How a prefix reads in messages.
inline std::string prefix_name(const std::string& prefix) {
  return prefix.empty() ? "(top level)" : "'" + prefix + "'";
}

/// Keeps the CLIP under `wanted` (or the only one) and records what was left out (see the file comment).
/// `stripped`: what the reader already removed from every name (torch files: a shared `module.` / `model.`), so
/// that the prefix as the file stores it is accepted too.
inline void select_clip(ClipCheckpoint& out, const std::optional<std::string>& wanted, const std::string& stripped,
                        const std::string& path) {
  const std::vector<std::string> found = clip_prefixes(out.state);
  std::string list;
  for (const std::string& p : found) list += (list.empty() ? "" : ", ") + prefix_name(p);
  if (wanted) {
    const auto match = std::find_if(found.begin(), found.end(),
                                    [&](const std::string& p) { return p == *wanted || stripped + p == *wanted; });
    require<FormatError>(match != found.end(), "'", path, "' holds no CLIP under the prefix ", prefix_name(*wanted),
                         found.empty() ? std::string(" (nor anywhere else)") : " (CLIPs found under: " + list + ")");
    out.prefix = *match;
  } else {
    if (found.size() != 1) {
      if (found.empty()) return;  // ClipModel::from_state_dict names what is missing
      throw FormatError(froster::detail::concat(
          "'", path, "' holds ", found.size(), " CLIP models, under the prefixes ", list,
          ": choose one (ClipLoadOptions::prefix, \"\" for the top level; the CLI's --prefix). FROSTER and "
          "Open-VCLIP save the fine-tuned student as 'model.' and the frozen teacher as 'raw_model.'"));
    }
    out.prefix = found.front();
  }
  if (!out.prefix.empty()) {
    StateDict clip = out.state.extract_prefix(out.prefix);
    for (const auto& e : out.state) out.ignored.push_back(e.name);
    out.state = std::move(clip);
    return;
  }
  // The top-level CLIP: the other CLIPs' tensors are left out; anything else is a tensor it does not have, which
  // loading reports.
  for (const std::string& other : found)
    if (!other.empty())
      for (const auto& e : out.state.extract_prefix(other)) out.ignored.push_back(other + e.name);
}

inline StateDict load_state_dict_file(const std::filesystem::path& path, std::string& format, std::string& stripped) {
  if (starts_with_bytes(path, "PK\x03\x04")) {
    format = "torch";
    TorchCheckpoint ckpt = read_torch_checkpoint(path.string());
    stripped = ckpt.stripped_prefix;
    return std::move(ckpt.state_dict);
  }
  format = "safetensors";
  return load_safetensors(path.string()).tensors;
}

}  // namespace clip_detail

/// Loads a CLIP checkpoint from a file or a Hugging Face model directory (see the file comment).
inline ClipCheckpoint load_clip_checkpoint(const std::string& path, const ClipLoadOptions& options = {}) {
  namespace fs = std::filesystem;
  ClipCheckpoint out;
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    fs::path weights;
    for (const char* name : {"model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"})
      if (fs::exists(p / name, ec)) {
        weights = p / name;
        break;
      }
    require<IoError>(!weights.empty(), "'", path,
                     "' is a directory without model.safetensors or pytorch_model.bin (a Hugging Face CLIP "
                     "directory has one of them and config.json)");
    std::string format;
    std::string stripped;
    out.state = clip_detail::load_state_dict_file(weights, format, stripped);
    out.format = "hugging face directory (" + weights.filename().string() + ", " + format + ")";
    if (fs::exists(p / "config.json", ec)) clip_detail::read_hf_clip_config(p / "config.json", out);
    clip_detail::select_clip(out, options.prefix, stripped, weights.string());
    return out;
  }
  require<IoError>(fs::exists(p, ec), "'", path, "' does not exist");
  std::string stripped;
  out.state = clip_detail::load_state_dict_file(p, out.format, stripped);
  clip_detail::select_clip(out, options.prefix, stripped, path);
  return out;
}

}  // namespace froster::io
