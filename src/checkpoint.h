// PyTorch checkpoints (.pth) of the four IMDN networks, read without PyTorch and without running
// any of the file's code: the legacy format (torch < 1.6: five pickles, then the raw storages; all
// official IMDN checkpoints) and the zip archive of torch >= 1.6 (data.pkl plus one entry per
// storage).
//
// The pickles are read by a small interpreter that only builds data: dicts, lists, tuples,
// strings, numbers and tensor descriptions. The only names it resolves are the few a state dict
// uses (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the
// torch.*Storage types), each replaced by a fixed data constructor; any other name, os.system
// say, refuses the file. Every size is checked against the bytes that are there before anything
// is allocated, nesting is bounded, and a tensor must fit its storage.
//
// The architecture is identified from the tensors' names and shapes, never from a file name:
// IMDN (fea_conv, IMDB<k>), IMDN_AS (fea_conv.0/.2, IMDB<k>), IMDN_RTC (model.1.sub.<k>), IMDN_RTE
// (block<k>.c7), with nf, blocks and the upscaling factor read off the shapes. A `module.` prefix
// (DataParallel) and a {'state_dict': ...} wrapper are accepted; float32, float16, bfloat16 and
// float64 storages are read as float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "model.h"

namespace imdn {

// Whether the bytes look like a PyTorch checkpoint (a zip archive, or a pickle stream).
bool looks_like_checkpoint(const uint8_t* bytes, size_t size);

// The canonical tensors (models/FORMAT.md names) and hyper-parameters of a checkpoint.
// Throws imdn::Error with a precise message for anything that is not an IMDN state dict.
struct Checkpoint {
  ModelInfo info;
  std::map<std::string, Tensor> tensors;
};
Checkpoint read_checkpoint(const uint8_t* bytes, size_t size);

// The name the authors' PyTorch module gives a canonical tensor (models/FORMAT.md), e.g.
// blocks.0.fuse.weight -> IMDB1.c5.weight for IMDN.
std::string pytorch_name(Arch arch, uint32_t blocks, const std::string& canonical);

}  // namespace imdn
