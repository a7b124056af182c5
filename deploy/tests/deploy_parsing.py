"""Parsers for the deployment files under test: the Dockerfile, compose.yaml, the Kubernetes
manifests, the systemd unit and the server's --help text.

Each parser returns plain Python data (dicts, lists, strings) so the tests compare values, not
formats. They accept the subset of each format these files use and raise ValueError on anything
they cannot read, so a malformed file fails the tests instead of passing them vacuously.
"""

import configparser
import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

DEPLOY_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = DEPLOY_DIR.parent


def dockerfile_stages(path):
    """Returns the Dockerfile's stages as lists of (INSTRUCTION, argument text), one list per
    FROM starting with that FROM, after joining backslash continuations and dropping comments and
    blank lines."""
    logical, pending = [], ""
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        raise ValueError(f"{path}: the last instruction ends with a continuation")
    stages = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])  # the FROM itself is the stage's first entry
        elif not stages:
            if keyword == "ARG":
                continue
            raise ValueError(f"{path}: {keyword} before the first FROM")
        stages[-1].append((keyword, rest.strip()))
    return stages


def dockerfile_args(text):
    """The argument list of an exec-form (JSON array) or shell-form instruction argument."""
    text = text.strip()
    if text.startswith("["):
        value = json.loads(text)
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"not a list of strings: {text}")
        return value
    return shlex.split(text)


def healthcheck_command(text):
    """The command of a HEALTHCHECK argument text (options such as --interval=10s stripped)."""
    options = re.match(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$", text.strip(), re.S)
    if not options:
        raise ValueError(f"HEALTHCHECK without CMD: {text}")
    return dockerfile_args(options.group(2))


def server_flags(argv):
    """The --name=value flags of a backflow-server command line (argv[0] must name the server),
    as a dict without the leading dashes; a switch (--name alone) maps to None. Bare words other
    than argv[0] are an error."""
    if not argv or Path(argv[0]).name != "backflow-server":
        raise ValueError(f"not a backflow-server command line: {argv}")
    flags = {}
    for arg in argv[1:]:
        match = re.fullmatch(r"--([a-z-]+)(?:=(.*))?", arg)
        if not match:
            raise ValueError(f"server flag not in --name=value or --name form: {arg!r}")
        flags[match.group(1)] = match.group(2)
    return flags


def client_flags(argv):
    """The --name value / --name=value flags of a backflow or backflow-load command line."""
    flags, i = {}, 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            flags[name] = value
        i += 1
    return flags


def load_yaml_documents(paths):
    """Every YAML document in the given files, with None (empty documents) dropped."""
    documents = []
    for path in paths:
        with open(path) as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc is not None)
    return documents


def systemd_unit(path):
    """The unit file's sections as {section: {key: value}}; a repeated key keeps the last value,
    as systemd does for the keys this unit uses."""
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(Path(path).read_text(), source=str(path))
    return {section: dict(parser[section]) for section in parser.sections()}


_DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def duration_seconds(text):
    """Seconds in a compose duration ("30s", "1m30s") or a systemd time span ("30", "1min 30s").
    A bare number is seconds (systemd's rule)."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h)", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h)|\s", "", text):
        raise ValueError(f"unreadable duration: {text!r}")
    return sum(float(value) * _DURATION_UNITS[unit] for value, unit in parts)


def server_help(binary):
    """{flag name: default text or None} from `backflow-server --help`."""
    result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise ValueError(f"{binary} --help exited {result.returncode}: {result.stderr}")
    flags, current = {}, None
    for line in result.stdout.splitlines():
        match = re.match(r"\s+--([a-z-]+)(?:=\S+)?\s", line)  # --name=VALUE or a switch
        if match:
            current = match.group(1)
            flags[current] = None
        if current:
            default = re.search(r"\(default ([^;)]+)", line)
            if default and flags[current] is None:
                flags[current] = default.group(1).strip()
    if not flags:
        raise ValueError(f"no flags in {binary} --help:\n{result.stdout}")
    return flags


def health_service_name():
    """The fully qualified name of the backflow service, from the proto the server implements."""
    text = (SOURCE_DIR / "proto/backflow/v1/service.proto").read_text()
    package = re.search(r"^package\s+([\w.]+)\s*;", text, re.M).group(1)
    service = re.search(r"^service\s+(\w+)\s*\{", text, re.M).group(1)
    return f"{package}.{service}"


def linked_packages(binary):
    """library path -> the Debian package it comes from, for every shared library `binary`
    loads (ldd); ValueError if ldd cannot resolve one or no package owns it."""
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    libraries = []
    for line in out.splitlines():
        match = re.match(r"\s*(\S+) => (\S+)", line)
        if match and match.group(2) == "not":
            raise ValueError(f"{binary}: {match.group(1)} not found")
        if match:
            libraries.append(match.group(2))
    # One dpkg -S for all of them, under the name ldd gives and its target (merged /usr).
    candidates = {c: lib for lib in libraries for c in (lib, str(Path(lib).resolve()))}
    found = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True).stdout
    packages = {}
    for line in found.splitlines():
        package, _, path = line.partition(": ")
        if path in candidates:
            packages[candidates[path]] = package.split(":")[0]
    missing = [lib for lib in libraries if lib not in packages]
    if missing:
        raise ValueError(f"{binary}: no package owns {missing}")
    return packages


def package_closure(packages):
    """`packages` and everything they depend on (Depends and Pre-Depends, every alternative),
    as dpkg on this machine knows them."""
    seen, pending = set(), list(packages)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        fields = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", name],
                                capture_output=True, text=True)
        if fields.returncode != 0:
            continue
        for item in re.split(r"[,|]", fields.stdout):
            dependency = re.sub(r"\(.*?\)|:\w+", "", item).strip()
            if dependency:
                pending.append(dependency)
    return seen


def systemd_unit_values(path):
    """The unit file's sections as {section: {key: [values]}}, every value of a repeated key in
    order (LoadCredential= and the like add one entry per line)."""
    sections, current = {}, None
    pending = ""
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"{path}: not a key=value line in a section: {raw!r}")
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def gen_certs_default_hosts():
    """The host names deploy/gen-certs.sh puts into the server certificate by default."""
    text = (DEPLOY_DIR / "gen-certs.sh").read_text()
    match = re.search(r'^hosts="([^"]+)"$', text, re.M)
    if not match:
        raise ValueError("deploy/gen-certs.sh: no hosts=\"...\" default")
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


def rewrite_flags(argv, values):
    """argv with the value of each --name (as --name VALUE or --name=VALUE) in `values`
    replaced; a flag of `values` that argv lacks is added after argv[0] (as --name VALUE)."""
    out, seen, i = [argv[0]], set(), 1
    while i < len(argv):
        arg = argv[i]
        name, eq, _ = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in values:
            seen.add(name)
            if eq:
                out.append(f"--{name}={values[name]}")
            else:
                out += [arg, values[name]]
                i += 1  # the old value
        else:
            out.append(arg)
        i += 1
    missing = [item for name, value in values.items() if name not in seen
               for item in (f"--{name}", value)]
    return out[:1] + missing + out[1:]
