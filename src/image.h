// Images in memory and on disk. Decoding uses stb_image (PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PNM),
// encoding writes PNG with stb_image_write. Hostile input is refused with imdn::Error before any
// large allocation: the header is read first, an image of more than `max_pixels` is refused, and
// so is a file of a raw format (BMP, TGA, PNM, uncompressed PSD; and HDR, whose runs are bounded)
// that is shorter than its dimensions need (stb would fill the missing pixels with zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace imdn {

struct Image {
  size_t width = 0, height = 0;
  int channels = 0;         // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int bit_depth = 8;        // of the source: 8 or 16
  std::vector<float> data;  // height*width*channels, interleaved, values in [0,1]

  float at(size_t x, size_t y, int c) const { return data[(y * width + x) * channels + c]; }
  bool has_alpha() const { return channels == 2 || channels == 4; }
};

// Largest image accepted, in pixels (input and output alike).
constexpr size_t kMaxImagePixels = size_t(1) << 28;
// Largest image file decoded unless the caller says otherwise: 64 Mi pixels (8192 x 8192, a
// 67-megapixel photo), more than any camera's JPEG of today short of medium format, far less than
// a decode bomb claims. Each pixel costs 16 bytes as floats.
constexpr size_t kDefaultMaxInputPixels = size_t(1) << 26;

Image decode_image(const uint8_t* bytes, size_t size, size_t max_pixels = kDefaultMaxInputPixels);
Image load_image(const std::string& path, size_t max_pixels = kDefaultMaxInputPixels);

// The fewest bytes a file of this format can hold w x h pixels in, from its header; 0 when the
// format compresses too well to say (PNG, JPEG, GIF).
size_t min_image_bytes(const uint8_t* bytes, size_t size, size_t w, size_t h, int channels);

// 8-bit PNG with the image's channels; values are clamped to [0,1], scaled by 255 and rounded
// half to even (as the reference outputs are).
std::vector<uint8_t> encode_png(const Image& image);
void save_png(const std::string& path, const Image& image);

uint8_t to_u8(float v);

// Reads a whole file; throws imdn::Error naming it.
std::vector<uint8_t> read_file(const std::string& path, size_t max_size);

}  // namespace imdn
