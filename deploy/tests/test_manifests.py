"""Checks that every deployment file agrees with the server and with each other: the port (50051)
in --listen, EXPOSE, ports and probes; the health check (grpc.health.v1 with the service the
server registers); the data path (--data-dir, VOLUME, mounts, StateDirectory); the stop timeouts
(longer than --shutdown-grace-ms); a non-root user; TLS and tokens (compose, Kubernetes and
systemd serve --tls-cert/--tls-key with --auth-tokens, from the secrets or credentials each file
mounts, and their health checks speak TLS). The server's flags and defaults come from the real
binary ($BACKFLOW_SERVER_BINARY), which also has to start with each file's command line (its
certificate, key and token paths replaced by files deploy/gen-certs.sh makes) and answer each
file's health check, run with the built `backflow` CLI.
"""

import hashlib
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path, PurePosixPath

import pytest

import deploy_parsing as dp

PORT = 50051
METRICS_PORT = 9464  # --metrics-listen in the containers (docs/observability.md)
DATA_DIR = "/var/lib/backflow"
MODELS_DIR = "/usr/local/share/backflow/models"
BASE_IMAGE = "debian:bookworm-slim"  # the name deploy/verify-image.sh imports its root as

# ---- the files, parsed once ----

DOCKER_STAGES = dp.dockerfile_stages(dp.SOURCE_DIR / "Dockerfile")
RUNTIME = DOCKER_STAGES[-1]
COMPOSE = dp.load_yaml_documents([dp.DEPLOY_DIR / "compose.yaml"])[0]
K8S = dp.load_yaml_documents(sorted((dp.DEPLOY_DIR / "k8s").glob("*.yaml")))
UNIT = dp.systemd_unit(dp.DEPLOY_DIR / "systemd/backflow.service")
UNIT_VALUES = dp.systemd_unit_values(dp.DEPLOY_DIR / "systemd/backflow.service")


def instructions(stage, keyword):
    return [text for kw, text in stage if kw == keyword]


def only(items, what):
    assert len(items) == 1, f"expected one {what}, found {len(items)}: {items}"
    return items[0]


def k8s_objects(kind):
    return [doc for doc in K8S if doc.get("kind") == kind]


STATEFULSET = only(k8s_objects("StatefulSet"), "StatefulSet")
POD = STATEFULSET["spec"]["template"]["spec"]
CONTAINER = only(POD["containers"], "container")

# Every backflow-server command line, by where it comes from.
SERVER_COMMANDS = {
    "Dockerfile CMD": dp.dockerfile_args(only(instructions(RUNTIME, "CMD"), "CMD")),
    "compose server": COMPOSE["services"]["server"]["command"],
    "k8s StatefulSet": CONTAINER["command"] + CONTAINER.get("args", []),
    "systemd ExecStart": UNIT["Service"]["ExecStart"].split(),
}
SERVER_FLAGS = {name: dp.server_flags(argv) for name, argv in SERVER_COMMANDS.items()}

# The files that serve TLS with tokens; the Dockerfile's CMD is the image's default, which can
# carry no secrets, and says --insecure.
SECURED = ("compose server", "k8s StatefulSet", "systemd ExecStart")
# Server flags naming a file, and what deploy/gen-certs.sh (or the test's token file) puts there.
SERVER_FILE_FLAGS = {"tls-cert": "server.pem", "tls-key": "server.key",
                     "tls-client-ca": "ca.pem", "auth-tokens": "tokens.txt"}
CLIENT_FILE_FLAGS = {"tls-ca": "ca.pem", "tls-cert": "client.pem", "tls-key": "client.key"}
HEALTH_SERVICE = "backflow.v1.Backflow"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

# Each file's health checks: `backflow ... health` command lines that must succeed against the
# server started with that file's flags.
HEALTH_COMMANDS = {
    "Dockerfile CMD": [dp.healthcheck_command(
        only(instructions(RUNTIME, "HEALTHCHECK"), "HEALTHCHECK"))],
    "compose server": [COMPOSE["services"]["server"]["healthcheck"]["test"][1:]],
    "k8s StatefulSet": [CONTAINER[probe]["exec"]["command"] for probe in PROBES
                        if "exec" in CONTAINER.get(probe, {})],
    "systemd ExecStart": [],
}


@pytest.fixture(scope="module")
def server_binary():
    binary = os.environ.get("BACKFLOW_SERVER_BINARY",
                            str(dp.SOURCE_DIR / "build/bin/backflow-server"))
    if not Path(binary).is_file():
        pytest.skip(f"no server binary at {binary} (set BACKFLOW_SERVER_BINARY)")
    return binary


@pytest.fixture(scope="module")
def server_help(server_binary):
    return dp.server_help(server_binary)


@pytest.fixture(scope="module")
def client_binary(server_binary):
    binary = Path(server_binary).parent / "backflow"
    if not binary.is_file():
        pytest.fail(f"no backflow CLI beside the server at {binary}")
    return binary


@pytest.fixture(scope="module")
def test_files(tmp_path_factory):
    """A CA, server and client certificates from deploy/gen-certs.sh, and a token file."""
    directory = tmp_path_factory.mktemp("secrets")
    result = subprocess.run(["bash", str(dp.DEPLOY_DIR / "gen-certs.sh"), str(directory)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(b"deploy-test-token").hexdigest()
    (directory / "tokens.txt").write_text(f"sha256:{digest} admin name=deploy-test\n")
    return directory


def grace_seconds(flags, help_defaults):
    return int(flags.get("shutdown-grace-ms", help_defaults["shutdown-grace-ms"])) / 1000


# ---- the server itself ----

def test_server_default_port_is_the_deployed_port(server_help):
    assert server_help["listen"] == f"127.0.0.1:{PORT}"
    assert int(server_help["shutdown-grace-ms"]) > 0


@pytest.mark.parametrize("source", sorted(SERVER_FLAGS))
def test_command_uses_only_flags_the_server_has(source, server_help):
    unknown = set(SERVER_FLAGS[source]) - set(server_help)
    assert not unknown, f"{source}: flags the server does not know: {sorted(unknown)}"


@pytest.mark.parametrize("source", sorted(SERVER_FLAGS))
def test_command_listens_on_the_port_and_serves_the_data_dir(source):
    flags = SERVER_FLAGS[source]
    assert flags["listen"].rsplit(":", 1)[1] == str(PORT)
    assert flags["data-dir"] == DATA_DIR
    if source != "systemd ExecStart":  # in a container 127.0.0.1 is unreachable from outside
        assert flags["listen"] == f"0.0.0.0:{PORT}"
        # ... for Prometheus too; on a host (systemd) the default 127.0.0.1:9464 serves it.
        assert flags["metrics-listen"] == f"0.0.0.0:{METRICS_PORT}"


@pytest.mark.parametrize("source", sorted(SERVER_FLAGS))
def test_a_non_loopback_listen_says_how_callers_are_checked(source):
    """The server refuses a non-loopback --listen without --auth-tokens or --insecure."""
    flags = SERVER_FLAGS[source]
    if not flags["listen"].startswith("127."):
        assert "auth-tokens" in flags or "insecure" in flags, f"{source}: {flags}"


def test_all_commands_use_one_grace(server_help):
    graces = {name: grace_seconds(flags, server_help) for name, flags in SERVER_FLAGS.items()}
    assert len(set(graces.values())) == 1, graces


@pytest.mark.parametrize("source", SECURED)
def test_the_deployments_serve_tls_with_tokens(source):
    flags = SERVER_FLAGS[source]
    assert {"tls-cert", "tls-key", "auth-tokens"} <= flags.keys(), f"{source}: {flags}"
    assert "insecure" not in flags, f"{source}: --insecure beside TLS and tokens"


@pytest.mark.parametrize("source", sorted(SERVER_FLAGS))
def test_server_starts_serves_its_health_check_and_drains(source, server_binary, client_binary,
                                                          test_files):
    """Runs the real server with the file's flags (--listen, --metrics-listen and --data-dir moved
    to free local ports and a temp dir, the certificate, key and token files to test files of the
    same kind): it must start serving, answer SERVING to each of the file's health checks (run with the
    built CLI against that port, its CA path moved to the test CA), then exit 0 on SIGTERM."""
    flags = dict(SERVER_FLAGS[source], listen="127.0.0.1:0")
    flags["metrics-listen"] = "127.0.0.1:0"
    for name, file_name in SERVER_FILE_FLAGS.items():
        if name in flags:
            flags[name] = str(test_files / file_name)
    with tempfile.TemporaryDirectory() as data_dir:
        flags["data-dir"] = data_dir
        argv = [server_binary] + [f"--{name}" if value is None else f"--{name}={value}"
                                  for name, value in flags.items()]
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log)
            try:
                deadline, listening = time.monotonic() + 20, None
                while time.monotonic() < deadline and proc.poll() is None and not listening:
                    log.seek(0)
                    listening = re.search(r"listening on (127\.0\.0\.1:\d+)", log.read())
                    time.sleep(0.05)
                log.seek(0)
                output = log.read()
                assert proc.poll() is None, f"server exited {proc.returncode}:\n{output}"
                assert listening, f"no 'listening on' within 20 s:\n{output}"
                for command in HEALTH_COMMANDS[source]:
                    values = {"server": listening.group(1)}
                    values.update({name: str(test_files / file_name) for name, file_name in
                                   CLIENT_FILE_FLAGS.items() if name in dp.client_flags(command)})
                    check = [str(client_binary)] + dp.rewrite_flags(command, values)[1:]
                    result = subprocess.run(check, capture_output=True, text=True, timeout=30,
                                            env=dict(os.environ, BACKFLOW_TOKEN=""))
                    assert (result.returncode, result.stdout) == (0, "SERVING\n"), (
                        f"{check}: {result.stdout}{result.stderr}")
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)


def test_every_health_check_is_tried():
    """The health checks above exist where they should: a file that lost its probes would pass
    the start-up test vacuously."""
    assert len(HEALTH_COMMANDS["Dockerfile CMD"]) == 1
    assert len(HEALTH_COMMANDS["compose server"]) == 1
    assert len(HEALTH_COMMANDS["k8s StatefulSet"]) == len(PROBES)


def test_health_checks_trust_a_ca_and_address_a_name_the_test_certificate_holds():
    """Each TLS deployment's health check passes --tls-ca, and connects by a host name
    deploy/gen-certs.sh puts into the server certificate by default."""
    hosts = dp.gen_certs_default_hosts()
    for source in SECURED:
        for command in HEALTH_COMMANDS[source]:
            flags = dp.client_flags(command)
            assert "tls-ca" in flags, f"{source}: {command}"
            assert flags["server"].rsplit(":", 1)[0] in hosts, f"{source}: {command}"


# ---- Dockerfile ----

def test_dockerfile_builds_from_the_base_image_and_has_a_build_stage():
    assert len(DOCKER_STAGES) >= 2, "multi-stage: a build stage and a runtime stage"
    for stage in DOCKER_STAGES:
        assert only(instructions(stage, "FROM"), "FROM").split()[0] == BASE_IMAGE
    runtime_installs = " ".join(t for t in instructions(RUNTIME, "RUN") if "apt-get install" in t)
    assert runtime_installs, "the runtime stage installs the shared libraries"
    assert not re.search(r"\S+-dev\b", runtime_installs), runtime_installs


def test_dockerfile_runs_as_the_created_non_root_user():
    user = only(instructions(RUNTIME, "USER"), "USER").split(":")
    assert user[0].isdigit() and int(user[0]) != 0, f"USER must be a numeric non-root uid: {user}"
    created = " ".join(instructions(RUNTIME, "RUN"))
    assert f"--uid {user[0]}" in created
    assert f"chown {user[0]}:{user[1]} {DATA_DIR}" in created


def test_dockerfile_exposes_the_port_and_the_data_volume():
    assert only(instructions(RUNTIME, "EXPOSE"), "EXPOSE").split() == [str(PORT),
                                                                      str(METRICS_PORT)]
    assert dp.dockerfile_args(only(instructions(RUNTIME, "VOLUME"), "VOLUME")) == [DATA_DIR]
    assert only(instructions(RUNTIME, "STOPSIGNAL"), "STOPSIGNAL") == "SIGTERM"


def test_dockerfile_ships_what_make_install_installs():
    """The build stage stages `cmake --install` (binaries, protos, models, the Python package)
    and the runtime stage copies that tree to /usr/local, with the libraries it links and the
    Python client's interpreter and packages."""
    build = " ".join(instructions(DOCKER_STAGES[0], "RUN"))
    for target in ("backflow-server", "backflow", "backflow-load", "backflow_python"):
        assert re.search(rf"--target [^&]*\b{target}\b", build), f"{target} not built"
    assert "DESTDIR=/stage cmake --install build/release --prefix /usr/local" in build
    assert " ".join(instructions(RUNTIME, "COPY")).split() == [
        "--from=build", "/stage/usr/local/", "/usr/local/"]
    installs = " ".join(t for t in instructions(RUNTIME, "RUN") if "apt-get install" in t)
    for package in ("python3", "python3-grpcio", "python3-protobuf", "python3-numpy"):
        assert re.search(rf"\s{re.escape(package)}\s", installs + " "), package


# The sanitizer runtimes a `make asan` / `make tsan` build links; the image is a release build.
SANITIZER_RUNTIMES = re.compile(r"^lib(asan|ubsan|tsan|lsan)\d+$")


def test_dockerfile_runtime_has_every_library_the_binaries_link(server_binary):
    """Each shared library of the three binaries (ldd) comes from a package the runtime stage
    installs, or from one of their dependencies (checked against dpkg on this machine)."""
    installs = " ".join(t for t in instructions(RUNTIME, "RUN") if "apt-get install" in t)
    wanted = set(re.findall(r"\b(lib[\w.+-]+|zlib1g)\b", installs))
    closure = dp.package_closure(wanted)
    bin_dir = Path(server_binary).parent
    for binary in ("backflow-server", "backflow", "backflow-load"):
        for library, package in dp.linked_packages(bin_dir / binary).items():
            if SANITIZER_RUNTIMES.match(package):
                continue
            assert package in closure, f"{binary} links {library} from {package}, not installed"


def test_dockerfile_healthcheck_asks_the_server_in_the_container():
    command = dp.healthcheck_command(only(instructions(RUNTIME, "HEALTHCHECK"), "HEALTHCHECK"))
    assert command[0] == "backflow" and command[-1] == "health", command
    env = " ".join(instructions(RUNTIME, "ENV"))
    target = dp.client_flags(command).get("server") or re.search(
        r"BACKFLOW_SERVER=(\S+)", env).group(1)
    assert target == f"127.0.0.1:{PORT}"


def test_dockerignore_keeps_host_state_out_of_the_context():
    ignored = {line.strip().rstrip("/") for line in
               (dp.SOURCE_DIR / ".dockerignore").read_text().splitlines()}
    assert {"build", "backflow-data", ".git"} <= ignored


# ---- compose ----

def test_compose_server_port_volume_and_health():
    server = COMPOSE["services"]["server"]
    published = [str(port).rsplit(":", 1)[1] for port in server["ports"]]
    assert published == [str(PORT), str(METRICS_PORT)], server["ports"]
    source, target = only(server["volumes"], "server volume").split(":")[:2]
    assert target == DATA_DIR
    assert source in COMPOSE["volumes"], f"{source} must be a named (persistent) volume"
    test = server["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "backflow" and test[-1] == "health", test
    assert dp.client_flags(test[1:])["server"] == f"127.0.0.1:{PORT}"


def test_compose_stop_grace_exceeds_the_drain(server_help):
    server = COMPOSE["services"]["server"]
    assert server.get("stop_signal", "SIGTERM") == "SIGTERM"
    grace = grace_seconds(SERVER_FLAGS["compose server"], server_help)
    assert dp.duration_seconds(server["stop_grace_period"]) > grace


def compose_secret_path(service, path):
    """The host file (relative to compose.yaml) behind `path`, a /run/secrets/NAME of a secret
    the service mounts."""
    mounted = COMPOSE["services"][service].get("secrets", [])
    name = PurePosixPath(path).name
    assert str(PurePosixPath(path).parent) == "/run/secrets", path
    assert name in mounted, f"{service} does not mount the secret {name}: {mounted}"
    return COMPOSE["secrets"][name]["file"]


def test_compose_server_files_are_the_secrets_gen_certs_makes():
    flags = SERVER_FLAGS["compose server"]
    files = {name: compose_secret_path("server", flags[name])
             for name in ("tls-cert", "tls-key", "auth-tokens")}
    assert files == {"tls-cert": "./secrets/server.pem", "tls-key": "./secrets/server.key",
                     "auth-tokens": "./secrets/tokens.txt"}
    health = dp.client_flags(COMPOSE["services"]["server"]["healthcheck"]["test"][1:])
    assert compose_secret_path("server", health["tls-ca"]) == "./secrets/ca.pem"
    # Nothing mounts the CA's key or a client key.
    assert all(not secret["file"].endswith(("ca.key", "client.key"))
               for secret in COMPOSE["secrets"].values())


def test_compose_load_job_targets_the_healthy_server():
    load = COMPOSE["services"]["load"]
    assert load["depends_on"]["server"]["condition"] == "service_healthy"
    assert Path(load["command"][0]).name == "backflow-load"
    flags = dp.client_flags(load["command"])
    host, port = flags["server"].rsplit(":", 1)
    aliases = COMPOSE["services"]["server"]["networks"]["default"]["aliases"]
    assert port == str(PORT) and host in ["server"] + aliases, flags["server"]
    assert host in dp.gen_certs_default_hosts(), "the certificate must hold the name it calls"
    assert compose_secret_path("load", flags["tls-ca"]) == "./secrets/ca.pem"
    assert "BACKFLOW_TOKEN" in load["environment"], "the load job needs a token"
    model = Path(flags["model"])
    assert str(model.parent).startswith(MODELS_DIR)
    assert (dp.SOURCE_DIR / "models" / model.relative_to(MODELS_DIR)).is_file()


# ---- Kubernetes ----

def test_k8s_probes_ask_grpc_health_about_the_backflow_service_over_tls():
    """kubelet's native grpc probe does not speak TLS: the probes run `backflow health` in the
    container, against the local port, with the CA of the server's Secret."""
    service_name = dp.health_service_name()
    assert service_name == HEALTH_SERVICE
    tls_dir = str(PurePosixPath(SERVER_FLAGS["k8s StatefulSet"]["tls-cert"]).parent)
    for probe in PROBES:
        command = CONTAINER[probe]["exec"]["command"]
        assert command[0] == "backflow" and "health" in command, probe
        assert command[command.index("health"):] == ["health", "--service", service_name]
        flags = dp.client_flags(command[:command.index("health")])
        assert flags["server"] == f"127.0.0.1:{PORT}", probe
        assert flags["tls-ca"] == f"{tls_dir}/ca.crt", probe
        assert "token" not in flags, "health needs no token"
        # The CLI's own deadline ends before kubelet gives up on the probe.
        assert float(flags["timeout"]) < CONTAINER[probe]["timeoutSeconds"], probe


def test_k8s_server_files_come_from_whole_secret_mounts():
    """--tls-cert/--tls-key name tls.crt/tls.key of one kubernetes.io/tls Secret volume and
    --auth-tokens tokens.txt of another, mounted read-only without subPath (so updated Secrets
    reach the running server), readable by the pod's group and nobody else."""
    flags = SERVER_FLAGS["k8s StatefulSet"]
    mounts = {m["mountPath"]: m for m in CONTAINER["volumeMounts"]}
    volumes = {v["name"]: v for v in POD["volumes"]}
    expected = {"tls-cert": "tls.crt", "tls-key": "tls.key", "auth-tokens": "tokens.txt"}
    secrets = {}
    for flag, key in expected.items():
        path = PurePosixPath(flags[flag])
        assert path.name == key, f"--{flag}={path}"
        mount = mounts[str(path.parent)]
        assert mount.get("readOnly") is True and "subPath" not in mount, mount
        secret = volumes[mount["name"]]["secret"]
        assert "items" not in secret, "every key of the Secret under its own name"
        assert secret["defaultMode"] & 0o007 == 0, oct(secret["defaultMode"])
        secrets[flag] = secret["secretName"]
    assert secrets["tls-cert"] == secrets["tls-key"] != secrets["auth-tokens"]


def test_k8s_container_port_and_services():
    assert CONTAINER["ports"] == [
        {"name": "grpc", "containerPort": PORT, "protocol": "TCP"},
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    annotations = STATEFULSET["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    labels = STATEFULSET["spec"]["template"]["metadata"]["labels"]
    services = {svc["metadata"]["name"]: svc for svc in k8s_objects("Service")}
    headless = services[STATEFULSET["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert any(svc["spec"].get("clusterIP") != "None" for svc in services.values())
    for svc in services.values():
        assert svc["spec"]["selector"].items() <= labels.items()
        port = only(svc["spec"]["ports"], "service port")
        assert port["port"] == PORT and port["targetPort"] in ("grpc", PORT)


def test_k8s_data_dir_is_a_per_pod_claim_owned_by_the_image_user():
    claims = {t["metadata"]["name"] for t in STATEFULSET["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in CONTAINER["volumeMounts"]}
    assert mounts[DATA_DIR] in claims
    uid, gid = only(instructions(RUNTIME, "USER"), "USER").split(":")
    security = POD["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (
        int(uid), int(gid), int(gid))
    assert STATEFULSET["spec"]["replicas"] == 1  # one server per data dir (it flocks LOCK)


def test_k8s_termination_grace_exceeds_the_drain(server_help):
    grace = grace_seconds(SERVER_FLAGS["k8s StatefulSet"], server_help)
    assert POD["terminationGracePeriodSeconds"] > grace


def test_k8s_resources_bound_the_compute_threads():
    resources = CONTAINER["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys(), kind
    cpu_limit = float(str(resources["limits"]["cpu"]).removesuffix("m")) / (
        1000 if str(resources["limits"]["cpu"]).endswith("m") else 1)
    threads = int(SERVER_FLAGS["k8s StatefulSet"].get("compute-threads", 0))
    assert 0 < threads <= max(1, cpu_limit), "compute threads beyond the CPU limit oversubscribe"


# ---- systemd ----

def test_systemd_unit_runs_as_its_user_in_its_state_directory():
    service = UNIT["Service"]
    assert service["Type"] == "simple"
    assert service["User"] not in ("", "root", "0")
    assert f"/var/lib/{service['StateDirectory']}" == DATA_DIR
    assert SERVER_COMMANDS["systemd ExecStart"][0] == "/usr/local/bin/backflow-server"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"


def test_systemd_server_files_are_its_credentials():
    """--tls-cert, --tls-key and --auth-tokens read the copies LoadCredential= makes in
    $CREDENTIALS_DIRECTORY, of root-owned files under /etc/backflow."""
    credentials = dict(entry.split(":", 1) for entry in UNIT_VALUES["Service"]["LoadCredential"])
    assert credentials == {"tls.pem": "/etc/backflow/tls.pem", "tls.key": "/etc/backflow/tls.key",
                           "tokens": "/etc/backflow/tokens.txt"}
    flags = SERVER_FLAGS["systemd ExecStart"]
    for flag, credential in (("tls-cert", "tls.pem"), ("tls-key", "tls.key"),
                             ("auth-tokens", "tokens")):
        assert flags[flag] == f"${{CREDENTIALS_DIRECTORY}}/{credential}", flag


def test_systemd_stop_timeout_exceeds_the_drain(server_help):
    service = UNIT["Service"]
    assert service["KillSignal"] == "SIGTERM"
    grace = grace_seconds(SERVER_FLAGS["systemd ExecStart"], server_help)
    assert dp.duration_seconds(service["TimeoutStopSec"]) > grace


# ---- the parsers on known inputs (a parser that read nothing would pass everything above) ----

def test_duration_parser():
    assert dp.duration_seconds("30s") == 30
    assert dp.duration_seconds("1m30s") == 90
    assert dp.duration_seconds("1min 30s") == 90
    assert dp.duration_seconds("45") == 45
    assert dp.duration_seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        dp.duration_seconds("soon")


def test_systemd_values_parser(tmp_path):
    unit = tmp_path / "x.service"
    unit.write_text("[Service]\n# c\nA=1\nA=2 \\\n  3\nB = x\n[Install]\nC=\n")
    assert dp.systemd_unit_values(unit) == {"Service": {"A": ["1", "2 3"], "B": ["x"]},
                                            "Install": {"C": [""]}}
    assert dp.gen_certs_default_hosts() == ["localhost", "127.0.0.1", "backflow"]


def test_flag_parsers():
    assert dp.server_flags(["/x/backflow-server", "--listen=a:1", "--data-dir=/d"]) == {
        "listen": "a:1", "data-dir": "/d"}
    with pytest.raises(ValueError):
        dp.server_flags(["backflow-server", "--listen", "a:1"])
    assert dp.client_flags(["backflow", "--server", "h:1", "--timeout=3", "health"]) == {
        "server": "h:1", "timeout": "3"}
    assert dp.healthcheck_command('--interval=5s --retries=2 CMD ["a", "b"]') == ["a", "b"]
    assert dp.rewrite_flags(["b", "--server", "h:1", "--tls-ca=/x", "health"],
                            {"server": "l:2", "tls-ca": "/y", "timeout": "3"}) == [
        "b", "--timeout", "3", "--server", "l:2", "--tls-ca=/y", "health"]
