// A C++ program with no Python in it: loads fastlstm's ops library (libfastlstm_ops.so, which registers the ops with
// torch), then an AOTInductor package of a model that calls them, runs it on one input and writes the first output.
// Used by tests/test_cpp_deploy.py, which builds it against the torch wheel's libtorch.
//
//   aoti_runner OPS_LIBRARY PACKAGE.pt2 INPUT.bin T B I OUTPUT.bin
// OPS_LIBRARY "-": load none (the package must then fail to find the ops). INPUT.bin: T * B * I float32 values (x [T, B, I]); OUTPUT.bin: the first output's float32 values.
#include <dlfcn.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 8) {
    std::cerr << "usage: aoti_runner OPS_LIBRARY PACKAGE.pt2 INPUT.bin T B I OUTPUT.bin\n";
    return 2;
  }
  if (std::string(argv[1]) != "-" && dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::cerr << "could not load " << argv[1] << ": " << dlerror() << "\n";
    return 1;
  }
  const int64_t T = std::atoll(argv[4]), B = std::atoll(argv[5]), I = std::atoll(argv[6]);
  std::vector<float> values(T * B * I);
  std::ifstream(argv[3], std::ios::binary).read(reinterpret_cast<char*>(values.data()), values.size() * sizeof(float));
  const torch::Tensor x = torch::from_blob(values.data(), {T, B, I}, torch::kFloat32).clone();
  std::vector<torch::Tensor> outputs;
  try {
    torch::inductor::AOTIModelPackageLoader loader(argv[2]);
    outputs = loader.run({x});
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
  const torch::Tensor output = outputs.at(0).contiguous();
  std::ofstream(argv[7], std::ios::binary)
      .write(reinterpret_cast<const char*>(output.data_ptr<float>()), output.numel() * sizeof(float));
  std::cout << "ran " << argv[2] << ": output " << output.sizes() << "\n";
  return 0;
}
