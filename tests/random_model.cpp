// imdn-random-model NAME OUT.imdn [SEED]: a model file with the official hyper-parameters of NAME
// (x2, x3, x4, as, rtc, rte) and random weights, for the Node and browser tests that need only
// *some* model of that shape (a clone without ../shared runs them too).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "support.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: imdn-random-model x2|x3|x4|as|rtc|rte OUT.imdn [SEED]\n");
    return 2;
  }
  const std::string name = argv[1];
  imdn::ModelInfo i;
  if (name == "x2" || name == "x3" || name == "x4") {
    i.arch = imdn::Arch::kIMDN;
    i.nf = 64;
    i.blocks = 6;
    i.scale = i.upsample = uint32_t(name[1] - '0');
    i.receptive_radius = 27;
  } else if (name == "as") {
    i.arch = imdn::Arch::kIMDN_AS;
    i.nf = 64;
    i.blocks = 6;
    i.scale = 1;
    i.upsample = 4;
    i.size_multiple = 4;
    i.receptive_radius = 110;
  } else if (name == "rtc") {
    i.arch = imdn::Arch::kIMDN_RTC;
    i.nf = 12;
    i.blocks = 5;
    i.scale = 2;
    i.upsample = 2;
    i.receptive_radius = 22;
  } else if (name == "rte") {
    i.arch = imdn::Arch::kIMDN_RTE;
    i.nf = 20;
    i.blocks = 6;
    i.scale = 2;
    i.upsample = 4;
    i.input_range = 255.f;
    i.receptive_radius = 77;
  } else {
    std::fprintf(stderr, "imdn-random-model: unknown model %s\n", name.c_str());
    return 2;
  }
  const auto bytes = testing_support::random_model_bytes(i, argc > 3 ? unsigned(std::atoi(argv[3])) : 1u);
  std::ofstream f(argv[2], std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "imdn-random-model: cannot write %s\n", argv[2]);
    return 1;
  }
  return 0;
}
