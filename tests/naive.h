// A literal, loop-by-loop transcription of the authors' PyTorch modules (model/block.py and
// model/architecture.py), NCHW, double accumulation, no XNNPACK: the reference the engine is
// tested against on small and odd shapes.
#pragma once

#include <vector>

#include "model.h"

namespace naive {

struct Map {  // (c, h, w)
  int c = 0, h = 0, w = 0;
  std::vector<float> v;
  Map() = default;
  Map(int c_, int h_, int w_) : c(c_), h(h_), w(w_), v(size_t(c_) * h_ * w_, 0.f) {}
  float& at(int k, int y, int x) { return v[(size_t(k) * h + y) * w + x]; }
  float at(int k, int y, int x) const { return v[(size_t(k) * h + y) * w + x]; }
};

Map conv(const Map& x, const imdn::Model& m, const std::string& name, int stride = 1);
Map pixel_shuffle(const Map& x, int r);
Map cca(const Map& x, const imdn::Model& m, const std::string& prefix);

// Network output (3, H*s, W*s) for an input (3, H, W) in [0,1]; RTE is fed [0,255] and divided back.
Map forward(const imdn::Model& m, const Map& input);

Map from_hwc(const float* hwc, int h, int w);
std::vector<float> to_hwc(const Map& x);

}  // namespace naive
