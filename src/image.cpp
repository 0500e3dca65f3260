#include "image.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "bytes.h"
#include "model.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS (1 << 20)
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

namespace imdn {

uint8_t to_u8(float v) {
  if (!(v > 0.f)) return 0;  // also NaN
  if (v >= 1.f) return 255;
  return uint8_t(std::nearbyint(v * 255.f));  // round half to even
}

std::vector<uint8_t> read_file(const std::string& path, size_t max_size) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  if (n < 0) throw Error("cannot read " + path);
  if (size_t(n) > max_size) throw Error(path + " is too large (" + std::to_string(n) + " bytes)");
  f.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  f.read(reinterpret_cast<char*>(bytes.data()), n);
  if (!f) throw Error("cannot read " + path);
  return bytes;
}

namespace {

uint32_t le(const uint8_t* p, int k) { return uint32_t(read_le(p, k)); }
uint32_t be(const uint8_t* p, int k) { return uint32_t(read_be(p, k)); }
size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace

size_t min_image_bytes(const uint8_t* b, size_t n, size_t w, size_t h, int channels) {
  const size_t px = w * h;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') {  // BMP: rows of bpp bits padded to 4 bytes, unless RLE
    if (n < 34) return 0;
    const uint32_t bpp = le(b + 28, 2), compression = le(b + 30, 4);
    if (compression == 1 || compression == 2) return 0;  // RLE, which stb refuses; anything else it reads raw
    return ceil_div(w * std::max<uint32_t>(bpp, 1), 32) * 4 * h;
  }
  if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return px * size_t(channels);  // binary PNM
  if (n >= 26 && std::memcmp(b, "8BPS", 4) == 0) {  // PSD: past three length-prefixed sections, the compression
    size_t at = 26;
    for (int section = 0; section < 3; ++section) {
      if (n - at < 4) return 0;
      const size_t len = be(b + at, 4);
      if (len > n - at - 4) return 0;
      at += 4 + len;
    }
    if (n - at < 2) return 0;
    const uint32_t compression = be(b + at, 2);
    const size_t planes = be(b + 12, 2);
    if (compression == 0) return px * std::max<size_t>(planes, 1);
    if (compression == 1)
      return h * planes * 2 + h * planes * 2 * ceil_div(w, 128);  // byte counts, then runs of <= 128
    return 0;
  }
  if (n >= 10 && std::memcmp(b, "#?RADIANCE", 10) == 0) return h * (4 + 8 * ceil_div(w, 127));  // RLE scanlines
  if (n >= 10 && std::memcmp(b, "#?RGBE", 6) == 0) return h * (4 + 8 * ceil_div(w, 127));
  if (n >= 8 && (std::memcmp(b, "\x89PNG", 4) == 0 || (b[0] == 0xFF && b[1] == 0xD8) || std::memcmp(b, "GIF8", 4) == 0))
    return 0;
  if (n >= 18) {  // TGA (no signature): type 1-3 raw, 9-11 RLE packets of <= 128 pixels
    const uint32_t type = b[2], bytes_pp = ceil_div(std::max<uint32_t>(b[16], 1), 8);
    if (type >= 1 && type <= 3) return px * bytes_pp;
    if (type >= 9 && type <= 11) return ceil_div(px, 128) * (1 + bytes_pp);
  }
  return 0;
}

namespace {

// A PNG without its empty IDAT chunks, or nothing when it has none: stb_image (v2.30) copies an
// empty chunk from a null buffer (undefined behaviour that UBSan reports; the fuzzers found it).
std::vector<uint8_t> without_empty_idat(const uint8_t* b, size_t n) {
  if (n < 8 || std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return {};
  bool empty = false;
  for (size_t at = 8; n - at >= 12;) {
    const size_t len = be(b + at, 4);
    if (len == 0 && std::memcmp(b + at + 4, "IDAT", 4) == 0) empty = true;
    if (len > n - at - 12) break;
    at += 12 + len;
  }
  if (!empty) return {};
  std::vector<uint8_t> out(b, b + 8);
  size_t at = 8;
  for (; n - at >= 12;) {
    const size_t len = be(b + at, 4);
    if (len > n - at - 12) break;
    if (!(len == 0 && std::memcmp(b + at + 4, "IDAT", 4) == 0)) out.insert(out.end(), b + at, b + at + 12 + len);
    at += 12 + len;
  }
  out.insert(out.end(), b + at, b + n);  // whatever is left, as stb would have seen it
  return out;
}

// stb_image reserves a PNG chunk's declared length before it reads the chunk: a 331-byte file
// whose second IDAT claims 889 MB made it allocate 1 GiB (fuzz_image found it). A chunk that claims
// more bytes than the file has left is refused here, before stb sees it (stb would fail on it
// anyway, once the bytes run out). Chunks after IEND are none of the image's business.
void check_png_chunks(const uint8_t* b, size_t n) {
  if (n < 8 || std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return;
  for (size_t at = 8; n - at >= 8;) {
    const size_t len = be(b + at, 4);
    if (len > n - at - 8 || n - at - 8 - len < 4) {
      throw Error("cannot decode image: its PNG chunk " + std::string(reinterpret_cast<const char*>(b + at + 4), 4) +
                  " claims " + std::to_string(len) + " bytes, but the file has " + std::to_string(n - at - 8) +
                  " left");
    }
    if (std::memcmp(b + at + 4, "IEND", 4) == 0) return;
    at += 12 + len;
  }
}

}  // namespace

Image decode_image(const uint8_t* bytes, size_t size, size_t max_pixels) {
  check_png_chunks(bytes, size);
  const std::vector<uint8_t> cleaned = without_empty_idat(bytes, size);
  if (!cleaned.empty()) {
    bytes = cleaned.data();
    size = cleaned.size();
  }
  if (size == 0) throw Error("cannot decode image: the data is empty");
  if (size > size_t(INT32_MAX)) throw Error("cannot decode image: over 2 GB of data");
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, int(size), &w, &h, &comp)) {
    throw Error(std::string("cannot decode image: ") + stbi_failure_reason());
  }
  if (w <= 0 || h <= 0) throw Error("cannot decode image: it has no pixels");
  const size_t pixels = size_t(w) * size_t(h);
  const std::string dims = std::to_string(w) + "x" + std::to_string(h);
  if (pixels > std::min(max_pixels, kMaxImagePixels)) {
    const size_t limit = std::min(max_pixels, kMaxImagePixels);
    throw Error("image of " + dims + " pixels (" + std::to_string(pixels / 1000000) +
                " megapixels) is over the limit of " + std::to_string(limit) +
                " pixels; raise maxInputPixels (CLI: --max-pixels) if it is real");
  }
  const size_t need = min_image_bytes(bytes, size, size_t(w), size_t(h), comp);
  if (need > size) {
    throw Error("cannot decode image: its header says " + dims + " pixels, which need at least " +
                std::to_string(need) + " bytes, but the file has " + std::to_string(size) +
                " (truncated, or a decode bomb)");
  }
  Image img;
  const bool sixteen = stbi_is_16_bit_from_memory(bytes, int(size));
  int got = 0;
  if (sixteen) {
    std::unique_ptr<stbi_us, void (*)(void*)> px(stbi_load_16_from_memory(bytes, int(size), &w, &h, &got, 0),
                                                 stbi_image_free);
    if (!px) throw Error(std::string("cannot decode image: ") + stbi_failure_reason());
    img.width = size_t(w);
    img.height = size_t(h);
    img.channels = got;
    img.bit_depth = 16;
    img.data.resize(img.width * img.height * size_t(got));
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = px.get()[i] / 65535.f;
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(bytes, int(size), &w, &h, &got, 0),
                                                 stbi_image_free);
    if (!px) throw Error(std::string("cannot decode image: ") + stbi_failure_reason());
    img.width = size_t(w);
    img.height = size_t(h);
    img.channels = got;
    img.data.resize(img.width * img.height * size_t(got));
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = px.get()[i] / 255.f;
  }
  if (img.channels < 1 || img.channels > 4) throw Error("cannot decode image: unsupported channel count");
  return img;
}

Image load_image(const std::string& path, size_t max_pixels) {
  const std::vector<uint8_t> bytes = read_file(path, size_t(1) << 31);
  try {
    return decode_image(bytes.data(), bytes.size(), max_pixels);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<uint8_t> encode_png(const Image& image) {
  if (image.width == 0 || image.height == 0 || image.channels < 1 || image.channels > 4 ||
      image.data.size() != image.width * image.height * size_t(image.channels)) {
    throw Error("cannot encode an empty or malformed image");
  }
  if (image.width > INT32_MAX / 4 || image.height > INT32_MAX) throw Error("image too large for PNG");
  std::vector<uint8_t> px(image.data.size());
  for (size_t i = 0; i < px.size(); ++i) px[i] = to_u8(image.data[i]);
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  if (!stbi_write_png_to_func(sink, &out, int(image.width), int(image.height), image.channels, px.data(),
                              int(image.width) * image.channels)) {
    throw Error("PNG encoding failed");
  }
  return out;
}

void save_png(const std::string& path, const Image& image) {
  const std::vector<uint8_t> png = encode_png(image);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error("cannot write " + path);
    f.write(reinterpret_cast<const char*>(png.data()), std::streamsize(png.size()));
    if (!f) throw Error("cannot write " + path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("cannot write " + path);
}

}  // namespace imdn
