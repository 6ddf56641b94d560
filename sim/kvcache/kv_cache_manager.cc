// Names of the KV managers.
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

const char* KvManagerTypeName(KvManagerType type) {
  switch (type) {
    case KvManagerType::kStatic:
      return "static";
    case KvManagerType::kPaged:
      return "paged";
    case KvManagerType::kVAttention:
      return "vattention";
  }
  return "?";
}

}  // namespace kvsim
