#!/usr/bin/env python3
"""Checks Prometheus text exposition (format 0.0.4) and reads values from it.

  promcheck.py check FILE...          exit 1 (with one line per problem) unless every FILE is valid:
      every sample's family has a # TYPE line before its samples, one TYPE per family, a
      family's lines are contiguous, metric and label names match the grammar, label values
      use only the escapes \\\\ \\" \\n, values are floats, no series appears twice, and every
      histogram's buckets are sorted by le, cumulative, end with +Inf equal to _count, with
      a _sum.
  promcheck.py value FILE NAME [LABEL=VALUE ...]
      prints the sum of the samples of NAME whose labels include every LABEL=VALUE given
      (LABEL~REGEX matches a regular expression: outcome~resumed.*); 0 when none match.
  promcheck.py query FILE 'NAME [LABEL=VALUE ...]'...
      the same for several queries at once (one Python start): one value per line.
"""
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*\Z')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*\Z')


def parse_labels(s, problems, lineno):
    """Parses `a="x",b="y"` with escapes; returns a list of (name, value)."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r'([^=]*)="', s[i:])
        if not m:
            problems.append(f'line {lineno}: bad label list {s!r}')
            return out
        name = m.group(1)
        if not LABEL.match(name):
            problems.append(f'line {lineno}: bad label name {name!r}')
        i += m.end()
        val = []
        while True:
            if i >= len(s):
                problems.append(f'line {lineno}: unterminated label value')
                return out
            c = s[i]
            if c == '\\':
                nxt = s[i + 1:i + 2]
                if nxt not in ('\\', '"', 'n'):
                    problems.append(f'line {lineno}: bad escape \\{nxt} in a label value')
                val.append({'n': '\n'}.get(nxt, nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                problems.append(f'line {lineno}: raw newline in a label value')
                i += 1
            else:
                val.append(c)
                i += 1
        out.append((name, ''.join(val)))
        if i < len(s):
            if s[i] != ',':
                problems.append(f'line {lineno}: expected "," in labels at {s[i:]!r}')
                return out
            i += 1
    return out


def parse_value(v):
    return {'+Inf': math.inf, '-Inf': -math.inf, 'NaN': math.nan}.get(v, None) if v in ('+Inf', '-Inf', 'NaN') else float(v)


def family_of(name, types):
    for suffix in ('_bucket', '_sum', '_count'):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) == 'histogram':
            return name[:-len(suffix)]
    return name


def parse(text):
    """Returns (samples, types, problems); samples are (name, labels dict, value)."""
    samples, types, problems = [], {}, []
    seen_series, done_families, current = set(), set(), None
    for lineno, line in enumerate(text.split('\n'), 1):
        if line == '':
            continue
        if line.startswith('#'):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                name = parts[2]
                if not NAME.match(name):
                    problems.append(f'line {lineno}: bad metric name {name!r}')
                if parts[1] == 'TYPE':
                    kind = parts[3] if len(parts) > 3 else ''
                    if kind not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                        problems.append(f'line {lineno}: bad type {kind!r}')
                    if name in types:
                        problems.append(f'line {lineno}: second TYPE for {name}')
                    types[name] = kind
                if name != current:
                    if name in done_families:
                        problems.append(f'line {lineno}: family {name} is not contiguous')
                    if current is not None:
                        done_families.add(current)
                    current = name
            continue
        m = re.match(r'([^{ ]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?\Z', line)
        if not m:
            problems.append(f'line {lineno}: cannot parse {line!r}')
            continue
        name, lab, val = m.group(1), m.group(2) or '', m.group(3)
        if not NAME.match(name):
            problems.append(f'line {lineno}: bad metric name {name!r}')
        labels = parse_labels(lab, problems, lineno)
        if len({k for k, _ in labels}) != len(labels):
            problems.append(f'line {lineno}: a label appears twice')
        try:
            value = parse_value(val)
        except ValueError:
            problems.append(f'line {lineno}: bad value {val!r}')
            continue
        fam = family_of(name, types)
        if fam not in types:
            problems.append(f'line {lineno}: {name} has no # TYPE before it')
        if fam != current:
            problems.append(f'line {lineno}: {name} is outside its family block ({current})')
        key = (name, tuple(sorted(labels)))
        if key in seen_series:
            problems.append(f'line {lineno}: series {name}{{{lab}}} appears twice')
        seen_series.add(key)
        samples.append((name, dict(labels), value))
    check_histograms(samples, types, problems)
    return samples, types, problems


def check_histograms(samples, types, problems):
    for fam, kind in types.items():
        if kind != 'histogram':
            continue
        series = {}
        for name, labels, value in samples:
            if name not in (fam + '_bucket', fam + '_sum', fam + '_count'):
                continue
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != 'le'))
            s = series.setdefault(rest, {'buckets': [], 'sum': None, 'count': None})
            if name.endswith('_bucket'):
                if 'le' not in labels:
                    problems.append(f'{fam}{dict(rest)}: a bucket without le')
                    continue
                s['buckets'].append((parse_value(labels['le']), value))
            elif name.endswith('_sum'):
                s['sum'] = value
            else:
                s['count'] = value
        if not series:
            problems.append(f'{fam}: a histogram without samples')
        for rest, s in series.items():
            b = s['buckets']
            where = f'{fam}{dict(rest)}'
            if not b or b[-1][0] != math.inf:
                problems.append(f'{where}: the last bucket is not le="+Inf"')
                continue
            if [le for le, _ in b] != sorted(le for le, _ in b):
                problems.append(f'{where}: buckets not sorted by le')
            if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                problems.append(f'{where}: buckets are not cumulative')
            if s['count'] is None or s['count'] != b[-1][1]:
                problems.append(f'{where}: _count {s["count"]} != +Inf bucket {b[-1][1]}')
            if s['sum'] is None:
                problems.append(f'{where}: no _sum')


def read(path):
    with open(path, encoding='utf-8') as f:
        return parse(f.read())


def check(path):
    samples, types, problems = read(path)
    for p in problems[:20]:
        print(f'{path}: {p}')
    if not samples:
        print(f'{path}: no samples')
        return False
    print(f'{path}: {len(samples)} samples in {len(types)} families: {"ok" if not problems else f"{len(problems)} problems"}')
    return not problems


def value(samples, name, args):
    want = []
    for arg in args:
        if '~' in arg and ('=' not in arg or arg.index('~') < arg.index('=')):
            k, v = arg.split('~', 1)
            want.append((k, re.compile(v + r'\Z')))
        else:
            k, v = arg.split('=', 1)
            want.append((k, re.compile(re.escape(v) + r'\Z')))
    total = 0.0
    for n, labels, v in samples:
        if n == name and all(k in labels and rx.match(labels[k]) for k, rx in want):
            total += v
    return int(total) if total == int(total) else total


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ('check', 'value', 'query'):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == 'check':
        results = [check(path) for path in sys.argv[2:]]
        return 0 if all(results) else 1
    samples = read(sys.argv[2])[0]
    if sys.argv[1] == 'value':
        print(value(samples, sys.argv[3], sys.argv[4:]))
        return 0
    for q in sys.argv[3:]:
        words = q.split()
        print(value(samples, words[0], words[1:]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
