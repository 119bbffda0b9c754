// Terminal ids (docs/protocol.md §5): 22 characters of base64url, distinct, and never a leading '-', which a
// command line would read as an option (`ptyhub kill ID`).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "src/hub/hub.hpp"

TEST_CASE("terminal ids are 22 base64url characters, distinct, and never start with a dash") {
  // One id in 64 would start with '-' if nothing prevented it: among 20,000, about 312 would.
  constexpr int kIds = 20000;
  std::set<std::string> seen;
  int leading_dash = 0;
  std::string outside_alphabet;  // the ids with a character outside base64url
  std::set<char> first_characters;
  for (int i = 0; i < kIds; ++i) {
    const std::string id = ptyhub::hub::new_terminal_id();
    REQUIRE(id.size() == 22);
    for (char c : id) {
      const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!alphabet) outside_alphabet += id + " ";
    }
    if (id.front() == '-') ++leading_dash;
    first_characters.insert(id.front());
    seen.insert(id);
  }
  CHECK(outside_alphabet.empty());
  CHECK(leading_dash == 0);
  CHECK(seen.size() == kIds);
  CHECK(first_characters.size() == 63);  // every other character still starts ids
}
