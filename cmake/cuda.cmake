# CUDA sources are added in a later change; a CPU build sets nothing here.
set(FASTLSTM_CUDA_SOURCES "")
set(FASTLSTM_CUDA_DEFINITIONS "")
