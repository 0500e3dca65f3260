// imdn-upscale: the native command line.
//
//   imdn-upscale --model IMDN_x4.pth input.png output.png [--scale-to WxH] [--threads N]
//   imdn-upscale convert IMDN_x4.pth IMDN_x4.imdn [--f16]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "image.h"
#include "loader.h"
#include "model.h"
#include "upscaler.h"

namespace {

const char* kUsage =
    "usage: imdn-upscale --model FILE INPUT OUTPUT.png [--scale-to WxH] [--threads N] [--quiet]\n"
    "       imdn-upscale convert MODEL OUTPUT.imdn [--f16]\n"
    "  INPUT     PNG, JPEG, BMP, TGA, GIF, PSD, HDR or PNM; grey, alpha and 16-bit kept (output is 8-bit PNG)\n"
    "  --model   the authors' checkpoint (.pth, either PyTorch format) or an .imdn file\n"
    "            (IMDN x2/x3/x4, IMDN_AS, IMDN_RTC, IMDN_RTE)\n"
    "  convert   writes MODEL as an .imdn file; --f16 stores float16 values (half the size)\n"
    "  --scale-to WxH  IMDN_AS only: output size (bicubic resize, then restoration); default: input size\n"
    "  --threads N     worker threads (default: one per core)\n"
    "  --max-pixels N  largest input image decoded, in pixels (default: 67108864 = 8192 x 8192)\n"
    "  --raw FILE      also write the network's raw RGB output as float32 (height x width x 3, no header)\n";

bool parse_size(const std::string& s, size_t* w, size_t* h) {
  const size_t x = s.find_first_of("xX");
  if (x == std::string::npos) return false;
  char* end = nullptr;
  const unsigned long long a = std::strtoull(s.c_str(), &end, 10);
  if (end != s.c_str() + x) return false;
  const unsigned long long b = std::strtoull(s.c_str() + x + 1, &end, 10);
  if (*end != '\0' || a == 0 || b == 0) return false;
  *w = size_t(a);
  *h = size_t(b);
  return true;
}

}  // namespace

static int convert(int argc, char** argv) {
  bool f16 = false;
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--f16") == 0)
      f16 = true;
    else
      files.push_back(argv[i]);
  }
  if (files.size() != 2) {
    std::fprintf(stderr, "imdn-upscale: convert needs MODEL and OUTPUT.imdn\n%s", kUsage);
    return 2;
  }
  try {
    const std::vector<uint8_t> out = imdn::load_model_file(files[0]).serialize(f16);
    const std::string tmp = files[1] + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary);
      f.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size()));
      if (!f) throw imdn::Error("cannot write " + files[1]);
    }
    if (std::rename(tmp.c_str(), files[1].c_str()) != 0) throw imdn::Error("cannot write " + files[1]);
    std::printf("%s: %zu bytes%s\n", files[1].c_str(), out.size(), f16 ? " (float16)" : "");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imdn-upscale: %s\n", e.what());
    return 1;
  }
}

// Upscales input to output (and the raw floats to raw_path, if any); the process's exit status.
int upscale(const std::string& model_path, const std::string& input, const std::string& output,
            const std::string& raw_path, const imdn::UpscaleOptions& options, size_t threads, size_t max_pixels,
            bool quiet) {
  try {
    const imdn::Model model = imdn::load_model_file(model_path);
    imdn::Upscaler up(model, threads);
    const imdn::Image in = imdn::load_image(input, max_pixels);
    const auto t0 = std::chrono::steady_clock::now();
    const imdn::Image out = up.upscale(in, options);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    imdn::save_png(output, out);
    if (!raw_path.empty()) {
      if (in.channels != 3) throw imdn::Error("--raw needs an RGB input");
      size_t oh = 0, ow = 0;
      const std::vector<float> raw = up.run_rgb(in.data.data(), in.height, in.width, &oh, &ow);
      std::FILE* f = std::fopen(raw_path.c_str(), "wb");
      if (!f || std::fwrite(raw.data(), sizeof(float), raw.size(), f) != raw.size() || std::fclose(f) != 0) {
        throw imdn::Error("cannot write " + raw_path);
      }
    }
    if (!quiet) {
      std::printf("%s: %zux%zu -> %zux%zu with %s in %.0f ms\n", output.c_str(), in.width, in.height, out.width,
                  out.height, imdn::arch_name(model.info().arch), ms);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imdn-upscale: %s\n", e.what());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "convert") == 0) return convert(argc, argv);
  std::string model_path, input, output, raw_path;
  imdn::UpscaleOptions options;
  size_t threads = 0;
  size_t max_pixels = imdn::kDefaultMaxInputPixels;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "imdn-upscale: %s needs a value\n%s", flag, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") {
      model_path = value("--model");
    } else if (a == "--scale-to") {
      if (!parse_size(value("--scale-to"), &options.target_width, &options.target_height)) {
        std::fprintf(stderr, "imdn-upscale: --scale-to takes WIDTHxHEIGHT, e.g. 1024x768\n");
        return 2;
      }
    } else if (a == "--max-pixels") {
      const std::string v = value("--max-pixels");
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (*end != '\0' || n == 0) {
        std::fprintf(stderr, "imdn-upscale: --max-pixels takes a positive integer, got %s\n", v.c_str());
        return 2;
      }
      max_pixels = size_t(n);
    } else if (a == "--threads") {
      const std::string v = value("--threads");
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (*end != '\0' || n < 0 || n > 256) {
        std::fprintf(stderr, "imdn-upscale: --threads takes a number from 0 (all cores) to 256\n");
        return 2;
      }
      threads = size_t(n);
    } else if (a == "--raw") {
      raw_path = value("--raw");
    } else if (a == "--quiet") {
      quiet = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "imdn-upscale: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    } else if (input.empty()) {
      input = a;
    } else if (output.empty()) {
      output = a;
    } else {
      std::fprintf(stderr, "imdn-upscale: too many arguments\n%s", kUsage);
      return 2;
    }
  }
  if (model_path.empty() || input.empty() || output.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return upscale(model_path, input, output, raw_path, options, threads, max_pixels, quiet);
}
