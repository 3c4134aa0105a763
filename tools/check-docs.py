#!/usr/bin/env python3
"""Checks that the reference docs and the public headers name the same API.

Fails, naming each offender, when
  - a public name of include/ (function, typedef, enum constant, #define,
    struct or union field) is not documented in docs/;
  - a uvq_/UVQ_ name mentioned in docs/ or README.md exists nowhere: not in
    include/, and not as one of the few other kinds of name the docs may
    legitimately use (see legit_other_names());
  - given the tools (--server/--client), an option printed by their -h is
    missing from its section of docs/tools.md, or that section lists an
    option the tool no longer has.

"Documented" means named in prose, a table or a heading, not only inside a
fenced code block: a copy of the prototype is not documentation. A field
counts as documented when a section of the docs (the text under one
heading) that names its struct also names the field in inline code, or
when the docs write it as `type.field`.

Usage: check-docs.py SOURCE_DIR [--server BIN] [--client BIN]
"""
import os
import re
import subprocess
import sys

HEADERS = ["include/uvq.h", "include/uvq/quic.h", "include/uvq/h3.h"]
NAME_RE = re.compile(r"\b(uvq_[A-Za-z0-9_]*|UVQ_[A-Za-z0-9_]*)(\*?)")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_comments(text):
    # Keep newlines so that preprocessor lines stay lines.
    text = re.sub(r"/\*.*?\*/",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text,
                  flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


class Api:
    def __init__(self):
        self.required = {}   # name -> "function" / "macro" / ...
        self.fields = []     # (owner names, field, header)
        self.other = set()   # names that exist but need no docs of their own


def parse_fields(body):
    """Returns (member name, its declaration) for a struct/union body."""
    names = []
    depth = 0
    decl = ""
    for ch in body:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if ch == ";" and depth == 0:
            names.extend((n, decl) for n in declarator_names(decl))
            decl = ""
        else:
            decl += ch
    return names


def declarator_names(decl):
    decl = decl.strip()
    if not decl:
        return []
    fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(", decl)
    if fp:  # function pointer member: int (*accept)(...)
        return [fp.group(1)]
    # Split "uint64_t a, b[4]" at top-level commas; the first part carries
    # the type, the last identifier of each part is a member name.
    parts, depth, cur = [], 0, ""
    for ch in decl:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = re.sub(r"\[[^\]]*\]", "", p)
        ids = IDENT_RE.findall(p)
        if ids:
            out.append(ids[-1])
    return out


def private_field(field, decl):
    # Rule, not a list: the headers hide internal state behind a member
    # whose name ends in "_" and whose type is a private struct uvq__*
    # ("Private state; do not touch"); "reserved" arrays are padding that
    # lets a struct grow without changing its size.
    if field.endswith("_") and re.search(r"\bstruct\s+uvq__\w+", decl):
        return True
    return field == "reserved" and "[" in decl


def parse_headers(src):
    api = Api()
    for rel in HEADERS:
        text = strip_comments(open(os.path.join(src, rel)).read())
        # A macro continued over several lines is one line.
        text = re.sub(r"\\\n", " ", text)
        lines = text.split("\n")
        # Macros. An include guard (#define X right after #ifndef X, no
        # value) is not API; every other UVQ_ macro is.
        prev = ""
        code_lines = []
        for line in lines:
            s = line.strip()
            m = re.match(r"#\s*define\s+(\w+)(.*)", s)
            if m:
                name, value = m.group(1), m.group(2).strip()
                guard = (prev == "#ifndef " + name) and value == ""
                if name.startswith(("UVQ_", "uvq_")) and not guard:
                    api.required.setdefault(name, "macro")
            if s.startswith("#"):
                prev = re.sub(r"\s+", " ", s)
                code_lines.append("")
                continue
            if s:
                prev = ""
            code_lines.append(line)
        code = "\n".join(code_lines)
        code = re.sub(r'extern\s+"C"\s*\{', "", code)

        # typedef struct X_s X_t; declares X_t for a body given elsewhere
        # (or never: an opaque type). The tag itself needs no docs.
        tag_names = {}
        for m in re.finditer(
                r"\btypedef\s+(?:struct|union)\s+(\w+)\s+(\w+)\s*;", code):
            tag_names.setdefault(m.group(1), set()).add(m.group(2))
            api.other.add(m.group(1))

        # Struct and union bodies, with the typedef name when there is one.
        for m in re.finditer(
                r"(typedef\s+)?\b(struct|union)\s+(\w+)?\s*\{", code):
            start = m.end()
            depth, i = 1, start
            while depth:
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            body = code[start:i - 1]
            tail = re.match(r"\s*(\w+)?\s*;", code[i:])
            owners = set()
            if m.group(3):
                owners.add(m.group(3))
                owners.update(tag_names.get(m.group(3), ()))
                api.other.add(m.group(3))
            if m.group(1) and tail and tail.group(1):
                owners.add(tail.group(1))
            for field, decl in parse_fields(body):
                if not private_field(field, decl):
                    api.fields.append((owners, field, rel))

        # Typedefs: typedef struct X_s X_t; typedef struct X_s {...} X_t;
        # typedef void (*X_cb)(...);
        for m in re.finditer(r"\btypedef\b([^;{]*(\{)?)", code):
            if m.group(2):  # typedef with a body: name after the brace
                depth, i = 1, m.end()
                while depth:
                    depth += {"{": 1, "}": -1}.get(code[i], 0)
                    i += 1
                t = re.match(r"\s*(\w+)\s*;", code[i:])
                if t:
                    api.required.setdefault(t.group(1), "type")
                continue
            decl = m.group(1)
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", code[m.start():])
            if fp and "(" in decl:
                api.required.setdefault(fp.group(1), "type")
            else:
                ids = IDENT_RE.findall(decl)
                if ids:
                    api.required.setdefault(ids[-1], "type")

        # Enums: the tag needs no docs of its own; every constant does.
        for m in re.finditer(r"\benum\s+(\w+)?\s*\{([^}]*)\}", code):
            if m.group(1):
                api.other.add(m.group(1))
            for item in m.group(2).split(","):
                ids = IDENT_RE.findall(item)
                if ids:
                    api.required.setdefault(ids[0], "enum constant")

        # Function prototypes: an identifier followed by "(" at file scope,
        # outside bodies and not a function-pointer name ("(*name)").
        flat, prev_flat = code, None
        while flat != prev_flat:  # innermost braces first, until none left
            prev_flat, flat = flat, re.sub(r"\{[^{}]*\}", ";", flat)
        for stmt in flat.split(";"):
            stmt = stmt.strip()
            if not stmt or stmt.startswith("typedef"):
                continue
            m = re.search(r"\b(uvq_\w+)\s*\(", stmt)
            if m and not re.search(r"\(\s*\*\s*" + m.group(1), stmt):
                api.required.setdefault(m.group(1), "function")
    return api


def legit_other_names(src):
    """uvq_/UVQ_ names the docs may use that are not C API.

    Each kind is derived from the files that define it, so a new CMake
    option or environment variable is accepted as soon as the code has it:
      - CMake options and cache variables: option(UVQ_X ...) and
        set(UVQ_X ... CACHE ...) in any CMakeLists.txt;
      - CMake targets: add_library(uvq_x ...) / add_executable(...);
      - compile definitions a CMakeLists.txt passes (UVQ_X=...);
      - environment variables the code reads: getenv("UVQ_X") in C,
        process.env.UVQ_X in JavaScript, $UVQ_X or ${UVQ_X...} in shell
        scripts, os.environ["UVQ_X"] / os.environ.get("UVQ_X") in Python.
    Private names (uvq__x, UVQ__X) are accepted by the caller's rule.
    """
    names = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs
                   if not d.startswith(".") and d not in ("build",
                                                          "node_modules")]
        for f in files:
            path = os.path.join(root, f)
            if os.path.abspath(path) == os.path.abspath(__file__):
                continue  # its own docstring shows the patterns
            if f == "CMakeLists.txt" or f.endswith(".cmake"):
                text = open(path, errors="replace").read()
                names.update(re.findall(r"\boption\(\s*(UVQ_\w+)", text))
                names.update(re.findall(
                    r"\bset\(\s*(UVQ_\w+)[^)]*\bCACHE\b", text))
                names.update(re.findall(
                    r"\badd_(?:library|executable)\(\s*(uvq[\w-]*)", text))
                for defs in re.findall(
                        r"\b(?:target_compile_definitions|"
                        r"add_compile_definitions)\(([^)]*)\)", text):
                    names.update(re.findall(r"\b(UVQ_\w+)=", defs))
            elif f.endswith((".c", ".h")):
                text = open(path, errors="replace").read()
                names.update(re.findall(r'getenv\(\s*"(UVQ_\w+)"', text))
            elif f.endswith(".js"):
                text = open(path, errors="replace").read()
                names.update(re.findall(r"process\.env\.(UVQ_\w+)", text))
            elif f.endswith(".sh"):
                text = open(path, errors="replace").read()
                names.update(re.findall(r"\$\{?(UVQ_\w+)", text))
            elif f.endswith(".py"):
                text = open(path, errors="replace").read()
                names.update(re.findall(
                    r"environ(?:\.get\(|\[)\s*[\"'](UVQ_\w+)", text))
    return names


class Section:
    def __init__(self, doc, heading):
        self.doc = doc
        self.heading = heading
        self.prose = []  # text outside fenced code blocks
        self.all = []    # all text


def read_docs(src):
    paths = sorted(os.path.join("docs", f)
                   for f in os.listdir(os.path.join(src, "docs"))
                   if f.endswith(".md"))
    paths.append("README.md")
    sections = []
    for rel in paths:
        sec = Section(rel, "")
        sections.append(sec)
        fenced = False
        for line in open(os.path.join(src, rel)):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                sec.all.append(line)
                continue
            if not fenced and re.match(r"#{1,6}\s", line):
                sec = Section(rel, line.strip())
                sections.append(sec)
            sec.all.append(line)
            if not fenced:
                sec.prose.append(line)
    return sections


def code_spans(text):
    return re.findall(r"`([^`\n]+)`", text)


def check_api(src):
    api = parse_headers(src)
    sections = read_docs(src)
    errors = []

    prose_names = set()
    for sec in sections:
        for m in NAME_RE.finditer("".join(sec.prose)):
            prose_names.add(m.group(1))
    for name, kind in sorted(api.required.items()):
        if name not in prose_names:
            errors.append("undocumented %s: %s" % (kind, name))

    texts = [("".join(sec.all), "".join(sec.prose)) for sec in sections]
    spans = [code_spans(prose) for _, prose in texts]
    for owners, field, header in api.fields:
        owner_re = re.compile(r"\b(%s)\b" % "|".join(sorted(owners)))
        field_re = re.compile(r"(?<![\w.>])%s\b" % re.escape(field))
        dotted_re = re.compile(r"\b(%s)(\.|->)%s\b" %
                               ("|".join(sorted(owners)), field))
        ok = any(owner_re.search(text) and
                 any(field_re.search(span) for span in spans[i])
                 for i, (text, _) in enumerate(texts))
        ok = ok or any(dotted_re.search(prose) for _, prose in texts)
        if not ok:
            owner = sorted(owners, key=lambda o: not o.endswith("_t"))[0]
            errors.append("undocumented field: %s.%s (%s)" %
                          (owner, field, header))

    known = set(api.required) | api.other
    legit = legit_other_names(src)
    stale = {}
    for sec in sections:
        for lineno_text in "".join(sec.all).split("\n"):
            for m in NAME_RE.finditer(lineno_text):
                name, star = m.group(1), m.group(2)
                if name.startswith(("uvq__", "UVQ__")):
                    continue  # private names: docs may explain internals
                if star or name.endswith("_"):
                    # A family written as UVQ_UDP_FEATURE_*, or the prefix
                    # itself ("the uvq_ prefix").
                    if not any(k.startswith(name) for k in known):
                        stale.setdefault(name + "*", set()).add(sec.doc)
                    continue
                if name not in known and name not in legit:
                    stale.setdefault(name, set()).add(sec.doc)
    for name in sorted(stale):
        errors.append("stale name in %s: %s (not in include/)" %
                      (", ".join(sorted(stale[name])), name))
    return errors, len(api.required), len(api.fields)


def help_options(binary):
    res = subprocess.run([binary, "-h"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30)
    out = res.stdout.decode(errors="replace")
    if res.returncode != 0:
        raise RuntimeError("%s -h exited with %d:\n%s" %
                           (binary, res.returncode, out))
    opts = []
    for line in out.split("\n"):
        m = re.match(r"  (-[^ ].*?)(?:  |$)", line)
        if m:
            opts.extend(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)",
                                   m.group(1)))
    return opts


def check_tool(src, tool, binary):
    errors = []
    try:
        printed = help_options(binary)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return ["%s: %s" % (tool, e)]
    if not printed:
        return ["%s -h printed no options" % tool]
    text = open(os.path.join(src, "docs/tools.md")).read()
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(tool), text,
                  re.S | re.M)
    if not m:
        return ["docs/tools.md has no '## %s' section" % tool]
    documented = []
    for row in re.findall(r"^\|([^|\n]*)\|", m.group(1), re.M):
        for span in code_spans(row):
            first = span.split()[0]
            if re.match(r"--?[A-Za-z0-9]", first):
                documented.append(first)
    for opt in printed:
        if opt not in documented:
            errors.append("%s option %s is not in the option table of "
                          "docs/tools.md's '## %s' section" %
                          (tool, opt, tool))
    for opt in documented:
        if opt not in printed:
            errors.append("docs/tools.md lists %s %s, which its -h lacks" %
                          (tool, opt))
    return errors


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().split("\n")[-1], file=sys.stderr)
        return 2
    src = argv[1]
    tools = {}
    args = argv[2:]
    while args:
        if args[0] in ("--server", "--client") and len(args) > 1:
            tools["uvq-h3-" + args[0][2:]] = args[1]
            args = args[2:]
        else:
            print("unknown argument %s" % args[0], file=sys.stderr)
            return 2
    errors, nnames, nfields = check_api(src)
    for tool, binary in sorted(tools.items()):
        errors.extend(check_tool(src, tool, binary))
    for e in errors:
        print(e)
    print("checked %d names and %d fields of include/, %d tools: %s" %
          (nnames, nfields, len(tools),
           "%d problems" % len(errors) if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
