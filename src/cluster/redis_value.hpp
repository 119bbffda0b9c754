// RedisValue: a Redis reply as a plain value that owns its data. RedisConnection (src/cluster/redis.hpp)
// hands every reply over in this form, and the decoders of src/cluster/entries.hpp read it. Header only,
// with no dependency: code that only reads replies needs neither hiredis nor libuv.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ptyhub::cluster {

// A Redis reply.
struct RedisValue {
  enum class Type { nil, error, status, integer, string, array };
  Type type = Type::nil;
  std::string text;  // string, status or error
  long long integer = 0;
  std::vector<RedisValue> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
  // The n-th element, or a nil value when there is none.
  const RedisValue& operator[](size_t n) const {
    static const RedisValue nil;
    return n < elements.size() ? elements[n] : nil;
  }
};

}  // namespace ptyhub::cluster
