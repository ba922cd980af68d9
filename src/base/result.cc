#include "base/result.h"

#include <cstring>

namespace warren {

std::string Error::text() const {
  if (!message.empty())
    return message;
  // strerror() is not thread-safe; the GNU strerror_r returns the message it chose.
  char buf[128];
  const char* s = ::strerror_r(code, buf, sizeof buf);
  if (op != nullptr)
    return std::string(op) + ": " + s;
  return s;
}

}  // namespace warren
