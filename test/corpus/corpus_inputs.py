"""Deterministic inputs for the stress corpus, generated at test time (nothing big is in git).

Every generator takes the path to write and a size, and writes the same bytes on every run and
every machine: the only randomness is random.Random with a fixed seed.
"""

import random

_SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "si", "po", "de", "vu", "ba", "ze", "ho", "gi",
              "fa", "qu", "ny", "xo", "we", "ja"]


def _vocabulary(rng, count):
    words = []
    for _ in range(count):
        words.append("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 5))))
    return words


def text(path, size, seed=1):
    """Lines of words: a Zipf-like mix of a 5,000-word vocabulary and rarer numbered words, so
    that the text compresses as prose does and has many distinct words."""
    rng = random.Random(seed)
    common = _vocabulary(rng, 5000)
    weights = [1.0 / (rank + 1) for rank in range(len(common))]
    written = 0
    line_number = 0
    with open(path, "w") as out:
        while written < size:
            words = rng.choices(common, weights, k=2000)
            for k in range(0, 2000, 97):
                words[k] = "w%d%s" % (rng.randrange(3000000), rng.choice(_SYLLABLES))
            lines = []
            for start in range(0, 2000, 12):
                line_number += 1
                lines.append(" ".join(words[start:start + 12]))
            chunk = "\n".join(lines) + "\n"
            out.write(chunk)
            written += len(chunk)


def sort_lines(path, size, seed=2):
    """64-byte lines: 16 hex digits, a space, 46 letters (the shape faultline-bench-programs uses)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    with open(path, "w") as out:
        for _ in range(size // 64 // 4096 + 1):
            block = []
            for _ in range(4096):
                tail = "".join(rng.choices(letters, k=46))
                block.append("%016x %s\n" % (rng.getrandbits(64), tail))
            out.write("".join(block))


def c_source(path, functions, table_entries, seed=3):
    """A C translation unit that gcc -O2 spends its memory on: `functions` functions with loops,
    switches and inlinable helpers, each calling the previous few (so that inlining and IPA see
    a large call graph), and a constant table of `table_entries` ints (a tree node per entry)."""
    rng = random.Random(seed)
    out = ["#include <stddef.h>", "#include <stdint.h>", ""]
    out.append("static const int32_t table[%d] = {" % table_entries)
    for start in range(0, table_entries, 16):
        out.append("  " + ", ".join(str(rng.randrange(-1000000, 1000000))
                                    for _ in range(min(16, table_entries - start))) + ",")
    out.append("};")
    out.append("")
    for f in range(functions):
        a, b, c = rng.randrange(1, 97), rng.randrange(1, 89), rng.randrange(1, 83)
        out.append("static inline uint64_t mix%d(uint64_t x) { return (x ^ (x >> %d)) * %dULL + %d; }"
                   % (f, a % 31 + 1, 2 * b + 1, c))
        out.append("uint64_t f%d(const uint64_t* v, size_t n, uint64_t seed) {" % f)
        out.append("  uint64_t acc = seed ^ %dULL;" % rng.randrange(1 << 40))
        out.append("  for (size_t i = 0; i < n; i++) {")
        out.append("    uint64_t x = v[i] + (uint64_t)table[(i * %d + %d) %% %d];"
                   % (a, b, table_entries))
        out.append("    switch ((x + i) & 7) {")
        for case in range(8):
            op = rng.choice(["acc += mix%d(x) << %d;" % (f, case),
                             "acc ^= x * %dULL;" % rng.randrange(3, 1 << 20, 2),
                             "acc = (acc << %d) | (acc >> %d);" % (case + 1, 63 - case),
                             "acc -= x / %d;" % (case + 3)])
            out.append("      case %d: %s break;" % (case, op))
        out.append("    }")
        out.append("    if (acc & %dULL) acc = mix%d(acc + i);" % (1 << rng.randrange(40), f))
        out.append("  }")
        for callee in range(max(0, f - 3), f):
            out.append("  if ((acc & %d) == %d && n > %d) acc += f%d(v + 1, n - 1 - %d, acc);"
                       % (15, rng.randrange(16), f - callee + 1, callee, f - callee))
        out.append("  return acc;")
        out.append("}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def sql_script(path, rows, seed=4):
    """SQL for sqlite3 on an in-memory database: `rows` rows of about 330 bytes built by an LCG
    in a recursive CTE, an index, updates and deletes, then queries whose output is compared."""
    del seed  # the LCG below has its own fixed start
    with open(path, "w") as f:
        f.write("""PRAGMA cache_size = -2000000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE g(i, x) AS (
  SELECT 1, 42
  UNION ALL
  SELECT i + 1, (x * 1103515245 + 12345) %% 2147483648 FROM g WHERE i < %d
)
INSERT INTO t(id, k, v) SELECT i, x %% 1000003, printf('%%020d-%%0300d', x, i) FROM g;
CREATE INDEX t_k ON t(k);
UPDATE t SET v = printf('u%%0310d', k) WHERE id %% 7 = 0;
DELETE FROM t WHERE id %% 11 = 0;
SELECT count(*), sum(k), sum(length(v)), min(v), max(v) FROM t;
SELECT k %% 17, count(*), sum(id), sum(length(v)) FROM t GROUP BY k %% 17 ORDER BY 1;
SELECT id, k, substr(v, 1, 24) FROM t WHERE k BETWEEN 500000 AND 500300 ORDER BY k, id;
SELECT id, k FROM t ORDER BY v DESC, id LIMIT 20;
SELECT a.id, b.id FROM t a JOIN t b ON a.k = b.k AND a.id < b.id ORDER BY a.id LIMIT 50;
""" % rows)
