#!/usr/bin/env python3
"""Finds test lines that cannot fail, or wait by sleeping, in the shell tests.

    lint_checks.py TESTS_DIR     prints each offending line, exits 1 if there is any

A `check NAME CMD...` (tests/lib/common.sh) judges ONE command. Flagged:
  - `check n [ a ] && [ b ]`: check sees only `[ a ]` (also with ||, ; or a pipe after it);
  - `cond && check n true` / `cond || check ...`: nothing is recorded when cond decides;
  - a bare `sleep` in tests/integration/*.sh or tests/cluster/*.sh: waits poll with wait_for
    (a sleep inside a bounded loop that tests a condition is a poll, and is let through).
Quoted strings and $(...) are blanked first, so operators inside them do not count. A line
may opt out with a trailing `# lint: ok (reason)`.
"""
import pathlib
import re
import sys


def blank(line):
    """The line with quoted strings and command substitutions emptied (one level deep)."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c == "'":
            j = line.find("'", i + 1)
            j = n if j < 0 else j
            out.append("''")
            i = j + 1
        elif c == '"' or (c == "$" and i + 1 < n and line[i + 1] == "("):
            close, depth, j = ('"', 0, i + 1) if c == '"' else (")", 1, i + 2)
            while j < n:
                if line[j] == "\\":
                    j += 2
                    continue
                if c == "$" and line[j] == "(":
                    depth += 1
                elif line[j] == close:
                    depth -= 1
                    if depth <= 0:
                        break
                j += 1
            out.append('""')
            i = j + 1
        elif c == "#" and (i == 0 or line[i - 1] in " \t;"):
            break
        else:
            out.append(c)
            i += 1
    return "".join(out)


def logical_lines(text):
    """Lines with backslash-newline continuations joined, numbered by their first line."""
    lines, buf, start = [], "", 0
    for no, raw in enumerate(text.split("\n"), 1):
        if not buf:
            start = no
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        lines.append((start, buf + raw))
        buf = ""
    return lines


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests")
    bad = 0
    for path in sorted(root.rglob("*.sh")):
        no_sleep = path.parent.name in ("integration", "cluster")
        for no, line in logical_lines(path.read_text()):
            if "# lint: ok" in line:
                continue
            code = blank(line)
            why = None
            m = re.search(r"(^|[;&|(]\s*|\bthen\s+|\bdo\s+|\belse\s+)check\s", code)
            if m and re.search(r"&&|\|\||;|\|", code[m.end():]):
                why = "check sees only the first command: put the && / || inside a function, bash -c or one [ ]"
            elif re.search(r"(&&|\|\|)\s*check\s", code):
                why = "a condition before check records nothing when it decides: make it the checked command"
            elif no_sleep and re.search(r"(^\s*|[;&|(]\s*|\bthen\s+)sleep\s", code) and not re.search(r"\bdo\b", code):
                why = "a sleep as synchronisation: poll for the condition with wait_for (tests/lib/common.sh)"
            if why:
                bad += 1
                print(f"{path}:{no}: {why}\n    {line.strip()}")
    print(f"lint_checks: {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
