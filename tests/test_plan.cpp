// The plan apart from running it (src/plan.h): what an image's pixels say, and plan_job() without
// pixels giving the plan a Job runs, for every architecture.
#include <gtest/gtest.h>

#include <vector>

#include "job.h"
#include "network.h"
#include "support.h"

using namespace testing_support;

namespace {

imdn::Image rgba(size_t w, size_t h, float alpha) {
  imdn::Image img;
  img.width = w;
  img.height = h;
  img.channels = 4;
  img.data.resize(w * h * 4);
  for (size_t p = 0; p < w * h; ++p) {
    img.data[p * 4] = float((p * 7) % 256) / 255.f;
    img.data[p * 4 + 1] = float((p * 13) % 256) / 255.f;
    img.data[p * 4 + 2] = float((p * 29) % 256) / 255.f;
    img.data[p * 4 + 3] = alpha;
  }
  return img;
}

}  // namespace

TEST(ShapeOf, OpaqueAlphaGreyAndBytes) {
  imdn::JobOptions o;
  imdn::Image img = rgba(9, 7, 1.f);
  imdn::ImageShape s = imdn::shape_of(img, o);
  EXPECT_FALSE(s.translucent);  // alpha 1 everywhere: no pass of its own
  EXPECT_FALSE(s.grey);
  EXPECT_TRUE(s.eight_colour);
  img.data[5 * 4 + 3] = 0.5f;  // one pixel not opaque
  EXPECT_TRUE(imdn::shape_of(img, o).translucent);
  EXPECT_FALSE(imdn::shape_of(img, o).eight_alpha);  // 0.5 is not k / 255
  for (size_t p = 0; p < 9 * 7; ++p) img.data[p * 4 + 1] = img.data[p * 4 + 2] = img.data[p * 4];
  EXPECT_TRUE(imdn::shape_of(img, o).grey);
  img.data[3 * 4] = 0.1234f;
  img.data[3 * 4 + 1] = img.data[3 * 4 + 2] = 0.1234f;
  EXPECT_FALSE(imdn::shape_of(img, o).eight_colour);
  o.raw = true;  // raw: the colour plane as it is, no alpha
  EXPECT_FALSE(imdn::shape_of(img, o).grey);
  EXPECT_FALSE(imdn::shape_of(img, o).translucent);
}

TEST(PlanJob, WithoutPixelsIsTheJobsPlan) {
  for (imdn::Arch arch : {imdn::Arch::kIMDN, imdn::Arch::kIMDN_RTC, imdn::Arch::kIMDN_RTE, imdn::Arch::kIMDN_AS}) {
    imdn::Network net(random_model(small_info(arch), 5), 1);
    for (float alpha : {1.f, 0.5f}) {
      const imdn::Image img = rgba(75, 53, alpha);
      imdn::JobOptions o;
      o.tile = 16;
      o.rgba8 = true;
      const imdn::Job job(net, img, o);
      imdn::ImageShape shape = imdn::assumed_shape(75, 53, 4);
      shape.translucent = alpha < 1.f;
      shape.eight_alpha = false;  // (0.5: floats)
      const imdn::Plan plan = imdn::plan_job(net, shape, o);
      ASSERT_EQ(plan.passes.size(), job.plan().passes.size()) << imdn::arch_name(arch);
      EXPECT_EQ(plan.units.size(), job.units());
      EXPECT_EQ(plan.phases.size(), job.phases().size());
      EXPECT_EQ(plan.memory.bytes, job.memory_needed());
      EXPECT_EQ(plan.macs, job.macs());
      // An opaque RGBA image is planned as RGB: one pass, the bytes of an RGB image's plan.
      if (alpha == 1.f)
        EXPECT_EQ(plan.memory.bytes, imdn::plan_job(net, imdn::assumed_shape(75, 53, 3), o).memory.bytes);
    }
  }
}

TEST(PlanJob, BlocksStreamOnlyWhereOneInstanceRunsThem) {
  // (Streaming needs Winograd steps: the WebAssembly default, natively an option.)
  imdn::Network net(random_model(small_info(imdn::Arch::kIMDN), 6), 1, imdn::Convolutions::kWinograd);
  imdn::JobOptions o;
  o.tile = 16;
  o.recompute = 1;
  const imdn::ImageShape shape = imdn::assumed_shape(64, 48, 3);
  o.executor = imdn::Executor::kUnits;
  EXPECT_FALSE(imdn::plan_job(net, shape, o).memory.streamed);
  o.executor = imdn::Executor::kInstance;
  EXPECT_TRUE(imdn::plan_job(net, shape, o).memory.streamed);
  // ...and a pool could not gather its units.
  const imdn::Image img = rgba(64, 48, 1.f);
  imdn::Job job(net, img, o);
  bool refused = false;
  for (size_t i = 0; i < job.units() && !refused; ++i) {
    if (job.plan().streamed(job.unit(i))) {
      EXPECT_THROW(job.gather(i), imdn::Error);
      refused = true;
    } else {
      job.run_here(i);
    }
  }
  EXPECT_TRUE(refused);
}
