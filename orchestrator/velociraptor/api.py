"""A small client for Velociraptor's gRPC API (through pyvelociraptor): run VQL, push artifacts, run hunts.

Every user value reaches VQL as an environment parameter (VQLEnv), never pasted into query text. Every call has a
deadline. Every failure is one ``VelociraptorError`` whose message is one line naming the endpoint (and the hunt
when there is one). The API key is kept out of messages, reprs and tracebacks.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import CollectionError, ExitCode
from orchestrator.resources import artifacts_dir

if TYPE_CHECKING:
    import grpc


@cache
def _grpc() -> tuple[ModuleType, ModuleType, ModuleType]:
    """grpc and pyvelociraptor's messages and stub, loaded on first use: they cost every `connhunt` command
    (`score`, `triage`) 0.05 s of start-up, and only the commands that talk to a server need them."""
    # gRPC's C core logs TLS failures straight to stderr; connhunt reports them itself, as one line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    import grpc  # after GRPC_VERBOSITY, which grpc reads when it loads
    from pyvelociraptor import api_pb2, api_pb2_grpc

    return grpc, api_pb2, api_pb2_grpc

# pyvelociraptor's own lookup: this variable, then ~/.pyvelociraptorrc.
API_FILE_ENV = "VELOCIRAPTOR_API_FILE"
# The name in the server's self-signed certificate; we connect by address, so TLS must check this name instead.
SERVER_NAME = "VelociraptorServer"
DEFAULT_TIMEOUT = 60.0
# Streaming one flow's results can take minutes on a big host; it still gets a deadline, a longer one.
RESULTS_TIMEOUT = 3600.0
# A hunt's result batch can be large; gRPC's default 4 MiB receive limit is not enough.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
ARTIFACT = "Custom.Connhunt.Netstat"

# Velociraptor reports a failing query as log lines, not as a gRPC error; these mean the query did not do its job.
# (Env names must not shadow VQL's own scope: "Artifact", for one, is the artifact plugin namespace.)
_VQL_ERROR = re.compile(r"error|symbol \S+ not found|query: |unknown|not found|invalid|failed|denied|refused",
                        re.IGNORECASE)
_BENIGN_LOG = re.compile(r"^(DEBUG|INFO)\b|Time \d|Query Stats")
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?(-----END [A-Z ]+-----|$)", re.S)


class VelociraptorError(CollectionError):
    """A Velociraptor call failed. The message is one line and never holds key material."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class ApiConfigError(VelociraptorError):
    """The API config file is not one (unreadable, not UTF-8, not YAML, keys missing): bad input, exit 2."""

    exit_code = ExitCode.BAD_INPUT


class HuntUnreachable(VelociraptorError):
    """The hunt expired or reached no client: resuming it cannot help."""


def _one_line(text: str) -> str:
    text = _PEM.sub("<pem>", str(text))
    return " ".join(text.split())


@dataclass(frozen=True)
class ApiConfig:
    """What an API client config holds. The key is excluded from repr and comparisons."""

    path: str
    endpoint: str
    ca_certificate: str = field(repr=False)
    client_cert: str = field(repr=False)
    client_private_key: str = field(repr=False, compare=False)
    name: str = ""

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.path})"


def load_api_config(path: str | os.PathLike[str] | None = None) -> ApiConfig:
    """The API config at ``path``, else $VELOCIRAPTOR_API_FILE, else ~/.pyvelociraptorrc (as pyvelociraptor)."""
    chosen = str(path) if path else os.environ.get(API_FILE_ENV) or str(Path.home() / ".pyvelociraptorrc")
    source = "--api-config" if path else (API_FILE_ENV if os.environ.get(API_FILE_ENV) else "default")
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ApiConfigError(f"{chosen} ({source}): not a Velociraptor API config (not UTF-8 text: byte "
                             f"{exc.start})") from None
    except OSError as exc:
        raise ApiConfigError(f"cannot read Velociraptor API config {chosen} ({source}): "
                             f"{exc.strerror or type(exc).__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # The parser's message quotes the file, which holds the key: say only where it failed.
        raise ApiConfigError(f"{chosen}: not a Velociraptor API config (invalid YAML)") from None
    if not isinstance(data, dict):
        raise ApiConfigError(f"{chosen}: not a Velociraptor API config (not a mapping)")
    missing = [k for k in ("api_connection_string", "ca_certificate", "client_cert", "client_private_key")
               if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise ApiConfigError(f"{chosen}: not a Velociraptor API config (missing {', '.join(missing)})")
    if "ENCRYPTED" in data["client_private_key"]:
        raise VelociraptorError(f"{chosen}: the API key is encrypted; connhunt needs an unencrypted API config")
    _check_key_matches_cert(f"Velociraptor API {data['api_connection_string']}: {chosen}", data["client_cert"],
                            data["client_private_key"])
    return ApiConfig(path=chosen, endpoint=data["api_connection_string"], ca_certificate=data["ca_certificate"],
                     client_cert=data["client_cert"], client_private_key=data["client_private_key"],
                     name=str(data.get("name") or ""))


def _check_key_matches_cert(where: str, cert_pem: str, key_pem: str) -> None:
    """Say plainly when the key is unreadable or not the certificate's (gRPC only says the handshake failed)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pyvelociraptor depends on cryptography; without it the handshake reports the problem
        return
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise VelociraptorError(f"{where}: client_cert is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise VelociraptorError(f"{where}: client_private_key is not a readable PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (cert.public_key().public_bytes(serialization.Encoding.DER, public)
            != key.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise VelociraptorError(f"{where}: client_private_key does not belong to client_cert (wrong key)")


def _env_value(value: Any) -> str:
    """VQLEnv values are strings: text as is, anything else as JSON (VQL decodes it with parse_json...)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    hostname: str
    os: str
    labels: tuple[str, ...]
    last_seen: float | None


@dataclass(frozen=True)
class HuntFlow:
    client_id: str
    flow_id: str
    state: str  # RUNNING / IN_PROGRESS, FINISHED, ERROR (the flow's own state)
    status: str
    sources: tuple[str, ...]  # artifact sources with results, e.g. Custom.Connhunt.Netstat/Linux
    rows: int


@dataclass(frozen=True)
class HuntInfo:
    hunt_id: str
    state: str
    artifacts: tuple[str, ...]
    expires: float | None  # epoch seconds
    created: float | None
    from_flows: bool = False  # hunts() did not know it: rebuilt from hunt_flows()

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.expires <= time.time()


class VelociraptorClient:
    """One gRPC channel to a Velociraptor API server. Use as a context manager, or call close()."""

    def __init__(self, config: ApiConfig, *, timeout: float = DEFAULT_TIMEOUT,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, org_id: str = "") -> None:
        self.endpoint = config.endpoint
        self.timeout = timeout
        self.org_id = org_id
        grpc, _, api_pb2_grpc = _grpc()
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=config.ca_certificate.encode(),
                private_key=config.client_private_key.encode(),
                certificate_chain=config.client_cert.encode())
        except Exception as exc:  # noqa: BLE001 - grpc raises plain errors for bad PEM; never echo them
            raise VelociraptorError(f"{config.path}: unusable TLS material ({type(exc).__name__})") from None
        options = [("grpc.ssl_target_name_override", SERVER_NAME),
                   ("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = grpc.secure_channel(config.endpoint, credentials, options)
        self._stub = api_pb2_grpc.APIStub(self._channel)

    def __repr__(self) -> str:
        return f"VelociraptorClient(endpoint={self.endpoint!r})"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> VelociraptorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- VQL --

    def stream(self, vql: str, env: Mapping[str, Any] | None = None, *, timeout: float | None = None,
               context: str = "") -> Iterator[list[dict[str, Any]]]:
        """Yield result batches of one VQL query as they arrive; raise VelociraptorError on any failure."""
        deadline = timeout or self.timeout
        grpc, api_pb2, _ = _grpc()
        request = api_pb2.VQLCollectorArgs(
            env=[api_pb2.VQLEnv(key=k, value=_env_value(v)) for k, v in (env or {}).items()],
            Query=[api_pb2.VQLRequest(Name="connhunt", VQL=vql)],
            max_row=10000, max_wait=1, timeout=max(1, int(deadline)), org_id=self.org_id)
        where = f"Velociraptor API {self.endpoint}" + (f" ({context})" if context else "")
        try:
            for response in self._stub.Query(request, timeout=deadline):
                if response.log:
                    log = response.log.strip()
                    if _VQL_ERROR.search(log) and not _BENIGN_LOG.search(log):
                        raise VelociraptorError(f"{where}: query failed: {log}")
                    continue
                if response.Response:
                    rows = json.loads(response.Response)
                    if rows:
                        yield rows
        except grpc.RpcError as exc:
            raise VelociraptorError(f"{where}: {_describe_rpc_error(exc, deadline)}") from None

    def query(self, vql: str, env: Mapping[str, Any] | None = None, *, timeout: float | None = None,
              context: str = "") -> list[dict[str, Any]]:
        return [row for batch in self.stream(vql, env, timeout=timeout, context=context) for row in batch]

    def ping(self) -> None:
        """Fail now, with a clear message, if the server cannot be reached or refuses us."""
        self.query("SELECT 1 AS ok FROM scope()", timeout=min(self.timeout, 20))


def _describe_rpc_error(exc: grpc.RpcError, deadline: float) -> str:
    grpc = _grpc()[0]
    code = exc.code() if hasattr(exc, "code") else None
    details = _one_line(exc.details() if hasattr(exc, "details") else str(exc))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {deadline:.0f}s"
    if re.search(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", details):
        return "TLS handshake failed: the server's certificate is not signed by the config's CA (wrong CA?)"
    if re.search(r"UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|Unwrap failed|TSI_DATA_CORRUPTED", details):
        return "TLS handshake failed: the server refused the client certificate (config from another server?)"
    if re.search(r"security handshaker|[Ii]nvalid private key", details):
        return "TLS setup failed: the client key or certificate is unusable"
    if code == grpc.StatusCode.UNAVAILABLE:
        if re.search(r"[Hh]andshake|SSL|TLS", details):
            return f"TLS handshake failed: {details[:300]}"
        return f"server unreachable: {details[:300]}"
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return f"credentials refused: {details[:300]}"
    name = code.name if code is not None else "error"
    return f"{name}: {details[:300]}"


# -- artifacts --

_IMPORTS = re.compile(r"(?m)^\s*-\s*(Custom\.[\w.]+)\s*$|Artifact\.(Custom\.[\w.]+)")


def artifact_files(directory: Path | None = None) -> list[Path]:
    """The artifact YAML files, each after the artifacts it imports or calls (artifact_set checks them)."""
    directory = directory or artifacts_dir("velociraptor")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise VelociraptorError(f"no artifacts found under {directory}")
    by_name: dict[str, Path] = {}
    needs: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = str((yaml.safe_load(text) or {}).get("name") or path.stem)
        by_name[name] = path
        needs[name] = {a or b for a, b in _IMPORTS.findall(text)} - {name}
    ordered: list[Path] = []
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...] = ()) -> None:
        if name in done or name not in by_name or name in trail:
            return
        for dep in sorted(needs[name]):
            visit(dep, (*trail, name))
        done.add(name)
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return ordered


def push_artifacts(client: VelociraptorClient, paths: Iterable[Path] | None = None) -> list[str]:
    """artifact_set each file (replacing any older version: pushing twice is harmless). Returns the names."""
    names: list[str] = []
    for path in paths or artifact_files():
        rows = client.query("SELECT artifact_set(definition=Definition).name AS name FROM scope()",
                            {"Definition": path.read_text(encoding="utf-8")}, context=f"artifact {path.name}")
        name = rows[0].get("name") if rows else None
        if not name:
            raise VelociraptorError(f"Velociraptor API {client.endpoint}: artifact {path.name} was not accepted")
        names.append(str(name))
    return names


# -- clients --

def list_clients(client: VelociraptorClient, search: str | None = None) -> list[ClientInfo]:
    rows = client.query(
        "SELECT client_id, os_info.hostname AS hostname, os_info.system AS os, labels, "
        "last_seen_at / 1000000 AS last_seen FROM clients(search=Search)", {"Search": search or ""})
    return [ClientInfo(client_id=r["client_id"], hostname=r.get("hostname") or "", os=r.get("os") or "",
                       labels=tuple(r.get("labels") or ()), last_seen=r.get("last_seen")) for r in rows]


def label_client(client: VelociraptorClient, client_id: str, label: str) -> None:
    """Add a label (label() does nothing without op='set')."""
    rows = client.query("SELECT label(client_id=ClientId, labels=[Label], op='set') AS done FROM scope()",
                        {"ClientId": client_id, "Label": label}, context=f"client {client_id}")
    if not rows or not rows[0].get("done"):
        raise VelociraptorError(f"Velociraptor API {client.endpoint} (client {client_id}): could not set label "
                                f"{label!r} (unknown client?)")


# -- hunts --

def parse_duration(text: str | float | int) -> int:
    """Seconds from 90, '90s', '15m', '1h', '2d'."""
    if isinstance(text, (int, float)):
        seconds = int(text)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(text))
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h, 2d)")
        seconds = int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


def create_hunt(client: VelociraptorClient, artifact: str | Sequence[str] = ARTIFACT, *, label: str | None = None,
                os: str | None = None, expires: str | int = "1h", description: str = "connhunt hunt",
                parameters: Mapping[str, Any] | None = None,
                artifact_parameters: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Start a hunt of one or more artifacts and return its id.

    ``parameters`` go to every artifact, ``artifact_parameters`` to the one named. hunt(os=...) silently drops label
    conditions, so with a label the hunt targets the label (include_labels) and the OS is passed to the artifacts
    as TargetOS, whose queries then return nothing on other systems.
    """
    artifacts = [artifact] if isinstance(artifact, str) else list(artifact)
    params = dict(parameters or {})
    os_condition = ""
    if os and label:
        params["TargetOS"] = f"^{re.escape(os.lower())}$"
    elif os:
        os_condition = os.lower()
    spec = {name: {k: artifact_param(v) for k, v in {**params, **(artifact_parameters or {}).get(name, {})}.items()}
            for name in artifacts}
    with hint_unknown_artifact():
        rows = client.query(
            "SELECT hunt(artifacts=parse_json_array(data=ArtifactNames), description=Description, "
            "spec=parse_json(data=Spec), expires=now() + int(int=ExpiresSec), "
            "include_labels=parse_json_array(data=Labels), os=OS) AS hunt FROM scope()",
            {"ArtifactNames": artifacts, "Description": description, "Spec": spec,
             "ExpiresSec": parse_duration(expires), "Labels": [label] if label else [], "OS": os_condition},
            context=f"creating a hunt for {', '.join(artifacts)}")
    hunt = rows[0].get("hunt") if rows else None
    hunt_id = hunt.get("HuntId") if isinstance(hunt, dict) else None
    if not hunt_id:
        raise VelociraptorError(f"Velociraptor API {client.endpoint}: the server did not create the hunt for "
                                f"{', '.join(artifacts)} (is the artifact pushed? run `connhunt artifacts push`)")
    return str(hunt_id)


def add_to_hunt(client: VelociraptorClient, hunt_id: str, client_id: str) -> bool:
    """Schedule the hunt's flow on one client now (hunt_add), instead of at the client's next hunt check.

    The server records the client as a participant, so the hunt does not schedule it a second time.
    """
    rows = client.query("SELECT hunt_add(client_id=ClientId, hunt_id=HuntId) AS added FROM scope()",
                        {"ClientId": client_id, "HuntId": hunt_id}, context=f"hunt {hunt_id}")
    return bool(rows and rows[0].get("added"))


@contextmanager
def hint_unknown_artifact() -> Iterator[None]:
    try:
        yield
    except VelociraptorError as exc:
        if "unknown artifact" in str(exc).lower():
            raise VelociraptorError(f"{exc} (push connhunt's artifacts first: connhunt artifacts push)") from None
        raise


def artifact_param(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def hunt_info(client: VelociraptorClient, hunt_id: str) -> HuntInfo:
    """The hunt's record; when hunts() has forgotten it (Velociraptor 0.77 can, after a server restart) but
    hunt_flows() still serves its flows, a record rebuilt from those flows (artifacts from their sources; no
    expiry known)."""
    rows = client.query("SELECT hunt_id, state, artifacts, expires / 1000000 AS expires, "
                        "create_time / 1000000 AS created FROM hunts(hunt_id=HuntId)",
                        {"HuntId": hunt_id}, context=f"hunt {hunt_id}")
    rows = [r for r in rows if r.get("hunt_id") == hunt_id]
    if not rows:
        try:
            flows = hunt_flows(client, hunt_id)
        except VelociraptorError:  # hunt_flows() of a hunt nobody knows logs an error
            flows = []
        if not flows:
            raise VelociraptorError(f"Velociraptor API {client.endpoint}: unknown hunt {hunt_id}")
        artifacts = sorted({source.partition("/")[0] for flow in flows for source in flow.sources})
        return HuntInfo(hunt_id=hunt_id, state="UNKNOWN", artifacts=tuple(artifacts), expires=None, created=None,
                        from_flows=True)
    row = rows[0]
    return HuntInfo(hunt_id=hunt_id, state=str(row.get("state") or ""), artifacts=tuple(row.get("artifacts") or ()),
                    expires=row.get("expires") or None, created=row.get("created") or None)


def hunt_flows(client: VelociraptorClient, hunt_id: str) -> list[HuntFlow]:
    """Every flow the hunt scheduled, with the flow's own state (read from the flow, not the hunt's counters)."""
    rows = client.query(
        "SELECT ClientId, FlowId, Flow.state AS state, Flow.status AS status, "
        "Flow.artifacts_with_results AS sources, Flow.total_collected_rows AS rows "
        "FROM hunt_flows(hunt_id=HuntId)", {"HuntId": hunt_id}, context=f"hunt {hunt_id}")
    return [HuntFlow(client_id=r["ClientId"], flow_id=r["FlowId"], state=str(r.get("state") or "RUNNING"),
                     status=str(r.get("status") or ""), sources=tuple(r.get("sources") or ()),
                     rows=int(r.get("rows") or 0)) for r in rows]


def flow_done(flow: HuntFlow) -> bool:
    return flow.state in ("FINISHED", "ERROR")


def hunt_progress(client: VelociraptorClient, hunt_id: str) -> tuple[int, int, int]:
    """(scheduled, finished, errors) over the hunt's flows."""
    flows = hunt_flows(client, hunt_id)
    return (len(flows), sum(f.state == "FINISHED" for f in flows), sum(f.state == "ERROR" for f in flows))


def flow_results(client: VelociraptorClient, client_id: str, flow_id: str, source: str,
                 timeout: float | None = None) -> Iterator[list[dict[str, Any]]]:
    """Result batches of one artifact source ('Name/Source') of one flow."""
    return client.stream("SELECT * FROM source(client_id=ClientId, flow_id=FlowId, artifact=Source)",
                         {"ClientId": client_id, "FlowId": flow_id, "Source": source},
                         timeout=timeout or max(client.timeout, RESULTS_TIMEOUT),
                         context=f"flow {flow_id} of {client_id}")


def hunt_result_count(client: VelociraptorClient, hunt_id: str, source: str) -> int:
    """Rows the server holds for one source of a hunt (hunt_results needs artifact='Name/Source')."""
    rows = client.query("SELECT count() AS n FROM hunt_results(hunt_id=HuntId, artifact=Source) GROUP BY 1",
                        {"HuntId": hunt_id, "Source": source}, context=f"hunt {hunt_id}")
    return int(rows[0]["n"]) if rows else 0


def stop_hunt(client: VelociraptorClient, hunt_id: str) -> None:
    client.query("SELECT hunt_update(hunt_id=HuntId, stop=TRUE) FROM scope()", {"HuntId": hunt_id},
                 context=f"hunt {hunt_id}")


# -- single clients --

def collect_client(client: VelociraptorClient, client_id: str, artifact: str = ARTIFACT, *,
                   parameters: Mapping[str, Any] | None = None, wait: float = 300.0,
                   poll: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> HuntFlow:
    """Schedule a collection on one client and wait (bounded) until its flow has finished."""
    env = {k: artifact_param(v) for k, v in (parameters or {}).items()}
    with hint_unknown_artifact():
        rows = client.query("SELECT collect_client(client_id=ClientId, artifacts=[ArtifactName], "
                            "env=parse_json(data=Env)).flow_id AS flow_id FROM scope()",
                            {"ClientId": client_id, "ArtifactName": artifact, "Env": env},
                            context=f"client {client_id}")
    flow_id = rows[0].get("flow_id") if rows else None
    if not flow_id:
        raise VelociraptorError(f"Velociraptor API {client.endpoint} (client {client_id}): could not schedule "
                                f"{artifact} (unknown client, or artifact not pushed?)")
    deadline = time.monotonic() + wait
    while True:
        flow = get_flow(client, client_id, str(flow_id))
        if flow is not None and flow_done(flow):
            return flow
        if time.monotonic() >= deadline:
            raise VelociraptorError(f"Velociraptor API {client.endpoint} (client {client_id}): flow {flow_id} "
                                    f"did not finish within {wait:.0f}s (client offline?)")
        sleep(poll)


def get_flow(client: VelociraptorClient, client_id: str, flow_id: str) -> HuntFlow | None:
    rows = client.query("SELECT session_id, state, status, artifacts_with_results AS sources, "
                        "total_collected_rows AS rows FROM flows(client_id=ClientId, flow_id=FlowId)",
                        {"ClientId": client_id, "FlowId": flow_id}, context=f"flow {flow_id} of {client_id}")
    rows = [r for r in rows if r.get("session_id") == flow_id]
    if not rows:
        return None
    r = rows[0]
    return HuntFlow(client_id=client_id, flow_id=flow_id, state=str(r.get("state") or ""),
                    status=str(r.get("status") or ""), sources=tuple(r.get("sources") or ()),
                    rows=int(r.get("rows") or 0))


def connect(api_config: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT,
            check: bool = True) -> VelociraptorClient:
    """A client for the API config at ``api_config`` (or pyvelociraptor's defaults), checked with one query."""
    client = VelociraptorClient(load_api_config(api_config), timeout=timeout)
    if check:
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
    return client


def sources_of(flows: Sequence[HuntFlow], artifact: str) -> list[str]:
    """'Name/Source' strings with results among these flows, for one artifact."""
    return sorted({s for f in flows for s in f.sources if s == artifact or s.startswith(artifact + "/")})
