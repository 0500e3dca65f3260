#include "zip.h"

#include "bytes.h"
#include "model.h"

namespace imdn {

std::map<std::string, ZipEntry> read_zip(const uint8_t* b, size_t n) {
  auto bad = [](const std::string& why) { return Error("checkpoint (zip format) is corrupt: " + why); };
  if (n < 22) throw bad("too short for a zip archive");
  // The end of central directory record: in the last 64 KiB + 22 bytes.
  size_t eocd = n;
  for (size_t i = n - 22 + 1; i-- > 0 && n - i <= 65535 + 22;) {
    if (read_le(b + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == n) throw bad("no end of central directory (truncated?)");
  uint64_t count = read_le(b + eocd + 10, 2);
  uint64_t cd_size = read_le(b + eocd + 12, 4);
  uint64_t cd_at = read_le(b + eocd + 16, 4);
  if (cd_at == 0xFFFFFFFF || count == 0xFFFF) {  // zip64: the locator sits just before
    if (eocd < 20 || read_le(b + eocd - 20, 4) != 0x07064b50) throw bad("zip64 locator missing");
    const uint64_t z = read_le(b + eocd - 20 + 8, 8);
    if (z > n - 56 || read_le(b + z, 4) != 0x06064b50) throw bad("zip64 end of central directory missing");
    count = read_le(b + z + 32, 8);
    cd_size = read_le(b + z + 40, 8);
    cd_at = read_le(b + z + 48, 8);
  }
  if (cd_at > n || cd_size > n - cd_at) throw bad("central directory outside the file (truncated?)");
  if (count > cd_size / 46) throw bad("more entries than the central directory holds");
  std::map<std::string, ZipEntry> out;
  size_t p = size_t(cd_at);
  const size_t end = size_t(cd_at + cd_size);
  for (uint64_t e = 0; e < count; ++e) {
    if (end - p < 46 || read_le(b + p, 4) != 0x02014b50)
      throw bad("central directory entry " + std::to_string(e) + " is damaged");
    const uint64_t method = read_le(b + p + 10, 2);
    const uint64_t crc = read_le(b + p + 16, 4);
    uint64_t csize = read_le(b + p + 20, 4);
    uint64_t usize = read_le(b + p + 24, 4);
    const uint64_t name_len = read_le(b + p + 28, 2), extra_len = read_le(b + p + 30, 2),
                   comment_len = read_le(b + p + 32, 2);
    uint64_t local = read_le(b + p + 42, 4);
    if (46 + name_len + extra_len + comment_len > end - p)
      throw bad("central directory entry " + std::to_string(e) + " is damaged");
    const std::string name(reinterpret_cast<const char*>(b + p + 46), size_t(name_len));
    // zip64 sizes and offset in the extra field, for the fields set to 0xFFFFFFFF
    for (size_t x = p + 46 + name_len, xe = x + extra_len; x + 4 <= xe;) {
      const uint64_t id = read_le(b + x, 2), len = read_le(b + x + 2, 2);
      if (x + 4 + len > xe) break;
      if (id == 1) {
        size_t q = x + 4;
        auto next = [&](uint64_t& field) {
          if (field == 0xFFFFFFFF && q + 8 <= x + 4 + len) {
            field = read_le(b + q, 8);
            q += 8;
          }
        };
        next(usize);
        next(csize);
        next(local);
      }
      x += 4 + len;
    }
    p += size_t(46 + name_len + extra_len + comment_len);
    if (local > n - 30 || read_le(b + local, 4) != 0x04034b50) throw bad("the local header of " + name + " is missing");
    const uint64_t data_at = local + 30 + read_le(b + local + 26, 2) + read_le(b + local + 28, 2);
    if (method != 0) {
      throw Error("checkpoint (zip format): entry " + name +
                  " is compressed; torch.save stores entries uncompressed (was the file re-zipped?)");
    }
    if (csize != usize || data_at > n || usize > n - data_at)
      throw bad("entry " + name + " reaches past the end of the file (truncated?)");
    if (crc32(b + data_at, size_t(usize)) != uint32_t(crc)) throw bad("entry " + name + " fails its checksum");
    out[name] = ZipEntry{b + data_at, size_t(usize)};
  }
  return out;
}

}  // namespace imdn
