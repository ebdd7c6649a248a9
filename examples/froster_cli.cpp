// froster: CLIP from the command line — tokenize text, embed images and text, zero-shot classify images and
// frame sets — from a safetensors file, a PyTorch checkpoint or a Hugging Face model directory, with no Python.
// Run `froster --help`.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <froster/cpu.hpp>
#include <froster/froster.hpp>
#include <froster/io/clip_loader.hpp>
#include <froster/io/image.hpp>
#include <froster/io/npy.hpp>
#include <froster/io/resize.hpp>
#include <froster/io/tokenizer.hpp>
#include <froster/version.hpp>

namespace {

namespace fs = std::filesystem;
using froster::ConstView;
using froster::CpuBackend;
using froster::index_t;
using froster::Tensor;

constexpr const char* usage = R"(usage: froster <command> [options] ARGS...

CLIP without Python: tokenize, embed images and text, zero-shot classify images and videos' frames.

commands:
  tokenize     --vocab V [--context-length N] TEXT...
               print one JSON array of token ids per TEXT (start and end tokens, zero padding)
  embed-image  --weights W --out OUT.npy IMAGE...
               write float32 [n, embed_dim] image features (unnormalised, as CLIP's encode_image)
  embed-text   --weights W [--vocab V] --out OUT.npy TEXT...
               write float32 [n, embed_dim] text features (unnormalised, as CLIP's encode_text)
  zero-shot    --weights W [--vocab V] --labels LABELS.txt [--templates T.txt] [--top-k K] [--json]
               [--temporal-expand-view] IMAGE|FRAMES_DIR...
               print the top-k labels of each image, or of each directory of frames (logits averaged over
               the frames, taken in file-name order)

options:
  --weights W         a .safetensors file, a PyTorch checkpoint (torch.save), or a Hugging Face CLIP directory
  --prefix P          the CLIP to load from a checkpoint holding several: FROSTER / Open-VCLIP training
                      checkpoints keep the fine-tuned student under "model." and the frozen teacher under
                      "raw_model." (default: the only CLIP in the file)
  --vocab V           bpe_simple_vocab_16e6.txt.gz (OpenAI) or a directory with vocab.json and merges.txt
                      (Hugging Face); defaults to the --weights directory when it has them
  --context-length N  tokens per text (default 77, or the model's)
  --labels FILE       one class name per line
  --templates FILE    one prompt template per line, with {} for the class name (default: "a photo of a {}.")
  --top-k K           labels to print per input (default 5)
  --json              print one JSON object per input instead of text
  --temporal-expand-view
                      run the image encoder as FROSTER's / Open-VCLIP's video student: each frame also attends
                      to the previous and next frame of its FRAMES_DIR (zero keys at the clip's ends)
  --threads N         CPU threads (default: all cores)
  -h, --help          this help;  --version  the version

Images are PNG or JPEG, preprocessed as CLIP's reference (bicubic resize of the shorter side, center crop,
normalisation). Errors go to stderr with exit status 1; usage errors exit with 2.
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string command;
  std::map<std::string, std::string> values;
  bool json = false;
  bool temporal_expand_view = false;
  std::vector<std::string> args;

  bool has(const std::string& k) const { return values.count(k) != 0; }
  const std::string& need(const std::string& k) const {
    auto it = values.find(k);
    if (it == values.end()) throw UsageError(command + " needs --" + k);
    return it->second;
  }
  index_t number(const std::string& k, index_t fallback) const {
    if (!has(k)) return fallback;
    const std::string& v = values.at(k);
    std::size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || n <= 0) throw UsageError("--" + k + " needs a positive integer, got '" + v + "'");
    return index_t(n);
  }
};

Options parse(int argc, char** argv) {
  Options o;
  const std::vector<std::string> with_value = {"weights", "prefix", "vocab", "out", "context-length", "labels",
                                               "templates", "top-k", "threads"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      const std::string key = a.substr(2);
      if (key == "json") {
        o.json = true;
      } else if (key == "temporal-expand-view") {
        o.temporal_expand_view = true;
      } else if (std::find(with_value.begin(), with_value.end(), key) != with_value.end()) {
        if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
        o.values[key] = argv[++i];
      } else {
        throw UsageError("unknown option --" + key);
      }
    } else if (o.command.empty()) {
      o.command = a;
    } else {
      o.args.push_back(a);
    }
  }
  return o;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw froster::IoError("cannot open '" + path + "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

/// The tokenizer named by --vocab, or the weights directory's vocab.json + merges.txt.
froster::io::ClipTokenizer load_tokenizer(const Options& o) {
  std::string vocab = o.has("vocab") ? o.values.at("vocab") : std::string();
  if (vocab.empty() && o.has("weights") && fs::is_directory(o.values.at("weights")) &&
      fs::exists(fs::path(o.values.at("weights")) / "vocab.json"))
    vocab = o.values.at("weights");
  if (vocab.empty()) throw UsageError(o.command + " needs --vocab (or a --weights directory with vocab.json)");
  return froster::io::ClipTokenizer::load(vocab);
}

struct Model {
  CpuBackend backend;
  std::unique_ptr<froster::ClipModel<CpuBackend>> clip;

  /// Loads --weights; the encoders the command uses (`vision`, `text`) then read their weights packed once (they
  /// never change here), packed after the checkpoint's own copy is freed.
  Model(const Options& o, bool vision, bool text)
      : backend(froster::CpuBackendOptions{.threads = int(o.number("threads", 0))}) {
    {
      std::optional<std::string> prefix;
      if (o.has("prefix")) prefix = o.values.at("prefix");
      const froster::io::ClipCheckpoint ckpt = froster::io::load_clip_checkpoint(o.need("weights"), {.prefix = prefix});
      if (!ckpt.ignored.empty())  // the teacher, projectors, prompts of a training checkpoint: say what was skipped
        std::cerr << "froster: note: loaded the CLIP under "
                  << (ckpt.prefix.empty() ? std::string("the top level") : "'" + ckpt.prefix + "'") << "; left out "
                  << ckpt.ignored.size() << " other tensors (" << ckpt.ignored.front()
                  << (ckpt.ignored.size() > 1 ? ", ..." : "") << ")\n";
      clip = froster::ClipModel<CpuBackend>::from_state_dict(backend, ckpt.state, ckpt.vision_heads, ckpt.text_heads);
    }
    if (vision) clip->visual().pack_weights();
    if (text) clip->text().pack_weights();
  }

  /// Preprocessed images [n, 3, S, S].
  Tensor<float> images(const std::vector<std::string>& paths) const {
    const index_t s = clip->config().vision.image_size;
    Tensor<float> batch = Tensor<float>::host({index_t(paths.size()), 3, s, s});
    const froster::io::ClipPreprocess preprocess{.resolution = int(s)};
    // Decoded in the file's own mode and resized in it before RGB, as PIL does in the reference.
    for (std::size_t i = 0; i < paths.size(); ++i)
      preprocess(froster::io::decode_source(paths[i]), batch.view(), index_t(i));
    return batch;
  }

  Tensor<std::int64_t> tokens(froster::io::ClipTokenizer& tokenizer, const std::vector<std::string>& texts) const {
    return tokenizer.tokenize<std::int64_t>(texts, clip->config().text.context_length);
  }
};

Tensor<float> copy_of(ConstView<float> v) {
  Tensor<float> t = Tensor<float>::host(v.extents());
  for (index_t i = 0; i < v.rows(); ++i)
    for (index_t j = 0; j < v.cols(); ++j) t.data()[i * v.cols() + j] = v(i, j);
  return t;
}

int tokenize(const Options& o) {
  if (o.args.empty()) throw UsageError("tokenize needs at least one TEXT");
  froster::io::ClipTokenizer tokenizer = load_tokenizer(o);
  const Tensor<std::int64_t> ids = tokenizer.tokenize<std::int64_t>(o.args, o.number("context-length", 77));
  for (index_t i = 0; i < ids.extent(0); ++i) {
    std::cout << '[';
    for (index_t j = 0; j < ids.extent(1); ++j) std::cout << (j ? "," : "") << ids.data()[i * ids.extent(1) + j];
    std::cout << "]\n";
  }
  return 0;
}

int embed_image(const Options& o) {
  if (o.args.empty()) throw UsageError("embed-image needs at least one IMAGE");
  const std::string& out = o.need("out");
  Model m(o, true, false);
  const Tensor<float> batch = m.images(o.args);
  froster::io::save_npy(out, m.clip->encode_image(batch.cview()));
  std::cerr << "froster: wrote " << o.args.size() << " x " << m.clip->config().embed_dim << " image features to "
            << out << '\n';
  return 0;
}

int embed_text(const Options& o) {
  if (o.args.empty()) throw UsageError("embed-text needs at least one TEXT");
  const std::string& out = o.need("out");
  Model m(o, false, true);
  froster::io::ClipTokenizer tokenizer = load_tokenizer(o);
  const Tensor<std::int64_t> ids = m.tokens(tokenizer, o.args);
  froster::io::save_npy(out, m.clip->encode_text(ids.cview()));
  std::cerr << "froster: wrote " << o.args.size() << " x " << m.clip->config().embed_dim << " text features to "
            << out << '\n';
  return 0;
}

/// The images of one input: the file itself, or a directory's PNG/JPEG files in name order (one clip).
std::vector<std::string> frames_of(const std::string& input) {
  if (!fs::is_directory(input)) return {input};
  std::vector<std::string> frames;
  for (const auto& e : fs::directory_iterator(input)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) frames.push_back(e.path().string());
  }
  std::sort(frames.begin(), frames.end());
  if (frames.empty()) throw froster::IoError("'" + input + "' holds no .png, .jpg or .jpeg frames");
  return frames;
}

int zero_shot(const Options& o) {
  if (o.args.empty()) throw UsageError("zero-shot needs at least one IMAGE or FRAMES_DIR");
  const index_t requested_top_k = o.number("top-k", 5);  // usage errors before any file is read
  o.number("threads", 0);
  const std::vector<std::string> labels = read_lines(o.need("labels"));
  if (labels.empty()) throw froster::ValueError("'" + o.values.at("labels") + "' holds no labels");
  const std::vector<std::string> templates =
      o.has("templates") ? read_lines(o.values.at("templates")) : std::vector<std::string>{"a photo of a {}."};
  if (templates.empty()) throw froster::ValueError("'" + o.values.at("templates") + "' holds no templates");
  const index_t top_k = std::min<index_t>(requested_top_k, index_t(labels.size()));

  Model m(o, true, true);
  m.clip->visual().set_temporal_expand_view(o.temporal_expand_view);
  froster::io::ClipTokenizer tokenizer = load_tokenizer(o);
  std::vector<std::string> prompts;
  for (const std::string& label : labels)
    for (const std::string& t : templates) {
      const std::size_t at = t.find("{}");
      prompts.push_back(at == std::string::npos ? t + " " + label : t.substr(0, at) + label + t.substr(at + 2));
    }
  const Tensor<std::int64_t> ids = m.tokens(tokenizer, prompts);
  const Tensor<float> text_features = copy_of(m.clip->encode_text(ids.cview()));
  froster::ZeroShotClassifier<CpuBackend> classifier(m.backend, text_features.cview(), index_t(templates.size()));

  for (const std::string& input : o.args) {
    const std::vector<std::string> frames = frames_of(input);
    const Tensor<float> batch = m.images(frames);
    // Under the expand view the frames are one clip; otherwise frames count only for averaging the logits.
    const index_t clip_frames = o.temporal_expand_view ? index_t(frames.size()) : 1;
    const ConstView<float> features = m.clip->encode_image(batch.cview(), clip_frames);
    const ConstView<float> logits = classifier.logits(features, m.clip->logit_scale(), index_t(frames.size()));
    const ConstView<float> p = classifier.probabilities(logits);
    std::vector<index_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return p(0, a) > p(0, b); });
    if (o.json) {
      std::cout << "{\"input\":" << json_string(input) << ",\"frames\":" << frames.size() << ",\"top\":[";
      for (index_t k = 0; k < top_k; ++k)
        std::cout << (k ? "," : "") << "{\"label\":" << json_string(labels[std::size_t(order[std::size_t(k)])])
                  << ",\"probability\":" << p(0, order[std::size_t(k)]) << "}";
      std::cout << "]}\n";
    } else {
      std::cout << input << (frames.size() > 1 ? " (" + std::to_string(frames.size()) + " frames)" : "") << '\n';
      for (index_t k = 0; k < top_k; ++k) {
        char line[64];
        std::snprintf(line, sizeof line, "  %6.2f%%  ", 100.0 * double(p(0, order[std::size_t(k)])));
        std::cout << line << labels[std::size_t(order[std::size_t(k)])] << '\n';
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help" || a == "help") {
        std::cout << usage;
        return 0;
      }
      if (a == "--version") {
        std::cout << "froster " << FROSTER_VERSION_MAJOR << '.' << FROSTER_VERSION_MINOR << '.'
                  << FROSTER_VERSION_PATCH << '\n';
        return 0;
      }
    }
    const Options o = parse(argc, argv);
    if (o.command.empty()) throw UsageError("no command given");
    if (o.temporal_expand_view && o.command != "zero-shot")
      throw UsageError("--temporal-expand-view applies to zero-shot (its frame directories are the clips)");
    if (o.command == "tokenize") return tokenize(o);
    if (o.command == "embed-image") return embed_image(o);
    if (o.command == "embed-text") return embed_text(o);
    if (o.command == "zero-shot") return zero_shot(o);
    throw UsageError("unknown command '" + o.command + "'");
  } catch (const UsageError& e) {
    std::cerr << "froster: " << e.what() << "\n(run `froster --help` for usage)\n";
    return 2;
  } catch (const std::exception& e) {  // froster::Error and the standard library's (bad_alloc, filesystem)
    std::cerr << "froster: error: " << e.what() << '\n';
    return 1;
  }
}
