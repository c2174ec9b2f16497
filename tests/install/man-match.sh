#!/usr/bin/env bash
# Issue 6: the manual pages say what the programs, the header and the
# configuration do, and nothing else:
#   lmrsecctl(1)     the commands of `lmrsecctl --help` are the page's
#                    COMMANDS subsections; every long option in `lmrsecctl
#                    --help` and in each `lmrsecctl COMMAND --help` is
#                    described on the page (global ones under OPTIONS), and
#                    every option the page describes is in that --help
#   lmrsec-agent(8)  its OPTIONS are those of `lmrsec-agent --help`
#   lmrsec.conf(5)   its KEYS are, group by group, the keys of
#                    docs/config-example.conf ("every key, with its default")
#   liblmrsec(3)     its SYNOPSIS declares exactly the functions of lmrsec.h,
#                    and each is described
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/install/lib.sh"

command -v groff >/dev/null || it_skip "groff not found (Debian package groff-base)"
command -v python3 >/dev/null || it_skip "python3 not found"
ctl=$top_builddir/cli/lmrsecctl
agent=$top_builddir/agent/lmrsec-agent
[ -x "$ctl" ] || it_fail "$ctl was not built"
[ -x "$agent" ] || it_fail "$agent was not built"

dir=$(mktemp -d "${TMPDIR:-/tmp}/lmrsec-man-match.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for page in lmrsecctl.1 lmrsec-agent.8 lmrsec.conf.5 liblmrsec.3; do
	it_render "$page" >"$dir/$page.txt" || it_fail "cannot render $page"
done
"$ctl" --help >"$dir/help" || it_fail "lmrsecctl --help failed"
for cmd in $(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on { exit }' "$dir/help"); do
	"$ctl" "$cmd" --help >"$dir/help-$cmd" || it_fail "lmrsecctl $cmd --help failed"
done
"$agent" --help >"$dir/agent-help" || it_fail "lmrsec-agent --help failed"

python3 - "$dir" "$top_srcdir" <<'PY'
import os, re, sys

d, srcdir = sys.argv[1], sys.argv[2]
failures = []

def fail(msg):
    failures.append(msg)

def read(name):
    with open(os.path.join(d, name)) as f:
        return f.read()

LONG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

def sections(text):
    """{section: {subsection or "": [lines]}} of a rendered page."""
    out, sec, sub = {}, None, ""
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]*$", line):
            sec, sub = line.strip(), ""
            out[sec] = {"": []}
        elif sec and re.match(r"^   \S", line):
            sub = line.strip()
            out[sec][sub] = []
        elif sec:
            out[sec][sub].append(line)
    return out

def terms(lines):
    """The long options of the tagged paragraphs' terms (7 blanks, then '-')."""
    found = set()
    for line in lines:
        if re.match(r"^       -", line):
            found.update(LONG.findall(line))
    return found

def help_options_all(text):
    found = set()
    for line in text.splitlines():
        m = re.match(r"^\s+((?:-\w, )?--[a-z][a-z0-9-]*)", line)
        if m:
            found.update(LONG.findall(m.group(1)))
    return found

# --- lmrsecctl(1) ---
page = sections(read("lmrsecctl.1.txt"))
for s in ("OPTIONS", "COMMANDS"):
    if s not in page:
        fail("lmrsecctl(1): no %s section" % s)
if not failures:
    global_terms = terms(page["OPTIONS"][""])
    main_help = read("help")
    main_opts = help_options_all(main_help)
    if main_opts != global_terms:
        fail("lmrsecctl(1) OPTIONS %s but `lmrsecctl --help` has %s"
             % (sorted(global_terms), sorted(main_opts)))
    commands = [f[len("help-"):] for f in sorted(os.listdir(d)) if f.startswith("help-")]
    subs = {s.split()[0]: lines for s, lines in page["COMMANDS"].items() if s}
    if set(commands) != set(subs):
        fail("lmrsecctl(1) COMMANDS describes %s but `lmrsecctl --help` lists %s"
             % (sorted(subs), sorted(commands)))
    for cmd in commands:
        if cmd not in subs:
            continue
        opts = help_options_all(read("help-" + cmd))
        described = terms(subs[cmd])
        missing = opts - described - global_terms
        extra = described - opts
        if missing:
            fail("lmrsecctl(1) %s: not described: %s" % (cmd, sorted(missing)))
        if extra:
            fail("lmrsecctl(1) %s: described but not in `lmrsecctl %s --help`: %s"
                 % (cmd, cmd, sorted(extra)))
        print("# lmrsecctl %s: %d options, page and --help agree" % (cmd, len(opts)))

# --- lmrsec-agent(8) ---
page = sections(read("lmrsec-agent.8.txt"))
described = terms(page.get("OPTIONS", {}).get("", []))
opts = help_options_all(read("agent-help"))
if described != opts:
    fail("lmrsec-agent(8) OPTIONS %s but `lmrsec-agent --help` has %s"
         % (sorted(described), sorted(opts)))
else:
    print("# lmrsec-agent: %d options, page and --help agree" % len(opts))

# --- lmrsec.conf(5) against docs/config-example.conf ---
example = {}
group = None
with open(os.path.join(srcdir, "docs", "config-example.conf")) as f:
    for line in f:
        m = re.match(r"^\[([a-z]+)\]", line)
        if m:
            group = m.group(1)
            example.setdefault(group, set())
            continue
        m = re.match(r"^#?([a-z][a-z0-9-]*)\s*=", line)
        if m and group:
            example[group].add(m.group(1))
page = sections(read("lmrsec.conf.5.txt"))
keys = {}
for sub, lines in page.get("KEYS", {}).items():
    m = re.match(r"^\[([a-z]+)\]$", sub)
    if not m:
        continue
    keys[m.group(1)] = {mm.group(1) for mm in
                        (re.match(r"^       ([a-z][a-z0-9-]*) = ", l) for l in lines) if mm}
if set(keys) != set(example):
    fail("lmrsec.conf(5) groups %s, docs/config-example.conf %s" % (sorted(keys), sorted(example)))
for g in sorted(set(keys) & set(example)):
    if keys[g] != example[g]:
        fail("lmrsec.conf(5) [%s]: page %s, config-example.conf %s"
             % (g, sorted(keys[g]), sorted(example[g])))
print("# lmrsec.conf: %d keys in %d groups, page and config-example.conf agree"
      % (sum(len(v) for v in example.values()), len(example)))

# --- liblmrsec(3) against lmrsec.h ---
with open(os.path.join(srcdir, "libclient", "lmrsec.h")) as f:
    header = f.read()
header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
header = re.sub(r"//[^\n]*", "", header)
FUNC = re.compile(r"\b(lmrsec_[a-z0-9_]+)\s*\(")
declared = set(FUNC.findall(header))
page = sections(read("liblmrsec.3.txt"))
synopsis = set(FUNC.findall("\n".join(page.get("SYNOPSIS", {}).get("", []))))
if synopsis != declared:
    fail("liblmrsec(3) SYNOPSIS: missing %s, not in lmrsec.h %s"
         % (sorted(declared - synopsis), sorted(synopsis - declared)))
described = set()
for sec in page.values():
    for lines in sec.values():
        for line in lines:
            if re.match(r"^       lmrsec_", line):
                described.update(FUNC.findall(line))
if declared - described:
    fail("liblmrsec(3): no description of %s" % sorted(declared - described))
print("# liblmrsec: %d functions, SYNOPSIS and lmrsec.h agree, each described" % len(declared))

for f in failures:
    print("# FAIL: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
PY
rc=$?
[ "$rc" -eq 0 ] || it_fail "the pages and the programs disagree (above)"
it_pass
