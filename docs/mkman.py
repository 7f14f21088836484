#!/usr/bin/env python3
"""mkman.py - one man page per function, generated from include/proxyshm.h.

The header is the manual; this turns each PXS_API function's doc comment
(@brief, the text after it, @param, @return, @note) into a section 3 page,
so that `man pxs_open` says what the header says and cannot drift from it.

  mkman.py --list HEADER              the function names, one a line
  mkman.py --check HEADER             exit 1 and name every function whose
                                      comment lacks a @brief, a @param for
                                      some parameter, a @return or a @note
  mkman.py --errors HEADER OUT.h      write OUT.h: for each function a
                                      macro PXS_DOC_ERRS_pxs_NAME, the
                                      errno values its @return names (the
                                      tests check results against these)
  mkman.py HEADER OUTDIR VERSION      write OUTDIR/pxs_NAME.3 for each

Only Python 3's standard library: meson needs Python 3, so every machine
that can build proxyshm can run this.
"""
import os
import re
import sys

DECL = re.compile(r"/\*\*(?P<doc>(?:(?!\*/).)*?)\*/\s*"
                  r"PXS_API\s+(?P<decl>[^;{]*?\));", re.S)
TAG = re.compile(r"^@(brief|param|return|note)(\[[a-z,]+\])?\s*(.*)$")


# What a code means wherever a list names it without a reason (the
# header's Errors section).
GENERAL = {
    "-ENOTRECOVERABLE": "a lock holder died leaving state that could not be "
                        "repaired; recreate the segment",
    "-EPROTO": "the segment failed validation",
}


def parse_decl(decl):
    """'int pxs_open(const char *name, ...)' -> (rettype, name, params)."""
    decl = " ".join(decl.split())
    head, args = decl.split("(", 1)
    args = args[:-1].strip()
    m = re.match(r"(.*?)\b(pxs_\w+)\s*$", head)
    ret, name = m.group(1).strip(), m.group(2)
    params = []
    if args and args != "void":
        for a in args.split(","):
            a = a.strip()
            pm = re.search(r"(\w+)\s*(\[[^\]]*\])?$", a)
            params.append((a, pm.group(1)))
    return ret, name, params


def parse_doc(doc):
    """Split a doc comment into brief, body paragraphs and tags."""
    lines = []
    for line in doc.split("\n"):
        line = re.sub(r"^\s*\*? ?", "", line, count=1).rstrip()
        lines.append(line)
    out = {"brief": "", "body": [], "param": [], "return": "", "note": []}
    cur = None          # (kind, index) of the tag being continued
    para = []

    def flush():
        if para:
            out["body"].append(" ".join(para))
            para.clear()

    for line in lines:
        m = TAG.match(line.strip())
        if m:
            flush()
            kind, direction, text = m.groups()
            if kind == "param":
                pname, _, rest = text.partition(" ")
                out["param"].append([pname, direction or "", rest.strip()])
                cur = ("param", len(out["param"]) - 1)
            elif kind == "note":
                out["note"].append(text)
                cur = ("note", len(out["note"]) - 1)
            else:
                out[kind] = text
                cur = (kind, None)
        elif not line.strip():
            if cur and cur[0] == "brief":
                cur = None      # the brief ends at a blank line
            flush()
        elif cur:
            kind, i = cur
            if kind == "param":
                out["param"][i][2] += " " + line.strip()
            elif kind == "note":
                out["note"][i] += " " + line.strip()
            else:
                out[kind] += " " + line.strip()
        else:
            para.append(line.strip())
    flush()
    return out


def functions(header):
    with open(header, encoding="utf-8") as f:
        text = f.read()
    for m in DECL.finditer(text):
        doc = m.group("doc")
        # The comment right above the declaration, not an earlier one.
        doc = doc.rsplit("/**", 1)[-1]
        ret, name, params = parse_decl(m.group("decl"))
        yield name, ret, params, parse_doc(doc), " ".join(
            m.group("decl").split())


def problems(name, ret, params, doc):
    found = []
    if not doc["brief"]:
        found.append("no @brief")
    documented = {p[0] for p in doc["param"]}
    for _, pname in params:
        if pname not in documented:
            found.append("no @param for " + pname)
    for p in doc["param"]:
        if p[0] not in {n for _, n in params}:
            found.append("@param " + p[0] + " is not a parameter")
        elif p[1] not in ("[in]", "[out]", "[in,out]"):
            found.append("@param " + p[0] + " says neither [in] nor [out]")
    if ret != "void" and not doc["return"]:
        found.append("no @return")
    if not doc["note"]:
        found.append("no @note (threads, processes, fork)")
    return ["%s: %s" % (name, f) for f in found]


def roff(text):
    """Doxygen markup to man(7): #sym and @p arg, `code`, escapes."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"@p\s+(\w+)", r"\\fI\1\\fP", text)
    text = re.sub(r"#(pxs_\w+(?:\.\w+)?(?:\(\))?|PXS_\w+)", r"\\fB\1\\fP",
                  text)
    text = re.sub(r"\b(pxs_\w+\(\))", r"\\fB\1\\fP", text)
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fP", text)
    text = text.replace("-", "\\-")
    text = re.sub(r"\\fB\\fB(.*?)\\fP\\fP", r"\\fB\1\\fP", text)
    return text


def lines(text):
    """A paragraph as roff lines; none may start with a control character."""
    out = roff(text)
    return out if not out.startswith((".", "'")) else "\\&" + out


def return_items(text):
    """'0, or -EINVAL (why), -ENOENT; ...' -> ('0, or', [(codes, why)]).

    Only a plain list of codes, each with an optional reason in
    parentheses, becomes a list; anything else (prose between the codes)
    stays one paragraph: (text, None)."""
    m = re.search(r"-E[A-Z]+\b", text)
    if not m:
        return text, None
    lead, rest = text[:m.start()].strip(), text[m.start():]
    items, codes, i = [], [], 0
    while i < len(rest):
        c = re.match(r"-E[A-Z]+", rest[i:])
        if not c:
            return text, None
        codes.append(c.group(0))
        i += c.end()
        why = ""
        j = i
        while j < len(rest) and rest[j] == " ":
            j += 1
        if j < len(rest) and rest[j] == "(":
            depth, k = 0, j
            for k in range(j, len(rest)):
                depth += {"(": 1, ")": -1}.get(rest[k], 0)
                if depth == 0:
                    break
            if depth:
                return text, None
            why, i = rest[j + 1:k], k + 1
        sep = re.match(r"\s*(?:[,;]\s*(?:or\s+)?|\.?\s*$)", rest[i:])
        if not sep:
            return text, None
        i += sep.end()
        if why or i >= len(rest):
            items.append((", ".join(codes), why))
            codes = []
    return lead, items


def first_sentence(text):
    """The brief up to its first full stop, for the NAME line."""
    m = re.match(r"(.+?\.)(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def page(name, ret, params, doc, decl, version):
    see = sorted(set(re.findall(r"\b(pxs_\w+)\(\)",
                                " ".join([doc["brief"], doc["return"]]
                                         + doc["body"] + doc["note"]
                                         + [p[2] for p in doc["param"]])))
                 - {name})
    out = [
        '.\\" Generated by docs/mkman.py from include/proxyshm.h: edit the',
        '.\\" header, not this page.',
        '.TH %s 3 "" "proxyshm %s" "Library Functions Manual"' %
        (name.upper().replace("_", "\\_"), version),
        ".SH NAME",
        "%s \\- %s" % (name, lines(first_sentence(doc["brief"]))),
        ".SH LIBRARY",
        "proxyshm",
        '.RI ( "pkg-config \\-\\-cflags \\-\\-libs proxyshm" )',
        ".SH SYNOPSIS",
        ".nf",
        ".B #include <proxyshm.h>",
        ".PP",
        ".B " + roff(decl.replace("PXS_API ", "")) + ";",
        ".fi",
        ".SH DESCRIPTION",
        lines(doc["brief"]),
    ]
    for p in doc["body"]:
        out += [".PP", lines(p)]
    if doc["param"]:
        out.append(".SH PARAMETERS")
        for pname, direction, text in doc["param"]:
            out += [".TP", "\\fI%s\\fP %s" % (pname, direction),
                    lines(text) or "(see above)"]
    if doc["return"]:
        out.append(".SH RETURN VALUE")
        lead, items = return_items(doc["return"])
        out.append(lines(lead))
        for codes, why in items or []:
            out += [".TP", ".B " + roff(codes)]
            why = why or GENERAL.get(codes, "")
            out.append(lines(why) if why else "\\&")
    if doc["note"]:
        out.append(".SH NOTES")
        for i, n in enumerate(doc["note"]):
            if i:
                out.append(".PP")
            out.append(lines(n))
    out.append(".SH SEE ALSO")
    refs = ["\\fBproxyshm\\fP(3)"] + ["\\fB%s\\fP(3)" % s for s in see]
    out.append(",\n".join(refs))
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) == 3 and argv[1] == "--list":
        for f in functions(argv[2]):
            print(f[0])
        return 0
    if len(argv) == 3 and argv[1] == "--check":
        bad = []
        for name, ret, params, doc, _ in functions(argv[2]):
            bad += problems(name, ret, params, doc)
        for b in bad:
            print(b)
        return 1 if bad else 0
    if len(argv) == 4 and argv[1] == "--errors":
        out = ["/* Generated by docs/mkman.py from include/proxyshm.h: the",
               " * errors each function's @return names. */",
               "#include <errno.h>"]
        for name, _, _, doc, _ in functions(argv[2]):
            codes = []
            for c in re.findall(r"-(E[A-Z]+)\b", doc["return"]):
                if c not in codes:
                    codes.append(c)
            out.append("#define PXS_DOC_ERRS_%s %s" % (name, ", ".join(codes)))
        with open(argv[3], "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        return 0
    if len(argv) == 4:
        header, outdir, version = argv[1:]
        for name, ret, params, doc, decl in functions(header):
            with open(os.path.join(outdir, name + ".3"), "w",
                      encoding="utf-8") as f:
                f.write(page(name, ret, params, doc, decl, version))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
