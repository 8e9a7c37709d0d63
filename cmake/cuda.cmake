# CUDA kernels: built when the torch we build against has CUDA and nvcc is found (FASTLSTM_CUDA=OFF skips them).
# Never probes a GPU: the architectures are explicit, so the CUDA variant builds on machines without one (CI).
option(FASTLSTM_CUDA "Build the CUDA kernels when torch has CUDA and nvcc is found" ON)
set(FASTLSTM_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures to compile for (sm_80 A100, sm_90 H100/H200)")

set(FASTLSTM_CUDA_SOURCES "")
set(FASTLSTM_CUDA_DEFINITIONS "")
set(FASTLSTM_CUDA_INCLUDES "")

execute_process(
  COMMAND "${Python_EXECUTABLE}" -c "import torch; print(torch.version.cuda or '')"
  OUTPUT_VARIABLE FASTLSTM_TORCH_CUDA OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)

# The toolkit root: CUDA_HOME, else /usr/local/cuda, else the folder above the nvcc on PATH. (nvcc on PATH may be a
# wrapper script, so its own real path need not lie inside the toolkit.)
if(DEFINED ENV{CUDA_HOME})
  set(FASTLSTM_CUDA_ROOT "$ENV{CUDA_HOME}")
elseif(EXISTS "/usr/local/cuda/bin/nvcc")
  set(FASTLSTM_CUDA_ROOT "/usr/local/cuda")
else()
  find_program(FASTLSTM_NVCC_ON_PATH nvcc)
  if(FASTLSTM_NVCC_ON_PATH)
    get_filename_component(nvcc_bin "${FASTLSTM_NVCC_ON_PATH}" DIRECTORY)
    get_filename_component(FASTLSTM_CUDA_ROOT "${nvcc_bin}" DIRECTORY)
  endif()
endif()

if(FASTLSTM_CUDA AND FASTLSTM_TORCH_CUDA AND FASTLSTM_CUDA_ROOT AND EXISTS "${FASTLSTM_CUDA_ROOT}/bin/nvcc")
  message(STATUS "fastlstm: CUDA kernels for torch CUDA ${FASTLSTM_TORCH_CUDA}, toolkit ${FASTLSTM_CUDA_ROOT}, "
                 "architectures ${FASTLSTM_CUDA_ARCHITECTURES}")
  # Caffe2's FindCUDA (run by find_package(Torch)) needs the toolkit root; it reads TORCH_CUDA_ARCH_LIST, not
  # CMAKE_CUDA_ARCHITECTURES.
  set(CUDA_TOOLKIT_ROOT_DIR "${FASTLSTM_CUDA_ROOT}")
  set(CUDAToolkit_ROOT "${FASTLSTM_CUDA_ROOT}")
  set(CMAKE_CUDA_COMPILER "${FASTLSTM_CUDA_ROOT}/bin/nvcc")
  set(CMAKE_CUDA_ARCHITECTURES ${FASTLSTM_CUDA_ARCHITECTURES})
  string(REPLACE "0" ".0" torch_arch_list "${FASTLSTM_CUDA_ARCHITECTURES}")
  set(TORCH_CUDA_ARCH_LIST "${torch_arch_list}")
  enable_language(CUDA)
  # torch's targets ask for C++20, which CMake < 3.26 cannot spell for nvcc: teach it the flag.
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  # cuBLAS / cuDNN headers come with the nvidia-* wheels that CUDA torch installs, not with every toolkit.
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import glob, os, nvidia; print(';'.join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], '*', 'include')))))"
    OUTPUT_VARIABLE FASTLSTM_CUDA_INCLUDES OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  set(FASTLSTM_CUDA_SOURCES csrc/cuda/lstm_kernel.cu csrc/cuda/layer_norm_lstm_kernel.cu csrc/cuda/gru_kernel.cu
      csrc/cuda/ops_cuda.cpp)
  set(FASTLSTM_CUDA_DEFINITIONS FASTLSTM_WITH_CUDA)
else()
  message(STATUS "fastlstm: CPU-only build (torch CUDA: '${FASTLSTM_TORCH_CUDA}', toolkit: '${FASTLSTM_CUDA_ROOT}')")
endif()
