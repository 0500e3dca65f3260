// Zip archives as torch.save writes them (entries stored, not compressed): the entries by name,
// each checked against its CRC-32. Throws imdn::Error naming what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace imdn {

struct ZipEntry {
  const uint8_t* data;
  size_t size;
};

std::map<std::string, ZipEntry> read_zip(const uint8_t* bytes, size_t size);

}  // namespace imdn
