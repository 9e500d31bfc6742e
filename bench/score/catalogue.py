"""The benign fleet as data: host roles, the programs each role runs, what they talk to and what they listen on.

generate.py turns these declarations into rows set-wise in DuckDB; nothing here loops over rows. Counts are "per
collection window at 1,000 rows per host" and are scaled to the requested density.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    os: str  # windows / linux
    prefix: str  # host name prefix
    share: float  # of the fleet; the workstation roles take what the fixed roles leave
    minimum: int
    server: bool = True


# Fixed roles first (a few hosts each), then servers by share, then workstations fill the rest.
ROLES: tuple[Role, ...] = (
    Role("scanner", "linux", "vscan", 0.0002, 1),  # vulnerability scanner (management)
    Role("monitor", "linux", "prom", 0.0004, 1),  # Prometheus
    Role("ansible", "linux", "mgmt", 0.0001, 1),  # configuration management over ssh
    Role("backup", "linux", "backup", 0.0001, 1),
    Role("api", "linux", "api", 0.0001, 1),  # the internal API the cron pollers call
    Role("dc", "windows", "DC", 0.001, 1),  # domain controllers are the fleet's DNS resolvers
    Role("fileserver", "windows", "FS", 0.004, 1),
    Role("web", "linux", "web", 0.03, 1),
    Role("db", "linux", "db", 0.01, 1),
    Role("app", "linux", "app", 0.04, 1),
    Role("build", "linux", "build", 0.01, 1),
    Role("winsrv", "windows", "SRV", 0.04, 1),
    Role("lnxws", "linux", "lnx-ws", 0.12, 1, server=False),
    Role("winws", "windows", "WKS", 0.0, 1, server=False),  # the rest
)
ROLE_BY_NAME = {r.name: r for r in ROLES}
LINUX_SERVERS = tuple(r.name for r in ROLES if r.os == "linux" and r.server)
LINUX = tuple(r.name for r in ROLES if r.os == "linux")
WINDOWS = tuple(r.name for r in ROLES if r.os == "windows")
WINDOWS_SERVERS = tuple(r.name for r in ROLES if r.os == "windows" and r.server)
ALL = LINUX + WINDOWS


@dataclass(frozen=True)
class Proc:
    """One program as every host that runs it sees it (same path, so fleet prevalence can stack it)."""

    key: str
    os: str
    name: str
    path: str | None
    cmd: str
    user: str  # "{user}" is the host's interactive user
    parent: str | None = None
    parent_path: str | None = None


W_SVC = ("svchost.exe", r"C:\Windows\System32\services.exe")
L_SYSTEMD = ("systemd", "/usr/lib/systemd/systemd")
SYSTEM = r"NT AUTHORITY\SYSTEM"
NETSVC = r"NT AUTHORITY\NETWORK SERVICE"


def _w(key: str, path: str, cmd: str | None = None, user: str = SYSTEM,
       parent: tuple[str, str] | None = ("services.exe", r"C:\Windows\System32\services.exe")) -> Proc:
    name = path.rsplit("\\", 1)[-1]
    return Proc(key, "windows", name, path, cmd or f'"{path}"', user, parent[0] if parent else None,
                parent[1] if parent else None)


def _l(key: str, path: str, cmd: str | None = None, user: str = "root",
       parent: tuple[str, str] | None = L_SYSTEMD) -> Proc:
    name = path.rsplit("/", 1)[-1]
    return Proc(key, "linux", name, path, cmd or path, user, parent[0] if parent else None,
                parent[1] if parent else None)


EXPLORER = ("explorer.exe", r"C:\Windows\explorer.exe")
SVCHOST = r"C:\Windows\System32\svchost.exe"
NETWORK_SERVICE = "--type=utility --utility-sub-type=network.mojom.NetworkService"
PROCS: tuple[Proc, ...] = (
    # Windows, every host
    _w("w_dnscache", SVCHOST, rf"{SVCHOST} -k NetworkService -p -s Dnscache", NETSVC),
    _w("w_wuauserv", SVCHOST, rf"{SVCHOST} -k netsvcs -p -s wuauserv"),
    _w("w_w32time", SVCHOST, rf"{SVCHOST} -k LocalService -s W32Time", r"NT AUTHORITY\LOCAL SERVICE"),
    _w("w_rpcss", SVCHOST, rf"{SVCHOST} -k RPCSS -p", NETSVC),
    _w("w_termsvc", SVCHOST, rf"{SVCHOST} -k NetworkService -s TermService", NETSVC),
    Proc("w_system", "windows", "System", None, "", SYSTEM),
    _w("w_lsass", r"C:\Windows\System32\lsass.exe", r"C:\Windows\system32\lsass.exe",
       parent=("wininit.exe", r"C:\Windows\System32\wininit.exe")),
    _w("w_mssense", r"C:\Program Files\Windows Defender Advanced Threat Protection\MsSense.exe"),
    _w("w_msmpeng", r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MsMpEng.exe"),
    _w("w_winexporter", r"C:\Program Files\windows_exporter\windows_exporter.exe",
       r'"C:\Program Files\windows_exporter\windows_exporter.exe" --log.format logger:eventlog'),
    _w("w_bacula", r"C:\Program Files\Bacula\bacula-fd.exe", r'"C:\Program Files\Bacula\bacula-fd.exe" /service'),
    # Windows workstations
    _w("w_chrome", r"C:\Program Files\Google\Chrome\Application\chrome.exe",
       rf'"C:\Program Files\Google\Chrome\Application\chrome.exe" {NETWORK_SERVICE}',
       "{user}", parent=("chrome.exe", r"C:\Program Files\Google\Chrome\Application\chrome.exe")),
    _w("w_edge", r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
       rf'"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" {NETWORK_SERVICE}',
       "{user}", parent=("msedge.exe", r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe")),
    _w("w_onedrive", r"C:\Program Files\Microsoft OneDrive\OneDrive.exe",
       r'"C:\Program Files\Microsoft OneDrive\OneDrive.exe" /background', "{user}", parent=EXPLORER),
    _w("w_teams", r"C:\Program Files\WindowsApps\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\ms-teams.exe",
       None, "{user}", parent=EXPLORER),
    _w("w_outlook", r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE", None, "{user}", parent=EXPLORER),
    _w("w_sophos", r"C:\Program Files\Sophos\Sophos Anti-Virus\SavService.exe"),
    # Windows servers
    _w("w_dns", r"C:\Windows\System32\dns.exe"),
    # Linux, every host
    _l("l_resolved", "/usr/lib/systemd/systemd-resolved", user="systemd-resolve"),
    _l("l_chronyd", "/usr/sbin/chronyd", "/usr/sbin/chronyd -F 1", "_chrony"),
    _l("l_falcon", "/opt/CrowdStrike/falcon-sensor", "/opt/CrowdStrike/falcon-sensor",
       parent=("falcond", "/opt/CrowdStrike/falcond")),
    _l("l_sshd", "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
    _l("l_nodeexp", "/usr/local/bin/node_exporter", "/usr/local/bin/node_exporter --collector.systemd",
       "node_exporter"),
    _l("l_bacula", "/opt/bacula/bin/bacula-fd", "/opt/bacula/bin/bacula-fd -fP -c /opt/bacula/etc/bacula-fd.conf"),
    _l("l_apt", "/usr/lib/apt/methods/http", "/usr/lib/apt/methods/http", "_apt",
       parent=("apt-get", "/usr/bin/apt-get")),
    _l("l_curl_cron", "/usr/bin/curl", "curl -fsS -m 10 https://api.corp.internal:8080/v1/heartbeat", "svc-cron",
       parent=("sh", "/usr/bin/dash")),
    _l("l_poller", "/usr/bin/python3.11", "/usr/bin/python3 /opt/healthcheck/poll.py --interval 60", "svc-health"),
    # Linux workstations
    _l("l_firefox", "/usr/lib/firefox/firefox", "/usr/lib/firefox/firefox -contentproc -childID 3 -isForBrowser",
       "{user}", parent=("firefox", "/usr/lib/firefox/firefox")),
    _l("l_slack", "/usr/lib/slack/slack", "/usr/lib/slack/slack --type=utility", "{user}",
       parent=("slack", "/usr/lib/slack/slack")),
    _l("l_ssh", "/usr/bin/ssh", "ssh git@git.corp.internal", "{user}", parent=("git", "/usr/bin/git")),
    # servers
    _l("l_nginx", "/usr/sbin/nginx", "nginx: worker process", "www-data", parent=("nginx", "/usr/sbin/nginx")),
    _l("l_java_app", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
       "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xmx4g -jar /opt/orders/orders-service.jar", "orders"),
    _l("l_postgres", "/usr/lib/postgresql/16/bin/postgres",
       "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main", "postgres"),
    _l("l_gunicorn", "/opt/api/venv/bin/python3",
       "/opt/api/venv/bin/python3 /opt/api/venv/bin/gunicorn api:app -b 0.0.0.0:8080", "api"),
    _l("l_bacula_sd", "/opt/bacula/bin/bacula-sd", "/opt/bacula/bin/bacula-sd -fP -c /opt/bacula/etc/bacula-sd.conf",
       "bacula"),
    _l("l_prometheus", "/usr/local/bin/prometheus",
       "/usr/local/bin/prometheus --config.file=/etc/prometheus/prometheus.yml", "prometheus"),
    _l("l_nessus", "/opt/nessus/sbin/nessusd", "nessusd -q",
       parent=("nessus-service", "/opt/nessus/sbin/nessus-service")),
    _l("l_ansible_ssh", "/usr/bin/ssh",
       "ssh -C -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes -o User=ansible", "ansible",
       parent=("ansible-playbook", "/usr/bin/python3")),
    _l("l_git", "/usr/lib/git-core/git-remote-https", "git-remote-https origin https://github.com/corp/orders.git",
       "jenkins", parent=("git", "/usr/bin/git")),
    _l("l_pip", "/usr/bin/python3.11", "/usr/bin/python3 -m pip install -r requirements.txt", "jenkins",
       parent=("bash", "/usr/bin/bash")),
    _l("l_dockerd", "/usr/bin/dockerd", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
)
PROC_BY_KEY = {p.key: p for p in PROCS}


@dataclass(frozen=True)
class Flow:
    """Outbound traffic of one program on every host of some roles.

    dest: "ip:A.B.C.D" (one vendor address), "role:NAME" (a host of that role; an inbound mirror row appears on
    it when it listens on the port), or "cdn" (a Zipf-chosen address from the CDN pool).
    pattern: "random" (short connections anywhere in the window), "long" (one connection open across the window),
    or "period:S" (every S seconds from the window start, S exact to a few ms: cron, scrapers).
    """

    proc: str
    roles: tuple[str, ...]
    dest: str
    port: int | None
    per_window: float
    protocol: str = "tcp"
    pattern: str = "random"
    hostname: str | None = None  # remote_hostname, and the name the host looked up first (a DNS row)
    windows: tuple[int, ...] = (0, 1, 2)
    pick: str = "host"  # host: each host always uses the same target of the role; conn: any, per connection
    share: float = 1.0  # of the hosts of those roles that run it (chosen by hash)


MS_WU = "13.107.4.50"
FLOWS: tuple[Flow, ...] = (
    # Windows: DNS to the configured resolvers (the domain controllers), time, updates, the EDR agent
    Flow("w_dnscache", WINDOWS, "role:dc", 53, 10, "udp"),
    Flow("w_w32time", tuple(r for r in WINDOWS if r != "dc"), "role:dc", 123, 1, "udp"),
    Flow("w_wuauserv", WINDOWS, f"ip:{MS_WU}", 443, 3, hostname="fe3cr.delivery.mp.microsoft.com"),
    Flow("w_mssense", WINDOWS, "ip:20.42.65.84", 443, 3, hostname="winatp-gw-eus.microsoft.com"),
    Flow("w_msmpeng", WINDOWS, "ip:20.69.137.228", 443, 1, hostname="wdcp.microsoft.com"),
    Flow("w_lsass", tuple(r for r in WINDOWS if r != "dc"), "role:dc", 88, 3),
    Flow("w_lsass", tuple(r for r in WINDOWS if r != "dc"), "role:dc", 389, 2),
    Flow("w_system", ("winws",), "role:dc", 445, 1, pattern="long"),
    Flow("w_system", ("winws",), "role:fileserver", 445, 1, pattern="long"),
    # Windows workstations: collaboration software
    Flow("w_onedrive", ("winws",), "ip:13.107.42.12", 443, 3, hostname="onedrive.live.com"),
    Flow("w_teams", ("winws",), "ip:52.113.194.132", 443, 2, pattern="long", hostname="teams.microsoft.com"),
    Flow("w_outlook", ("winws",), "ip:52.97.146.162", 443, 2, pattern="long", hostname="outlook.office365.com"),
    # the DC's DNS server forwards to an outside resolver: port-53 traffic to a non-resolver, but from dns.exe
    Flow("w_dns", ("dc",), "ip:9.9.9.9", 53, 20, "udp"),
    Flow("w_bacula", ("fileserver", "winsrv"), "role:backup", 9103, 1, pattern="long"),
    # Linux, every host
    Flow("l_resolved", LINUX, "role:dc", 53, 8, "udp"),
    Flow("l_chronyd", LINUX, "ip:162.159.200.123", 123, 1, "udp", hostname="time.cloudflare.com"),
    Flow("l_falcon", LINUX, "ip:52.37.19.211", 443, 1, pattern="long", hostname="ts01-b.cloudsink.net"),
    Flow("l_apt", LINUX, "ip:91.189.91.83", 80, 2, hostname="archive.ubuntu.com", windows=(0,)),
    Flow("l_bacula", LINUX_SERVERS, "role:backup", 9103, 1, pattern="long"),
    # cron pollers: curl every 5 minutes, a python health check every minute, to the internal API: regular like
    # a beacon, on every server of these roles
    Flow("l_curl_cron", ("web", "app", "build", "db"), "role:api", 8080, 2, pattern="period:300"),
    Flow("l_poller", ("app",), "role:api", 8080, 10, pattern="period:60"),
    # Linux workstations
    Flow("l_slack", ("lnxws",), "ip:54.230.98.101", 443, 2, pattern="long", hostname="wss-primary.slack.com"),
    Flow("l_ssh", ("lnxws",), "role:build", 22, 1),
    # servers
    Flow("l_nginx", ("web",), "role:app", 8080, 40, pick="conn"),
    Flow("l_java_app", ("app",), "role:db", 5432, 20),
    Flow("l_git", ("build",), "ip:140.82.112.3", 443, 5, hostname="github.com"),
    Flow("l_pip", ("build",), "ip:151.101.0.223", 443, 3, hostname="pypi.org"),
    Flow("l_dockerd", ("build",), "ip:54.198.86.24", 443, 3, hostname="registry-1.docker.io"),
)


@dataclass(frozen=True)
class Listen:
    proc: str
    roles: tuple[str, ...]
    port: int
    protocol: str = "tcp"
    local_ip: str = "0.0.0.0"


LISTENS: tuple[Listen, ...] = (
    Listen("w_rpcss", WINDOWS, 135),
    Listen("w_system", WINDOWS, 445),
    Listen("w_winexporter", WINDOWS, 9182),
    Listen("w_termsvc", WINDOWS_SERVERS, 3389),
    Listen("w_lsass", ("dc",), 88),
    Listen("w_lsass", ("dc",), 389),
    Listen("w_lsass", ("dc",), 636),
    Listen("w_lsass", ("dc",), 3268),
    Listen("w_dns", ("dc",), 53),
    Listen("w_dns", ("dc",), 53, "udp"),
    Listen("l_sshd", LINUX, 22),
    Listen("l_nodeexp", LINUX, 9100),
    Listen("l_resolved", LINUX, 53, "udp", "127.0.0.53"),
    Listen("l_nginx", ("web",), 80),
    Listen("l_nginx", ("web",), 443),
    Listen("l_java_app", ("app",), 8080),
    Listen("l_postgres", ("db",), 5432),
    Listen("l_gunicorn", ("api",), 8080),
    Listen("l_bacula_sd", ("backup",), 9103),
    Listen("l_prometheus", ("monitor",), 9090),
)

# Domains ordinary browsing looks up; index i resolves to CDN pool address i, so the browsers' connections and
# the lookups agree. The tail is CDN-style names (short random-looking labels, as CloudFront and Akamai use).
COMMON_DOMAINS: tuple[str, ...] = (
    "www.google.com", "login.microsoftonline.com", "www.office.com", "outlook.office365.com", "fonts.gstatic.com",
    "www.youtube.com", "i.ytimg.com", "www.bing.com", "static.xx.fbcdn.net", "github.com",
    "avatars.githubusercontent.com",
    "stackoverflow.com", "cdn.jsdelivr.net", "ajax.googleapis.com", "www.linkedin.com", "media.licdn.com",
    "en.wikipedia.org", "upload.wikimedia.org", "www.amazon.com", "m.media-amazon.com", "slack.com",
    "a.slack-edge.com", "zoom.us", "www.atlassian.com", "corp.atlassian.net", "docs.google.com", "drive.google.com",
    "clients4.google.com", "update.googleapis.com", "edge.microsoft.com", "nav.smartscreen.microsoft.com",
    "www.msftconnecttest.com", "ocsp.digicert.com", "crl3.digicert.com", "ocsp.pki.goog", "r3.o.lencr.org",
    "cdnjs.cloudflare.com", "www.cloudflare.com", "s3.amazonaws.com", "news.ycombinator.com",
)
CDN_POOL = 4000  # distinct CDN/web addresses the browsers reach

# The Zipf tail of vendor software: (vendor, program path, port, why its port is unusual). Windows programs end
# in .exe. Odd ports are what these vendors really use (TeamViewer 5938, Zoom 8801, Splunk 9997...) or an agent on
# 4443/8888/9443 to its own cloud: benign, yet on a port a C2 list may name.
TAIL: tuple[tuple[str, str, int], ...] = (
    ("zoom", r"C:\Program Files\Zoom\bin\Zoom.exe", 8801),
    ("teamviewer", r"C:\Program Files\TeamViewer\TeamViewer_Service.exe", 5938),
    ("splunk", "/opt/splunkforwarder/bin/splunkd", 9997),
    ("datadog", "/opt/datadog-agent/bin/agent/agent", 443),
    ("tanium", r"C:\Program Files (x86)\Tanium\Tanium Client\TaniumClient.exe", 17472),
    ("qualys", "/usr/local/qualys/cloud-agent/bin/qualys-cloud-agent", 443),
    ("rapid7", r"C:\Program Files\Rapid7\Insight Agent\ir_agent.exe", 443),
    ("lenovo", r"C:\Program Files (x86)\Lenovo\System Update\tvsu.exe", 443),
    ("dell", r"C:\Program Files\Dell\SupportAssistAgent\bin\SupportAssistAgent.exe", 443),
    ("forti", r"C:\Program Files\Fortinet\FortiClient\FortiClient.exe", 8013),
    ("cisco", r"C:\Program Files (x86)\Cisco\Cisco Secure Client\vpnagent.exe", 443),
    ("gp", r"C:\Program Files\Palo Alto Networks\GlobalProtect\PanGPS.exe", 4443),
    ("netskope", r"C:\Program Files (x86)\Netskope\STAgent\stAgentSvc.exe", 443),
    ("zscaler", r"C:\Program Files\Zscaler\ZSATunnel\ZSATunnel.exe", 9443),
    ("newrelic", "/usr/bin/newrelic-infra", 443),
    ("elastic", "/opt/Elastic/Agent/elastic-agent", 8220),
    ("wazuh", "/var/ossec/bin/wazuh-agentd", 1514),
    ("jamf", "/usr/local/jamf/bin/jamf", 8443),
    ("sentinelone", "/opt/sentinelone/bin/sentinelone-agent", 443),
    ("grafana", "/usr/bin/grafana-agent", 443),
    ("vmware", r"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe", 902),
    ("citrix", r"C:\Program Files (x86)\Citrix\ICA Client\wfica32.exe", 2598),
    ("anydesk", r"C:\Program Files (x86)\AnyDesk\AnyDesk.exe", 7070),
    ("logmein", r"C:\Program Files (x86)\LogMeIn\x64\LogMeIn.exe", 443),
    ("dropbox", r"C:\Program Files (x86)\Dropbox\Client\Dropbox.exe", 443),
    ("box", r"C:\Program Files\Box\Box\Box.exe", 443),
    ("webex", r"C:\Program Files\Cisco Spark\CiscoCollabHost.exe", 5004),
    ("autodesk", r"C:\Program Files (x86)\Common Files\Autodesk Shared\AdskLicensing\AdskLicensingAgent.exe", 2080),
    ("flexlm", "/opt/flexlm/bin/lmgrd", 27000),
    ("matlab", "/usr/local/MATLAB/R2024b/bin/glnxa64/MATLAB", 443),
    ("mongodb", "/usr/bin/mongodb-mms-automation-agent", 443),
    ("nvidia", r"C:\Program Files\NVIDIA Corporation\NvContainer\nvcontainer.exe", 443),
    ("acmetelemetry", r"C:\Program Files\Acme Telemetry\acmeagent.exe", 4443),
    ("vendorsync", "/opt/vendorsync/bin/vsyncd", 8888),
    ("licensor", r"C:\Program Files\Licensor\licsvc.exe", 9443),
    ("statsrelay", "/opt/statsrelay/bin/statsrelay", 8888),
    ("printhub", r"C:\Program Files\PrintHub\printhubsvc.exe", 9443),
    ("patchpilot", "/opt/patchpilot/bin/ppagent", 4443),
)
# generated vendors beyond the named ones: made-up vendor names, each on a handful of hosts
TAIL_GENERATED = 160
ODD_PORTS = (4443, 8888, 9443)
TAIL_SHARE = 0.08  # the most common tail program is on this share of hosts; the rest fall off as 1/rank


def role_counts(hosts: int) -> dict[str, int]:
    """Hosts per role: each fixed role its share (at least its minimum), workstations the rest."""
    counts = {r.name: max(r.minimum, round(r.share * hosts)) for r in ROLES if r.name != "winws"}
    rest = hosts - sum(counts.values())
    if rest < 2:
        raise ValueError(f"--hosts {hosts} is too small: at least {sum(counts.values()) + 2} hosts are needed")
    counts["winws"] = rest
    return counts
