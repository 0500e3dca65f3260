// Any model file, recognised by its content: our .imdn format (model.h) or the authors' PyTorch
// checkpoints (.pth, either format: checkpoint.h), whatever the file is called. Above both readers.
//
//   imdn::Model m = imdn::load_model_file("IMDN_x4.pth");   // throws imdn::Error, naming the file
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "model.h"

namespace imdn {

Model load_model(const uint8_t* bytes, size_t size);
Model load_model_file(const std::string& path);

}  // namespace imdn
