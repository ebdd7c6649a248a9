// The `froster` command-line tool end to end: a tiny CLIP written to safetensors by the library, then every
// command run as a user would, its outputs compared with the library's own API on the same inputs, and its
// failures (usage, missing or corrupt files) checked for exit status and message; --prefix on a training
// checkpoint holding a student and a teacher.

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <froster/cpu.hpp>
#include <froster/froster.hpp>
#include <froster/io/clip_loader.hpp>
#include <froster/io/image.hpp>
#include <froster/io/resize.hpp>
#include <froster/io/safetensors.hpp>
#include <froster/io/tokenizer.hpp>

#include "support/fixtures.hpp"
#include "support/scratch_dir.hpp"
#include "support/tolerance.hpp"

namespace {

namespace fs = std::filesystem;
using froster::ConstView;
using froster::index_t;
using froster::Tensor;

struct Run {
  int status = -1;
  std::string out, err;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// This process's scratch directory, holding the tiny model and the CLI's outputs; removed at exit.
const fs::path& scratch() {
  static const froster::test::ScratchDir dir("froster_cli_test");
  return dir.path;
}

Run froster_cli(const std::vector<std::string>& args) {
  std::string command = quoted(FROSTER_CLI_PATH);
  for (const std::string& a : args) {  // piece by piece: GCC 12 misreports " " + string as -Wrestrict (bug 105329)
    command += ' ';
    command += quoted(a);
  }
  const fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
  command += " >";
  command += quoted(out.string());
  command += " 2>";
  command += quoted(err.string());
  const int raw = std::system(command.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

/// A tiny CLIP (real vocabulary size, so the real tokenizer's ids fit) saved as OpenAI-named safetensors.
froster::io::ClipConfig tiny_config() {
  froster::io::ClipConfig c;
  c.vision = {.image_size = 32, .patch_size = 16, .width = 64, .layers = 1, .heads = 0, .output_dim = 16};
  c.text = {.context_length = 77, .vocab_size = 49408, .width = 64, .layers = 1, .heads = 0, .output_dim = 16};
  c.embed_dim = 16;
  return c;
}

const std::string& tiny_weights() {
  static const std::string path = [] {
    froster::CpuBackend backend;
    froster::ClipModel<froster::CpuBackend> model(backend, tiny_config(), 5);
    const std::string p = (scratch() / "tiny_clip.safetensors").string();
    froster::io::save_safetensors(p, model.state_dict());
    return p;
  }();
  return path;
}

std::string image(const std::string& name) { return froster::test::fixture_path(name); }

std::string vocab_path() { return std::string(FROSTER_SHARED_DATA_DIR) + "/bpe_simple_vocab_16e6.txt.gz"; }

/// Reads a float32 C-order .npy written by the CLI: its shape and values.
std::pair<std::vector<index_t>, std::vector<float>> read_npy(const fs::path& p) {
  const std::string bytes = read_file(p);
  REQUIRE(bytes.size() >= 10);
  REQUIRE(bytes.substr(0, 6) == "\x93NUMPY");
  const std::size_t header_len = std::size_t(std::uint8_t(bytes[8])) | std::size_t(std::uint8_t(bytes[9])) << 8;
  const std::string dict = bytes.substr(10, header_len);
  REQUIRE(dict.find("'<f4'") != std::string::npos);
  std::vector<index_t> shape;
  std::istringstream s(dict.substr(dict.find('(') + 1));
  for (index_t v; s >> v;) {
    shape.push_back(v);
    if (s.peek() == ',') s.ignore();
  }
  std::size_t n = 1;
  for (index_t v : shape) n *= std::size_t(v);
  REQUIRE(bytes.size() == 10 + header_len + n * sizeof(float));
  std::vector<float> values(n);
  std::memcpy(values.data(), bytes.data() + 10 + header_len, n * sizeof(float));
  return {shape, values};
}

}  // namespace

TEST_CASE("froster --help and usage errors", "[cli]") {
  const Run help = froster_cli({"--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("usage: froster <command>") != std::string::npos);
  for (const char* command : {"tokenize", "embed-image", "embed-text", "zero-shot"})
    CHECK(help.out.find(command) != std::string::npos);

  const Run none = froster_cli({});
  CHECK(none.status == 2);
  CHECK(none.err.find("no command given") != std::string::npos);
  const Run unknown = froster_cli({"classify"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("unknown command 'classify'") != std::string::npos);
  const Run missing = froster_cli({"embed-image", "--out", "x.npy", "a.png"});
  CHECK(missing.status == 2);
  CHECK(missing.err.find("embed-image needs --weights") != std::string::npos);
  const Run bad_k = froster_cli({"zero-shot", "--top-k", "zero", "--weights", "w", "--labels", "l", "x.png"});
  CHECK(bad_k.status == 2);
}

TEST_CASE("froster embed-image writes the library's image features", "[cli]") {
  const fs::path out = scratch() / "images.npy";
  const std::vector<std::string> images = {image("image_src_rgb_37x23.png"), image("image_src_jpeg420_37x23.jpg")};
  const Run r = froster_cli({"embed-image", "--weights", tiny_weights(), "--out", out.string(), images[0], images[1]});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto [shape, values] = read_npy(out);
  REQUIRE(shape == std::vector<index_t>{2, 16});

  // The same through the API.
  froster::CpuBackend backend;
  auto model = froster::ClipModel<froster::CpuBackend>::from_state_dict(
      backend, froster::io::load_clip_checkpoint(tiny_weights()).state);
  Tensor<float> batch = Tensor<float>::host({2, 3, 32, 32});
  for (index_t i = 0; i < 2; ++i)
    froster::io::ClipPreprocess{.resolution = 32}(froster::io::decode_source(images[std::size_t(i)]), batch.view(), i);
  const ConstView<float> expected = model->encode_image(batch.cview());
  FROSTER_REQUIRE_CLOSE(ConstView<float>(values.data(), {2, 16}), expected, froster::test::tol::identical);
}

TEST_CASE("froster reports unreadable inputs with exit status 1", "[cli]") {
  const Run absent = froster_cli({"embed-image", "--weights", (scratch() / "absent.safetensors").string(), "--out",
                                  (scratch() / "x.npy").string(), image("image_src_rgb_37x23.png")});
  CHECK(absent.status == 1);
  CHECK(absent.err.find("froster: error:") != std::string::npos);
  CHECK(absent.err.find("absent.safetensors") != std::string::npos);

  const fs::path corrupt = scratch() / "corrupt.safetensors";
  std::ofstream(corrupt, std::ios::binary) << "not a checkpoint at all";
  const Run bad = froster_cli({"embed-image", "--weights", corrupt.string(), "--out", (scratch() / "x.npy").string(),
                               image("image_src_rgb_37x23.png")});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("froster: error:") != std::string::npos);

  const Run bad_image = froster_cli({"embed-image", "--weights", tiny_weights(), "--out",
                                     (scratch() / "x.npy").string(), corrupt.string()});
  CHECK(bad_image.status == 1);
  CHECK(!fs::exists(scratch() / "x.npy"));
}

TEST_CASE("froster tokenize, embed-text and zero-shot with the real CLIP vocabulary", "[cli]") {
  if (!fs::exists(vocab_path())) {
    WARN("skipped: the CLIP vocabulary is not at " << vocab_path() << " (../shared/data beside the checkout)");
    return;
  }
  froster::io::ClipTokenizer tokenizer = froster::io::ClipTokenizer::load(vocab_path());

  const Run tok = froster_cli({"tokenize", "--vocab", vocab_path(), "--context-length", "8", "a photo of a cat."});
  INFO(tok.err);
  REQUIRE(tok.status == 0);
  const Tensor<std::int64_t> ids = tokenizer.tokenize<std::int64_t>(std::string("a photo of a cat."), 8);
  std::string expected = "[";
  for (index_t j = 0; j < 8; ++j) expected += (j ? "," : "") + std::to_string(ids.data()[j]);
  CHECK(tok.out == expected + "]\n");

  const fs::path out = scratch() / "texts.npy";
  const Run emb = froster_cli({"embed-text", "--weights", tiny_weights(), "--vocab", vocab_path(), "--out",
                               out.string(), "a dog", "a cat playing piano"});
  INFO(emb.err);
  REQUIRE(emb.status == 0);
  const auto [shape, values] = read_npy(out);
  REQUIRE(shape == std::vector<index_t>{2, 16});
  froster::CpuBackend backend;
  auto model = froster::ClipModel<froster::CpuBackend>::from_state_dict(
      backend, froster::io::load_clip_checkpoint(tiny_weights()).state);
  const Tensor<std::int64_t> text_ids = tokenizer.tokenize<std::int64_t>(std::vector<std::string>{"a dog", "a cat playing piano"}, 77);
  FROSTER_REQUIRE_CLOSE(ConstView<float>(values.data(), {2, 16}), model->encode_text(text_ids.cview()),
                        froster::test::tol::identical);

  // Zero-shot over an image and a directory of two frames: JSON with the top 2 of 3 labels, probabilities sorted.
  const fs::path labels = scratch() / "labels.txt", frames = scratch() / "frames";
  std::ofstream(labels) << "dog\ncat\npiano\n";
  fs::create_directories(frames);
  fs::copy_file(image("image_src_rgb_37x23.png"), frames / "0001.png", fs::copy_options::overwrite_existing);
  fs::copy_file(image("image_src_jpeg420_37x23.jpg"), frames / "0002.jpg", fs::copy_options::overwrite_existing);
  const Run zs = froster_cli({"zero-shot", "--weights", tiny_weights(), "--vocab", vocab_path(), "--labels",
                              labels.string(), "--top-k", "2", "--json", image("image_src_rgb_37x23.png"),
                              frames.string()});
  INFO(zs.err);
  REQUIRE(zs.status == 0);
  std::istringstream lines(zs.out);
  std::vector<std::string> objects;
  for (std::string line; std::getline(lines, line);) objects.push_back(line);
  REQUIRE(objects.size() == 2);
  CHECK(objects[1].find("\"frames\":2") != std::string::npos);
  for (const std::string& o : objects) {
    std::vector<double> p;
    for (std::size_t at = o.find("\"probability\":"); at != std::string::npos; at = o.find("\"probability\":", at + 1))
      p.push_back(std::stod(o.substr(at + 14)));
    REQUIRE(p.size() == 2);
    CHECK(p[0] >= p[1]);
    CHECK(p[0] + p[1] <= 1.0 + 1e-6);
  }

  // The frame directory's probabilities against the API's, plain and as the video student (each frame attending
  // to its neighbours: --temporal-expand-view), which must change them.
  const std::vector<std::string> label_names = {"dog", "cat", "piano"};
  const Tensor<std::int64_t> prompt_ids = tokenizer.tokenize<std::int64_t>(
      std::vector<std::string>{"a photo of a dog.", "a photo of a cat.", "a photo of a piano."}, 77);
  Tensor<float> text_features = Tensor<float>::host({3, 16});
  const ConstView<float> encoded = model->encode_text(prompt_ids.cview());
  std::copy(encoded.data(), encoded.data() + encoded.numel(), text_features.data());
  froster::ZeroShotClassifier<froster::CpuBackend> classifier(backend, text_features.cview(), 1);
  Tensor<float> clip = Tensor<float>::host({2, 3, 32, 32});
  for (const auto& [name, i] : {std::pair{"0001.png", 0}, std::pair{"0002.jpg", 1}})
    froster::io::ClipPreprocess{.resolution = 32}(froster::io::decode_source((frames / name).string()), clip.view(), i);
  std::vector<float> previous;
  for (const bool expand : {false, true}) {
    INFO("temporal expand view " << expand);
    std::vector<std::string> args = {"zero-shot", "--weights", tiny_weights(), "--vocab", vocab_path(), "--labels",
                                     labels.string(), "--top-k", "3", "--json", frames.string()};
    if (expand) args.push_back("--temporal-expand-view");
    const Run run = froster_cli(args);
    INFO(run.err);
    REQUIRE(run.status == 0);
    model->visual().set_temporal_expand_view(expand);
    const ConstView<float> logits = classifier.logits(model->encode_image(clip.cview(), expand ? 2 : 1),
                                                      model->logit_scale(), 2);
    const ConstView<float> p = classifier.probabilities(logits);
    std::vector<float> got(3, -1.0f);
    for (std::size_t at = run.out.find("\"label\":\""); at != std::string::npos;
         at = run.out.find("\"label\":\"", at + 1)) {
      const std::string label = run.out.substr(at + 9, run.out.find('"', at + 9) - (at + 9));
      const std::size_t k = std::size_t(std::find(label_names.begin(), label_names.end(), label) - label_names.begin());
      REQUIRE(k < 3);
      got[k] = std::stof(run.out.substr(run.out.find("\"probability\":", at) + 14));
    }
    for (std::size_t k = 0; k < 3; ++k) CHECK(got[k] == Approx(p(0, index_t(k))).margin(2e-6));
    if (expand) CHECK(std::abs(got[0] - previous[0]) + std::abs(got[1] - previous[1]) > 1e-4);
    previous = got;
  }
}

TEST_CASE("froster --prefix picks one CLIP of a training checkpoint", "[cli]") {
  // FROSTER's layout: student under model., frozen teacher under raw_model., a projector at the top level.
  froster::CpuBackend backend;
  froster::ClipModel<froster::CpuBackend> student(backend, tiny_config(), 5), teacher(backend, tiny_config(), 6);
  froster::io::StateDict file;
  file.merge(student.state_dict(), "model.");
  file.merge(teacher.state_dict(), "raw_model.");
  file.insert("projector_v.0.weight", Tensor<float>::host({16, 16}));
  const std::string weights = (scratch() / "training_checkpoint.safetensors").string();
  froster::io::save_safetensors(weights, file);
  const fs::path out = scratch() / "teacher.npy";
  const std::string img = image("image_src_rgb_37x23.png");

  const Run ambiguous = froster_cli({"embed-image", "--weights", weights, "--out", out.string(), img});
  CHECK(ambiguous.status == 1);
  CHECK_THAT(ambiguous.err, Catch::Contains("2 CLIP models") && Catch::Contains("--prefix"));

  const Run r =
      froster_cli({"embed-image", "--weights", weights, "--prefix", "raw_model.", "--out", out.string(), img});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("loaded the CLIP under 'raw_model.'; left out"));
  const auto [shape, values] = read_npy(out);
  REQUIRE(shape == std::vector<index_t>{1, 16});
  Tensor<float> batch = Tensor<float>::host({1, 3, 32, 32});
  froster::io::ClipPreprocess{.resolution = 32}(froster::io::decode_source(img), batch.view(), 0);
  FROSTER_REQUIRE_CLOSE(ConstView<float>(values.data(), {1, 16}), teacher.encode_image(batch.cview()),
                        froster::test::tol::identical);
}
