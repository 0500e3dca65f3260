// make_corpus DIR: the fuzzers' seed corpora, written from code (nothing binary is committed):
// DIR/image (small images in every format stb reads, and the decoder reproducers), DIR/model
// (.imdn files of every architecture, float32 and float16), DIR/checkpoint (torch.save-style
// checkpoints of every architecture, both formats), DIR/network (hyper-parameter seeds).
#include <stb_image_write.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "checkpoint_writer.h"
#include "image.h"
#include "support.h"

namespace {

std::string root;

void put(const std::string& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  mkdir((root + "/" + dir).c_str(), 0755);
  std::ofstream f(root + "/" + dir + "/" + name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void sink(void* ctx, void* data, int n) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  root = argv[1];
  mkdir(root.c_str(), 0755);
  std::mt19937 rng(1);
  for (int c = 1; c <= 4; ++c) {
    const int w = 5 + c, h = 3 + c;
    std::vector<uint8_t> px(size_t(w * h * c));
    for (auto& v : px) v = uint8_t(rng());
    std::vector<uint8_t> out;
    const std::string n = std::to_string(c);
    stbi_write_png_to_func(sink, &out, w, h, c, px.data(), w * c), put("image", "c" + n + ".png", out), out.clear();
    stbi_write_bmp_to_func(sink, &out, w, h, c, px.data()), put("image", "c" + n + ".bmp", out), out.clear();
    stbi_write_tga_to_func(sink, &out, w, h, c, px.data()), put("image", "c" + n + ".tga", out), out.clear();
    stbi_write_jpg_to_func(sink, &out, w, h, c, px.data(), 80), put("image", "c" + n + ".jpg", out), out.clear();
    {  // Radiance HDR, flat (unencoded) RGBE pixels
      const std::string head =
          "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y " + std::to_string(h) + " +X " + std::to_string(w) + "\n";
      out.assign(head.begin(), head.end());
      for (int i = 0; i < w * h * 4; ++i) out.push_back(uint8_t(rng() % 200 + 1));
      put("image", "c" + n + ".hdr", out), out.clear();
    }
    if (c == 1 || c == 3) {  // binary PNM
      std::string head =
          std::string(c == 1 ? "P5" : "P6") + "\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
      out.assign(head.begin(), head.end());
      out.insert(out.end(), px.begin(), px.end());
      put("image", "c" + n + ".pnm", out);
    }
  }
  for (auto arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_AS, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE}) {
    imdn::ModelInfo info = testing_support::small_info(arch);
    info.blocks = 1;  // small files: the fuzzers mutate them faster
    const imdn::Model m = testing_support::random_model(info, 5);
    const std::string a = imdn::arch_name(arch);
    put("model", a + ".imdn", m.serialize());
    put("model", a + "-f16.imdn", m.serialize(true));
    for (bool zip : {false, true}) {
      for (bool half : {false, true}) {
        checkpoint_writer::Options o;
        o.zip = zip;
        o.half = half;
        o.prefix = half ? "module." : "";
        const auto ck = checkpoint_writer::checkpoint(m, o);
        put("checkpoint", a + (zip ? "-zip" : "-legacy") + (half ? "-f16" : "") + ".pth", ck);
        if (!half) put("model", a + (zip ? "-zip" : "-legacy") + ".pth", ck);
      }
    }
  }
  for (int i = 0; i < 16; ++i) {
    std::vector<uint8_t> s(12);
    for (auto& v : s) v = uint8_t(rng());
    put("network", "seed" + std::to_string(i), s);
  }
  return 0;
}
