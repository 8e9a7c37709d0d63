#include "gemm_engine.h"

#include <c10/util/Exception.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace fastlstm::cpu {
namespace {

template <typename scalar_t>
FortranGemm<scalar_t> lookup_blas(const char* name) {
  // RTLD_DEFAULT: libtorch_cpu is already loaded (fastlstm._C is only imported after torch).
  return reinterpret_cast<FortranGemm<scalar_t>>(dlsym(RTLD_DEFAULT, name));
}

GemmEngine forced_engine() {
  const char* asked = std::getenv("FASTLSTM_GEMM");
  if (asked == nullptr || *asked == '\0' || std::strcmp(asked, "auto") == 0) return GemmEngine::Auto;
  for (GemmEngine engine : {GemmEngine::Brgemm, GemmEngine::Blas, GemmEngine::Eigen}) {
    if (std::strcmp(asked, engine_name(engine)) == 0) return engine;
  }
  TORCH_CHECK(false, "fastlstm: expected FASTLSTM_GEMM to be one of auto, brgemm, blas, eigen, got '", asked, "'");
}

struct Choices {
  std::mutex mutex;
  std::map<uint64_t, std::pair<GemmEngine, std::string>> by_class;
};

Choices& choices() {
  static Choices* instance = new Choices();  // never destroyed: kernels may still run at exit
  return *instance;
}

}  // namespace

const char* engine_name(GemmEngine engine) {
  switch (engine) {
    case GemmEngine::Auto:
      return "auto";
    case GemmEngine::Rows:
      return "rows";
    case GemmEngine::Brgemm:
      return "brgemm";
    case GemmEngine::Blas:
      return "blas";
    case GemmEngine::Eigen:
      return "eigen";
  }
  return "eigen";
}

GemmEngine gemm_engine() {
  static const GemmEngine engine = forced_engine();
  return engine;
}

FortranGemm<float> blas_sgemm() {
  static const FortranGemm<float> sgemm = lookup_blas<float>("sgemm_");
  return sgemm;
}

FortranGemm<double> blas_dgemm() {
  static const FortranGemm<double> dgemm = lookup_blas<double>("dgemm_");
  return dgemm;
}

bool find_choice(uint64_t shape_class, GemmEngine* engine) {
  Choices& all = choices();
  std::lock_guard<std::mutex> lock(all.mutex);
  auto it = all.by_class.find(shape_class);
  if (it == all.by_class.end()) return false;
  *engine = it->second.first;
  return true;
}

void record_choice(uint64_t shape_class, GemmEngine engine, std::string description) {
  Choices& all = choices();
  std::lock_guard<std::mutex> lock(all.mutex);
  all.by_class.emplace(shape_class, std::make_pair(engine, std::move(description)));
}

std::vector<std::pair<std::string, std::string>> recorded_choices() {
  Choices& all = choices();
  std::lock_guard<std::mutex> lock(all.mutex);
  std::vector<std::pair<std::string, std::string>> result;
  for (const auto& [shape_class, choice] : all.by_class) result.emplace_back(choice.second, engine_name(choice.first));
  return result;
}

}  // namespace fastlstm::cpu
