// Tests of src/hub/output_ring: the last `capacity` bytes of a stream, addressed by stream offset, with
// memory allocated as output arrives.
#include "src/hub/output_ring.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>

namespace ptyhub::hub {
namespace {

std::string read_all(const OutputRing& ring) {
  std::string out;
  ring.read(ring.start(), ring.capacity() + 1, &out);
  return out;
}

std::string read_at(const OutputRing& ring, uint64_t from, size_t max) {
  std::string out = "stale";  // read() replaces what was there
  ring.read(from, max, &out);
  return out;
}

TEST_CASE("an empty ring holds nothing and allocates nothing") {
  OutputRing ring(1024);
  CHECK(ring.start() == 0);
  CHECK(ring.end() == 0);
  CHECK(ring.allocated() == 0);
  CHECK(ring.capacity() == 1024);
  CHECK(read_at(ring, 0, 10).empty());
}

TEST_CASE("appending nothing to a ring that holds nothing changes nothing") {
  OutputRing ring(1024);
  ring.append("");
  ring.append(std::string_view());
  CHECK(ring.end() == 0);
  CHECK(ring.start() == 0);
  ring.append("a");
  CHECK(ring.end() == 1);
  CHECK(read_all(ring) == "a");
}

TEST_CASE("bytes are addressed by their stream offset - read stops at max and at end") {
  OutputRing ring(64);
  ring.append("hello ");
  ring.append("world");
  CHECK(ring.start() == 0);
  CHECK(ring.end() == 11);
  CHECK(read_all(ring) == "hello world");
  CHECK(read_at(ring, 6, 100) == "world");
  CHECK(read_at(ring, 0, 5) == "hello");
  CHECK(read_at(ring, 3, 4) == "lo w");
  CHECK(read_at(ring, 10, 100) == "d");
  CHECK(read_at(ring, 11, 100).empty());  // at end(): nothing yet
  CHECK(read_at(ring, 4, 0).empty());
  ring.append("");
  CHECK(ring.end() == 11);
}

TEST_CASE("a full ring keeps the last capacity bytes and reads across the wrap") {
  OutputRing ring(16);
  ring.append("0123456789");
  ring.append("abcdefghij");
  CHECK(ring.end() == 20);
  CHECK(ring.start() == 4);
  CHECK(ring.allocated() == 16);
  CHECK(read_all(ring) == "456789abcdefghij");
  CHECK(read_at(ring, 8, 6) == "89abcd");   // the physical wrap lies inside this range
  CHECK(read_at(ring, 4, 16) == "456789abcdefghij");
  CHECK(read_at(ring, 18, 10) == "ij");
  CHECK(read_at(ring, 19, 1) == "j");
  ring.append("KLM");
  CHECK(ring.start() == 7);
  CHECK(ring.end() == 23);
  CHECK(read_all(ring) == "789abcdefghijKLM");
  CHECK(read_at(ring, 15, 100) == "fghijKLM");
}

TEST_CASE("an append larger than the capacity keeps its last capacity bytes") {
  OutputRing ring(8);
  ring.append("ab");
  ring.append("0123456789ABCDEFGHIJ");  // 20 bytes
  CHECK(ring.end() == 22);
  CHECK(ring.start() == 14);
  CHECK(ring.allocated() == 8);
  CHECK(read_all(ring) == "CDEFGHIJ");
  ring.append("xy");
  CHECK(ring.start() == 16);
  CHECK(read_all(ring) == "EFGHIJxy");
  CHECK(read_at(ring, 22, 8) == "xy");
  CHECK(read_at(ring, 20, 8) == "IJxy");
  ring.append("12345678");  // exactly the capacity
  CHECK(ring.start() == 24);
  CHECK(read_all(ring) == "12345678");
}

TEST_CASE("memory grows from nothing by doubling, up to the capacity, and keeps the bytes") {
  const size_t capacity = 100000;  // not a power of two: the last step is capped
  OutputRing ring(capacity);
  std::string reference;
  size_t previous = 0;
  int growths = 0;
  for (int i = 0; reference.size() < capacity + 5000; ++i) {
    const std::string piece(static_cast<size_t>(700 + i % 300), static_cast<char>('a' + i % 26));
    ring.append(piece);
    reference += piece;
    const size_t allocated = ring.allocated();
    CAPTURE(reference.size());
    CHECK(allocated >= std::min(reference.size(), capacity));
    CHECK(allocated <= capacity);
    if (allocated != previous) {
      ++growths;
      if (previous != 0) CHECK((allocated == capacity || allocated == 2 * previous));
      if (previous == 0) CHECK(allocated < capacity);  // a little output costs little memory
      previous = allocated;
    }
    const size_t held = std::min(reference.size(), capacity);
    CHECK(ring.start() == reference.size() - held);
    CHECK(read_all(ring) == reference.substr(reference.size() - held));
  }
  CHECK(ring.allocated() == capacity);
  CHECK(growths >= 3);
}

TEST_CASE("an adopted ring may be borrowed - appends wrap over it and own() keeps every byte") {
  // Borrowed bytes as a live upgrade's restore lends them: from memory the ring does not own.
  auto keeper = std::make_shared<std::string>("0123456789");
  OutputRing ring(10);
  ring.adopt(110, SharedBytes(keeper, keeper->data(), keeper->size()));
  CHECK(ring.borrowed());
  CHECK(ring.start() == 100);
  CHECK(read_all(ring) == "0123456789");
  const auto [first, second] = ring.pieces();
  CHECK(first == "0123456789");
  CHECK(second.empty());
  ring.append("ab");  // over the oldest bytes, in the borrowed memory
  CHECK(read_all(ring) == "23456789ab");
  CHECK(*keeper == "ab23456789");
  const auto [wrapped_first, wrapped_second] = ring.pieces();
  CHECK(wrapped_first == "23456789");
  CHECK(wrapped_second == "ab");
  ring.own();
  CHECK_FALSE(ring.borrowed());
  keeper.reset();  // the lender may go now
  ring.append("c");
  CHECK(read_all(ring) == "3456789abc");
  CHECK(ring.start() == 103);
  CHECK(ring.end() == 113);
}

TEST_CASE("an adopted ring that is not full grows into memory of its own") {
  auto keeper = std::make_shared<std::string>("abc");
  OutputRing ring(1024);
  ring.adopt(3, SharedBytes(keeper, keeper->data(), keeper->size()));
  CHECK(ring.borrowed());
  ring.append("def");
  CHECK_FALSE(ring.borrowed());
  CHECK(*keeper == "abc");
  CHECK(read_all(ring) == "abcdef");
}

TEST_CASE("a ring of capacity 0 counts offsets and holds nothing") {
  OutputRing ring(0);
  ring.append("abc");
  ring.append("defg");
  CHECK(ring.end() == 7);
  CHECK(ring.start() == 7);
  CHECK(ring.allocated() == 0);
  CHECK(read_at(ring, 7, 10).empty());
  ring.skip(5);
  CHECK(ring.end() == 12);
  CHECK(ring.start() == 12);
  CHECK(ring.allocated() == 0);
}

TEST_CASE("skip advances end() over unknown bytes: zeros in the ring, or an empty ring") {
  SUBCASE("a skip smaller than the capacity holds zero bytes in place") {
    OutputRing ring(16);
    ring.append("abc");
    ring.skip(5);
    CHECK(ring.start() == 0);
    CHECK(ring.end() == 8);
    CHECK(read_all(ring) == std::string("abc\0\0\0\0\0", 8));
    ring.append("xyz");
    CHECK(ring.end() == 11);
    CHECK(read_at(ring, 8, 10) == "xyz");
  }
  SUBCASE("the zeros push older bytes out like any bytes") {
    OutputRing ring(16);
    ring.append("0123456789");
    ring.skip(10);
    CHECK(ring.end() == 20);
    CHECK(ring.start() == 4);
    CHECK(read_all(ring) == "456789" + std::string(10, '\0'));
  }
  SUBCASE("a skip of at least the capacity empties the ring") {
    for (const uint64_t count : {uint64_t{16}, uint64_t{17}, uint64_t{1} << 40}) {
      CAPTURE(count);
      OutputRing ring(16);
      ring.append("abcdefghij");
      ring.skip(count);
      CHECK(ring.end() == 10 + count);
      CHECK(ring.start() == ring.end());
      CHECK(read_at(ring, ring.end(), 10).empty());
      ring.append("xy");
      CHECK(ring.start() == 10 + count);
      CHECK(ring.end() == 12 + count);
      CHECK(read_all(ring) == "xy");
    }
  }
  SUBCASE("a skip larger than any internal piece but smaller than the capacity") {
    OutputRing ring(20000);
    ring.append("head");
    ring.skip(9000);
    ring.append("tail");
    CHECK(ring.start() == 0);
    CHECK(ring.end() == 9008);
    CHECK(read_all(ring) == "head" + std::string(9000, '\0') + "tail");
  }
  SUBCASE("skip(0) changes nothing") {
    OutputRing ring(16);
    ring.append("abc");
    ring.skip(0);
    CHECK(ring.end() == 3);
    CHECK(read_all(ring) == "abc");
  }
}

TEST_CASE("random appends and skips match a reference model at every offset") {
  for (const size_t capacity : {size_t{1}, size_t{7}, size_t{64}, size_t{5000}, size_t{9000}}) {
    CAPTURE(capacity);
    std::mt19937 random(static_cast<unsigned>(capacity));
    std::uniform_int_distribution<int> kind(0, 9);
    std::uniform_int_distribution<size_t> length(0, capacity + capacity / 2 + 2);
    OutputRing ring(capacity);
    std::string held;  // what the ring must hold
    uint64_t end = 0;
    for (int step = 0; step < 300; ++step) {
      size_t n = length(random);
      if (kind(random) == 0) {
        ring.skip(n);
        if (n >= capacity) held.clear();
        else held.append(n, '\0');
      } else {
        n = std::max<size_t>(n, 1);  // empty appends have their own test
        std::string bytes(n, '\0');
        for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>('A' + (end + i) % 53);
        ring.append(bytes);
        held += bytes;
      }
      end += n;
      if (held.size() > capacity) held.erase(0, held.size() - capacity);
      REQUIRE(ring.end() == end);
      REQUIRE(ring.start() == end - held.size());
      for (uint64_t from = ring.start(); from <= ring.end(); from += 1 + capacity / 16) {
        const size_t max = 1 + static_cast<size_t>(from % 13) * capacity / 8;
        const size_t skip = static_cast<size_t>(from - ring.start());
        REQUIRE(read_at(ring, from, max) == held.substr(skip, max));
      }
    }
  }
}

}  // namespace
}  // namespace ptyhub::hub
