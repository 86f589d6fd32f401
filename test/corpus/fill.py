# About 250 MiB of Python objects: a dict of 600 k int -> str, a list of 400 k bytes objects of
# 200 bytes, and a list of 400 k small tuples; then a sort, a second pass over everything, and a
# SHA-256 of the results. Prints the digests; exits 1 at the first wrong value.
import hashlib
import random
import sys

rng = random.Random(20261205)
table = {i: "v%x-%s" % (i * 2654435761 % (1 << 32), "x" * (i % 50)) for i in range(600000)}
blobs = [rng.randbytes(200) for _ in range(400000)]
pairs = [(rng.random(), i) for i in range(400000)]
pairs.sort()

digest = hashlib.sha256()
for i in range(600000):
    s = table[i]
    if s != "v%x-%s" % (i * 2654435761 % (1 << 32), "x" * (i % 50)):
        print("BAD table", i)
        sys.exit(1)
    digest.update(s.encode())
print("table", digest.hexdigest())

check = random.Random(20261205)
digest = hashlib.sha256()
for i, b in enumerate(blobs):
    if b != check.randbytes(200):
        print("BAD blob", i)
        sys.exit(1)
    digest.update(b)
print("blobs", digest.hexdigest())
print("pairs", hashlib.sha256(repr(pairs[::1000]).encode()).hexdigest(), pairs[0][1], pairs[-1][1])
