#!/usr/bin/env python3
"""check-sizes: C++ files over 400 lines and functions over 60 lines.

Scans the non-test C++ sources (*.h, *.cc under engine/, server/, clients/ and bench/ by
default; tests, test helpers and generated code are skipped) and prints one line per offender:

    path:line name (N lines)

`name` is a function's name as written where it is defined (qualified by its class for a
member defined in the class body), or "(file)" for a file too long, whose line is then 1. A
function's lines run from the line of its name to the line of its closing brace. Exits 1 if
anything is listed, 0 if not, 2 for a bad argument.

Functions are found by a brace-matching heuristic, not a parser: after comments, literals and
preprocessor lines are blanked, a `{` at namespace or class level that follows `)` (possibly
followed by const, override, noexcept, `-> type` and the like, or by a constructor's
initializer list) opens a function body, and everything up to its matching `}` (lambdas and
local classes included) counts toward that function. Other braces at those levels open a
namespace, a class (searched in turn) or an initializer or enum (skipped).

Usage: scripts/check-sizes.py [--max-file-lines N] [--max-function-lines N] [PATH ...]
PATHs (files or folders, relative to the repository root) default to the four trees above.
"""

import argparse
import os
import re
import sys

DEFAULT_ROOTS = ("engine", "server", "clients", "bench")
EXTENSIONS = (".h", ".cc")
TEST_DIRS = {"tests", "test", "testing"}
GENERATED_MARKERS = (".pb.h", ".pb.cc", ".grpc.pb.", "_generated.")

# Tokens that may stand between a parameter list's `)` and the body's `{`.
QUALIFIERS = {"const", "volatile", "override", "final", "noexcept", "mutable", "constexpr",
              "&", "&&", "try"}
# Words before a `(...)` that belongs to a qualifier rather than to the parameters.
QUALIFIER_CALLS = {"noexcept", "throw", "requires", "alignas", "__attribute__"}
# Tokens that may make up a trailing return type (after `->`).
TYPE_TOKENS = {"::", "<", ">", ">>", "*", "&", "&&", ",", "const", "volatile", "(", ")"}

TOKEN_RE = re.compile(r"""
    (?P<ident>[A-Za-z_~][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[0-9A-Za-z_.']|[eEpP][+-])*)
  | (?P<punct>::|->\*?|\.\.\.|<<=?|>>=?|&&|\|\||[-+*/%^&|!=<>]=|\+\+|--|[{}()\[\];:,.<>?~!=+\-*/%^&|#])
""", re.VERBOSE)


def blank(text):
    """The text with comments, string and character literals and preprocessor lines replaced by
    spaces (newlines kept, so line numbers still hold)."""
    out = []
    i, n = 0, len(text)
    line_start = True  # only whitespace since the last newline
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if line_start and c == "#":
            # A preprocessor directive, with its continuation lines (and comments in them).
            j = i
            while j < n:
                if text[j] == "\n" and text[j - 1] != "\\":
                    break
                if text.startswith("/*", j):
                    end = text.find("*/", j + 2)
                    j = n if end < 0 else end + 2
                    continue
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        raw = re.match(r'(?:u8|u|U|L)?R"([^()\\\s]{0,16})\(', text[i:i + 24])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = ")" + raw.group(1) + '"'
            end = text.find(close, i + raw.end())
            end = n if end < 0 else end + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        if c in "\"'":
            if c == "'" and i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                # A digit separator (1'000) or a prefix such as u8'x': not a literal's start
                # unless the word before it is an encoding prefix.
                word = re.search(r"[A-Za-z0-9_]+$", text[max(0, i - 8):i]).group(0)
                if word not in ("u8", "u", "U", "L"):
                    out.append(c)
                    i += 1
                    continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(text):
    """(token, line) pairs of blanked text."""
    tokens = []
    line = 1
    pos = 0
    for m in TOKEN_RE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        tokens.append((m.group(0), line))
    return tokens


def match_backward(tokens, close_index, open_tok, close_tok):
    """Index of the token opening the group that tokens[close_index] closes, or -1."""
    depth = 0
    for k in range(close_index, -1, -1):
        tok = tokens[k][0]
        if tok == close_tok:
            depth += 1
        elif tok == open_tok:
            depth -= 1
            if depth == 0:
                return k
    return -1


def match_forward(tokens, open_index):
    """Index of the `}` closing the `{` at tokens[open_index] (the last token if unbalanced)."""
    depth = 0
    for k in range(open_index, len(tokens)):
        tok = tokens[k][0]
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(tokens) - 1


def skip_qualifiers(prefix, i):
    """Steps back from prefix[i] over what may follow a parameter list."""
    while i >= 0:
        tok = prefix[i][0]
        if tok in QUALIFIERS:
            i -= 1
        elif tok == ")":
            k = match_backward(prefix, i, "(", ")")
            if k > 0 and prefix[k - 1][0] in QUALIFIER_CALLS:
                i = k - 2
            else:
                return i
        elif tok == "]" and i > 0 and prefix[i - 1][0] == "]":  # [[attribute]]
            k = match_backward(prefix, i, "[", "]")
            i = k - 1 if k > 0 else -1
        else:
            return i
    return i


def parameter_list_end(prefix):
    """Index of the `)` ending the parameter list of the function whose body follows `prefix`,
    or -1 if the `{` after `prefix` does not open a function body."""
    i = len(prefix) - 1
    words = [t for t, _ in prefix]
    if "requires" in words:  # a trailing requires-clause: `(...) requires C<T> {`
        i = len(words) - 1 - words[::-1].index("requires") - 1
    i = skip_qualifiers(prefix, i)
    if i >= 0 and prefix[i][0] != ")":
        # A trailing return type: `) -> type {`.
        arrow = None
        for k in range(i, -1, -1):
            tok = prefix[k][0]
            if tok == "->":
                arrow = k
                break
            if not (tok in TYPE_TOKENS or re.match(r"[A-Za-z_0-9]", tok)):
                break
        if arrow is None:
            return -1
        i = skip_qualifiers(prefix, arrow - 1)
    if i < 0 or prefix[i][0] != ")":
        return -1
    # A constructor's initializer list `(...) : a_(x), b_(y)`: the parameters are the `(...)`
    # before the top-level `:`.
    depth = 0
    for k in range(i, -1, -1):
        tok = prefix[k][0]
        if tok in (")", "]"):
            depth += 1
        elif tok in ("(", "["):
            depth -= 1
        elif tok == ":" and depth == 0 and _after_parameters(prefix, k):
            return skip_qualifiers(prefix, k - 1)
        elif tok in ("?", "=") and depth == 0:
            break
    return i


def _after_parameters(prefix, colon):
    """Whether the `:` at prefix[colon] follows a parameter list (and its qualifiers)."""
    i = skip_qualifiers(prefix, colon - 1)
    return i >= 0 and prefix[i][0] == ")"


def function_name(prefix, close_index):
    """(name, line) of the function whose parameter list ends at prefix[close_index]."""
    open_index = match_backward(prefix, close_index, "(", ")")
    k = open_index - 1
    if k < 0:
        return "(anonymous)", prefix[close_index][1]
    tok, line = prefix[k]
    if tok == "]":  # a lambda: named after what it initializes
        for j in range(k, -1, -1):
            if prefix[j][0] == "=" and j > 0:
                return prefix[j - 1][0] + " (lambda)", prefix[j - 1][1]
        return "(lambda)", line
    parts = []
    if tok == ")" and k >= 2 and prefix[k - 1][0] == "(" and prefix[k - 2][0] == "operator":
        parts = ["operator()"]
        k -= 3
    elif not re.match(r"[A-Za-z_~]", tok):
        # operator==, operator<< and the like
        j = k
        while j >= 0 and not re.match(r"[A-Za-z_]", prefix[j][0]):
            j -= 1
        if j >= 0 and prefix[j][0] == "operator":
            parts = ["operator" + "".join(t for t, _ in prefix[j + 1:k + 1])]
            k = j - 1
        else:
            return tok, line
    else:
        parts = [tok]
        k -= 1
    # Qualifiers: A::B<T>::name
    while k >= 1 and prefix[k][0] == "::":
        j = k - 1
        if prefix[j][0] == ">":
            m = match_backward(prefix, j, "<", ">")
            if m <= 0:
                break
            parts.insert(0, "".join(t for t, _ in prefix[m - 1:j + 1]) + "::")
            k = m - 2
        elif re.match(r"[A-Za-z_]", prefix[j][0]):
            parts.insert(0, prefix[j][0] + "::")
            k = j - 1
        else:
            break
    first_line = prefix[k + 1][1] if k + 1 < len(prefix) else line
    return "".join(parts), first_line


def scope_kind(prefix):
    """What a `{` after `prefix` (at namespace or class level) opens."""
    words = [t for t, _ in prefix]
    if parameter_list_end(prefix) >= 0:
        return "function"
    if "enum" in words:
        return "other"
    if "namespace" in words or (words and words[0] == "extern"):
        return "namespace"
    if any(w in ("class", "struct", "union") for w in words) and "=" not in words:
        return "class"
    return "other"


def class_name(prefix):
    words = [t for t, _ in prefix]
    for k, w in enumerate(words):
        if w in ("class", "struct", "union"):
            depth = 0  # inside [[attributes]] or alignas(...)
            for x in words[k + 1:]:
                if x in ("[", "("):
                    depth += 1
                elif x in ("]", ")"):
                    depth -= 1
                elif depth == 0 and re.match(r"[A-Za-z_]", x) and x != "alignas":
                    return x
            return None
    return None


def find_functions(tokens):
    """(name, first line, last line) of every function body in a token list."""
    functions = []

    def scan(begin, end, classes):
        prefix = []
        k = begin
        while k < end:
            tok, line = tokens[k]
            if tok in (";", "}"):
                prefix = []
                k += 1
                continue
            if tok == ":" and prefix and prefix[-1][0] in ("public", "private", "protected"):
                prefix = []
                k += 1
                continue
            if tok != "{":
                prefix.append(tokens[k])
                k += 1
                continue
            close = match_forward(tokens, k)
            kind = scope_kind(prefix)
            if kind == "function":
                name, first = function_name(prefix, parameter_list_end(prefix))
                if "::" not in name and classes:
                    name = "::".join(classes) + "::" + name
                functions.append((name, first, tokens[close][1]))
                prefix = []
            elif kind in ("namespace", "class"):
                inner = classes + [class_name(prefix)] if kind == "class" else classes
                scan(k + 1, close, [c for c in inner if c])
                prefix = []
            elif _in_initializer_list(prefix):
                # `: a_{x}` in a constructor's initializer list: the body is still to come.
                prefix = prefix + [("{", line), ("}", tokens[close][1])]
            else:
                prefix = []
            k = close + 1

    scan(0, len(tokens), [])
    return functions


def _in_initializer_list(prefix):
    depth = 0
    for k in range(len(prefix) - 1, 0, -1):
        tok = prefix[k][0]
        if tok in (")", "]"):
            depth += 1
        elif tok in ("(", "["):
            depth -= 1
        elif tok == ":" and depth == 0 and _after_parameters(prefix, k):
            return True
        elif tok in ("=", ";") and depth == 0:
            return False
    return False


def is_checked(path):
    parts = path.replace(os.sep, "/").split("/")
    name = parts[-1]
    if not name.endswith(EXTENSIONS):
        return False
    if any(p in TEST_DIRS for p in parts[:-1]):
        return False
    if re.search(r"(_test|_tests|_unittest|_test_util|_fixture)\.(h|cc)$", name):
        return False
    return not any(marker in name for marker in GENERATED_MARKERS)


def source_files(root, paths):
    for path in paths:
        full = os.path.join(root, path)
        if os.path.isfile(full):
            if is_checked(path):
                yield path
            continue
        for directory, dirs, files in os.walk(full):
            dirs[:] = sorted(d for d in dirs if d not in TEST_DIRS and not d.startswith("."))
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(directory, name), root)
                if is_checked(rel):
                    yield rel


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-file-lines", type=int, default=400)
    parser.add_argument("--max-function-lines", type=int, default=60)
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_ROOTS))
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in args.paths:
        if not os.path.exists(os.path.join(root, path)):
            print(f"check-sizes: {path}: no such file or folder", file=sys.stderr)
            return 2

    offenders = []
    for path in source_files(root, args.paths):
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > args.max_file_lines:
            offenders.append(f"{path}:1 (file) ({lines} lines)")
        for name, first, last in find_functions(tokenize(blank(text))):
            length = last - first + 1
            if length > args.max_function_lines:
                offenders.append(f"{path}:{first} {name} ({length} lines)")
    for line in offenders:
        print(line)
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
