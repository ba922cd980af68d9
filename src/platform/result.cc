#include "platform/result.h"

#include <cstring>

namespace warren::platform {

std::string Status::message() const {
  if (error == 0)
    return "success";
  std::string out = op ? std::string(op) + ": " : std::string();
  // strerror_r's GNU and XSI variants differ; strerror on a thread-local buffer is fine here
  // because messages are built only on slow paths (start-up, configuration, logging).
  out += std::strerror(error);
  return out;
}

}  // namespace warren::platform
