#!/usr/bin/env python3
"""No source file of lib/ may turn an errno into text through libc.

strerror() and its relatives translate through gettext, which reads locale data and allocates:
on a faultline thread that is a self-deadlock (issue 12, docs/design.md "faultline must never page
itself"). lib/util/errno_name.h is the one way to name an errno. The same holds for the text of a
std::system_error or std::error_code, which libstdc++ builds with strerror.

Usage: no_libc_text_test.py <lib directory>
"""
import pathlib
import re
import sys

FORBIDDEN = re.compile(
    r"\b(strerror(_r|_l|name_np|desc_np)?|perror|psignal|strsignal)\s*\("
    r"|\bstd::system_error\s*\("
    r"|\bstd::error_code\b|\.code\(\)\.message\(")


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    bad = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".cc", ".h") or path.name.startswith("errno_name"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if FORBIDDEN.search(code):
                bad.append(f"{path}:{number}: {line.strip()}")
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} use(s) of libc errno text in lib/: use util/errno_name.h instead")
        return 1
    print(f"no libc errno text in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
