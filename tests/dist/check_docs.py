#!/usr/bin/env python3
"""Man pages and bash completion against the programs themselves, so they cannot drift.

  program --help, program CMD --help ──► usage: {command path: options}, environment names
        │
        ├─► warren.8 / warren-wg.8 (rendered): every command path in the SYNOPSIS with at
        │   least the options its usage line has; every option and variable named somewhere
        ├─► bash completion (run in bash): after each command path, every command word and
        │   every option of the usage is offered; every option offered is in the man page
        └─► src/server/config.cc's key lists ──► warren.toml.5: every table and key documented
            in its own section, and no key documented that the parser refuses

Exit 0 when everything matches, 1 with one line per mismatch, 2 on a usage error.

  check_docs.py --bin BUILD/bin --dist DIST_DIR --source SOURCE_DIR
"""

import argparse
import os
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
ENV_NAME = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)=")
PATH_WORD = re.compile(r"^[a-z][a-z-]*$")

problems = []


def problem(text):
    problems.append(text)


def run(argv):
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "NOTIFY_SOCKET")}
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    return p.returncode, p.stdout + p.stderr


def parse_usage(text, names, default_path):
    """{path tuple: set of options} from usage text. A line naming the program (one of
    `names`) starts a command path: the lowercase words after it; its options belong to that
    path. Options on other lines belong to `default_path` (the command whose help this is)."""
    entries = {}
    for line in text.splitlines():
        tokens = line.split()
        start = next((i for i, t in enumerate(tokens) if t.lstrip("`") in names), None)
        if start is None:
            path, rest = default_path, line
        else:
            path = []
            j = start + 1
            while j < len(tokens) and PATH_WORD.match(tokens[j]):
                path.append(tokens[j])
                j += 1
            path = tuple(path)
            rest = " ".join(tokens[j:])
        opts = set(OPTION.findall(rest))
        if start is not None or opts:
            entries.setdefault(path, set()).update(opts)
    return entries


def merge(into, entries):
    for path, opts in entries.items():
        into.setdefault(path, set()).update(opts)


def collect(program, argv0):
    """Runs `program --help` and `program CMD --help` for each CMD it lists."""
    names = {program, argv0}
    rc, text = run([argv0, "--help"])
    if rc != 0:
        problem(f"{program} --help exited {rc}")
    usage = parse_usage(text, names, ())
    envs = set(ENV_NAME.findall(text))
    for cmd in sorted({p[0] for p in usage if p}):
        rc, sub = run([argv0, cmd, "--help"])
        if rc != 0:
            problem(f"{program} {cmd} --help exited {rc}")
        merge(usage, parse_usage(sub, names, (cmd,)))
        envs |= set(ENV_NAME.findall(sub))
    if not usage or all(not o for o in usage.values()):
        problem(f"{program}: no command or option found in its usage (did its format change?)")
    return usage, envs


def render(page):
    """The man page as plain text: no hyphenation breaks (very long lines), no overstrike."""
    p = subprocess.run(["groff", "-man", "-Tutf8", "-rLL=4000n", "-P-c", "-P-b", "-P-u",
                        "-P-o", page], capture_output=True, text=True)
    if p.returncode != 0:
        problem(f"{page}: groff failed: {p.stderr.strip()}")
    return p.stdout.replace("\u2212", "-").replace("\u2010", "-")


def section(text, title, following):
    m = re.search(rf"^{title}\n(.*?)^{following}\n", text, re.S | re.M)
    return m.group(1) if m else ""


def check_man(program, page, usage, envs):
    text = render(page)
    words = set(text.split())
    tokens = set(OPTION.findall(text))
    synopsis = section(text, "SYNOPSIS", "DESCRIPTION")
    if not synopsis:
        problem(f"{page}: no SYNOPSIS section")
    # Join wrapped synopsis entries, then parse them like a usage text.
    entries = []
    for line in synopsis.splitlines():
        if line.split()[:1] == [program] or not entries:
            entries.append(line)
        elif line.strip():
            entries[-1] += " " + line.strip()
    syn = parse_usage("\n".join(entries), {program}, None)
    syn.pop(None, None)
    for path, opts in sorted(usage.items()):
        shown = " ".join((program,) + path)
        if path and not re.search(r"(?<![\w-])" + re.escape(shown) + r"(?![\w-])", text):
            problem(f"{page}: command '{shown}' is not described")
        if path not in syn and (path or opts):
            problem(f"{page}: SYNOPSIS has no line for '{shown}'")
        for o in sorted(opts - syn.get(path, set())):
            if path in syn:
                problem(f"{page}: SYNOPSIS line of '{shown}' lacks {o}")
        for o in sorted(opts - tokens):
            problem(f"{page}: option {o} (of '{shown}') is not documented")
    for e in sorted(envs):
        if e not in words:
            problem(f"{page}: environment variable {e} is not documented")
    return tokens


def check_completion(program, script, usage, man_options):
    """Drives the completion function in bash for every command path."""
    queries = []
    for path in sorted(usage):
        for k, word in enumerate(path):  # each word of a path is offered where it goes
            queries.append(((program,) + path[:k] + ("",), ("word", path, word)))
        queries.append(((program,) + path + ("-",), ("opts", path, None)))
    lines = [f"source {script!s}", "set +e",
             f"fn=$(complete -p {program} | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')"]
    for words, _ in queries:
        quoted = " ".join("'" + w + "'" for w in words)
        lines.append(f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMPREPLY=(); "
                     '"$fn"; printf "%s\\n" "@@ ${COMPREPLY[*]}"')
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
                       capture_output=True, text=True, timeout=60)
    replies = [l[3:].split() for l in p.stdout.splitlines() if l.startswith("@@")]
    if p.returncode != 0 or len(replies) != len(queries):
        problem(f"{script}: running the completion failed: {p.stderr.strip()}")
        return
    for (words, (kind, path, word)), offered in zip(queries, replies):
        shown = " ".join((program,) + path)
        if kind == "word":
            if word not in offered:
                problem(f"{script}: '{' '.join(words[:-1])} <TAB>' does not offer '{word}'")
            continue
        for o in sorted(usage[path] - set(offered)):
            problem(f"{script}: '{shown} -<TAB>' does not offer {o}")
        for o in sorted(set(OPTION.findall(" ".join(offered))) - man_options):
            problem(f"{script}: '{shown} -<TAB>' offers {o}, which the man page does not know")


def config_keys(config_cc):
    """{table: [keys]} from the parser's allow-lists: p.only(node, "table", {"key", ...})."""
    with open(config_cc) as f:
        src = f.read()
    tables = {}
    for table, keys in re.findall(r'\bonly\(\s*[^,]+,\s*"([^"]*)",\s*\{([^}]*)\}', src):
        tables[table] = re.findall(r'"([^"]+)"', keys)
    if "" not in tables or len(tables) < 4:
        problem(f"{config_cc}: cannot find the parser's key lists (only(node, \"table\", {{...}}))")
    return tables


def check_config_page(page, tables):
    with open(page) as f:
        src = f.read()
    documented = {}
    current = None
    lines = src.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^\.SH "?\[([a-z_.]+)\]"?', line)
        if m:
            current = m.group(1)
            documented[current] = set()
        elif line.startswith(".SH"):
            current = None
        elif current and line == ".TP" and i + 1 < len(lines):
            term = re.match(r"^\.B\s+(\S+)", lines[i + 1])
            if term:
                documented[current].add(term.group(1).replace("\\-", "-"))
    for table in tables.get("", []):
        if table not in documented:
            problem(f"{page}: table [{table}] is not documented (no '.SH [{table}]')")
    for table, keys in tables.items():
        if not table:
            continue
        for k in keys:
            if k not in documented.get(table, set()):
                problem(f"{page}: key {table}.{k} is not documented in its [{table}] section")
        for k in sorted(documented.get(table, set()) - set(keys)):
            problem(f"{page}: documents {table}.{k}, which the parser does not accept")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with warren and warren-wg")
    ap.add_argument("--dist", required=True, help="directory with man/ and completion/")
    ap.add_argument("--source", required=True, help="source tree (for src/server/config.cc)")
    a = ap.parse_args()

    counts = []
    for program in ("warren", "warren-wg"):
        usage, envs = collect(program, os.path.join(a.bin, program))
        man_options = check_man(program, os.path.join(a.dist, "man", program + ".8"), usage, envs)
        check_completion(program, os.path.join(a.dist, "completion", program), usage,
                         man_options)
        counts.append(f"{program}: {len(usage)} command paths, "
                      f"{len(set().union(*usage.values()))} options, {len(envs)} variables")
    tables = config_keys(os.path.join(a.source, "src", "server", "config.cc"))
    check_config_page(os.path.join(a.dist, "man", "warren.toml.5"), tables)
    counts.append(f"config: {len(tables) - 1} tables, {sum(map(len, tables.values())) - len(tables.get('', []))} keys")

    for p in problems:
        print("FAIL:", p)
    print("checked " + "; ".join(counts))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
