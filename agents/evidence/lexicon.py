"""General SRE vocabulary: which words in an error line point at which kind of failure.

These lists hold what any on-call engineer recognises (a refused connection, an
expired certificate, an OOM kill); nothing here names a particular system.
"""

from __future__ import annotations

import re

_I = re.IGNORECASE

CREDENTIAL = re.compile(
    r"expired|expiry|x509|certificate (?:has|is) (?:expired|not yet valid)|invalid[_ ]token|invalid_grant|invalid_client|"
    r"unauthori[sz]ed|\b401\b|authentication failed|password authentication|invalid api[ _-]?key|invalid credentials|"
    r"rejected credentials|bad credentials|access denied|permission denied for|\b403\b|forbidden|signature (?:has )?expired|"
    r"token (?:is )?expired|credentials? (?:expired|rejected|invalid)",
    _I,
)
# The service's own settings are missing or wrong: an unset environment variable, a config map key, a bad value.
CONFIG = re.compile(
    r"environment variable [\w\"'$]+ (?:is )?(?:not set|unset|required|missing|empty)|env(?:ironment)? var(?:iable)?s? (?:not set|missing)|"
    r"(?:missing|required) (?:env(?:ironment)? var(?:iable)?|config(?:uration)?(?: key| value| option| setting)?)\b|"
    r"is required but (?:was )?(?:not set|missing|empty)|must be set|is not set\b|not configured|"
    r"invalid (?:config|configuration|setting|value for)|config(?:uration)? (?:error|invalid|missing|not found)|"
    r"(?:could not|cannot|failed to|unable to) (?:load|parse|read) (?:the )?(?:config|configuration|settings)|"
    r"unknown (?:config|configuration|setting) (?:key|option)|keyerror: '[A-Z][A-Z0-9_]{2,}'|configmap \S+ not found|"
    r"secret \S+ not found|couldn't find key",
    _I,
)
# The image or its command is wrong: the process cannot start, a module the build should hold is missing.
IMAGE = re.compile(
    r"executable file not found|exec format error|exec: \S+: (?:stat|permission denied|not found)|exec /\S+: no such file|"
    r"errimagepull|imagepullbackoff|manifest (?:for \S+ )?(?:unknown|not found)|pull access denied|"
    r"modulenotfounderror|no module named|cannot find module|classnotfoundexception|noclassdeffounderror|"
    r"undefined symbol|symbol lookup error|error while loading shared libraries",
    _I,
)
DEPENDENCY = re.compile(
    r"connection refused|econnrefused|\brefused\b|connection reset|econnreset|service unavailable|\b50[234]\b|bad gateway|"
    r"could not connect|cannot connect|unable to connect|failed to connect|server closed the connection|broken pipe|"
    r"circuit (?:breaker )?(?:is )?open|no healthy upstream|upstream connect error|unavailable|read timed? ?out|timed out|timeout|"
    r"connection (?:was )?closed|eof|no connection|not accepting connections|the database system is|shutting down|recovery mode|"
    r"cluster ?down|master ?down|loading dataset|readonly",
    _I,
)
DNS = re.compile(
    r"name resolution|no such host|nxdomain|servfail|getaddrinfo|name or service not known|could not resolve|unknown ?host|"
    r"unknownhostexception|dns (?:lookup|resolution|query)|lookup [\w.-]+ on [\d.:]+",
    _I,
)
NODE = re.compile(
    r"nodenotready|node ?not ?ready|kubelet stopped posting|nodeunreachable|node\.kubernetes\.io/(?:unreachable|not-ready)|"
    r"node (?:is )?(?:unreachable|down)|nodehasdiskpressure|nodehasmemorypressure|rebooted|kernel panic|containerruntime ?down",
    _I,
)
NETWORK = re.compile(
    r"connect ?timeout|connecttimeout|connection timed out|connect etimedout|etimedout|i/o timeout|network is unreachable|"
    r"no route to host|ehostunreach|enetunreach|dial tcp [^ ]+: (?:i/o )?timeout|connection attempt timed out|"
    r"packet loss|nat gateway|egress|network ?polic(?:y|ies)|denied by (?:the )?(?:network )?policy",
    _I,
)
RESOURCE = re.compile(
    r"out of memory|oomkill|\boom\b|killed process|outofmemoryerror|heap space|memory limit|cannot allocate|"
    r"too many open files|no space left|disk (?:is )?full|pool exhausted|pool is exhausted|exhausted|remaining connection slots|"
    r"too many connections|cpu throttl|gc overhead|memory pressure|evicted|fatal error: runtime: out of memory|"
    r"connection is not available, request timed out|timeout waiting for (?:a )?connection|thread pool.*(?:full|rejected)|"
    r"rejectedexecution|(?:waiting|wait) for (?:a )?(?:free |idle )?connection|(?:could not|unable to|failed to) (?:acquire|obtain|get) "
    r"(?:a )?(?:db |database )?connection|queuepool limit|pool (?:is )?(?:full|exhausted|at capacity)|connections? (?:are )?all in use|"
    r"too many clients|file descriptors|emfile|disk (?:usage|quota)|inodes|heap (?:usage|used|size) (?:at |is )?\d+ ?%|"
    r"memory (?:usage|used) (?:at |is )?\d+ ?%|approaching (?:the )?(?:memory )?limit",
    _I,
)
TRAFFIC = re.compile(
    r"rate[ _-]?limit|too many requests|\b429\b|throttl|quota exceeded|load ?shed|shedding|queue (?:is )?full|backpressure|"
    r"concurrency limit|request limit|overloaded|surge",
    _I,
)
SCHEMA = re.compile(
    r"statement timeout|canceling statement|lock timeout|could not obtain lock|lock wait timeout|deadlock|"
    r"relation \S+ does not exist|column \S+ (?:of relation \S+ )?does not exist|undefined ?column|undefined ?table|"
    r"duplicate column|violates (?:\S+ )?constraint|sqlstate|access exclusive|unknown column|no such column|no such table|"
    r"table \S+ doesn't exist|invalid input syntax|value too long|migration|schema",
    _I,
)
CODE = re.compile(
    r"nullpointer|null ?pointer|cannot invoke|is null|nil pointer|nonetype|attributeerror|typeerror|keyerror|indexerror|"
    r"valueerror|zerodivision|panic|undefined is not|cannot read propert|classcastexception|illegalargument|illegalstate|"
    r"unsupportedoperation|numberformatexception|arrayindexoutofbounds|unhandled|segmentation|assertion|not a function|"
    r"unexpected token|jsondecodeerror|serializ|deserializ|invalid memory address",
    _I,
)
FAILURE = re.compile(
    "|".join(p.pattern for p in (CREDENTIAL, CONFIG, IMAGE, DEPENDENCY, DNS, NODE, NETWORK, RESOURCE, TRAFFIC, SCHEMA, CODE))
    + r"|exception|error|fail|fatal|crash|abort|denied|invalid|reject|killed|terminated",
    _I,
)
# Lines that are routine however often they repeat: they never make a signature "key".
ROUTINE = re.compile(
    r"request completed|outbound call|pool stats|cache (?:hit|miss)|health ?check|feature flags? refreshed|succeeded in|"
    r"\breceived\b|listening on|started container|created container|pulled|scheduled for sync|successfulcreate|"
    r"scaled (?:up|down)|successfully assigned|pulling image",
    _I,
)
LEVEL_WEIGHT = {"critical": 1.0, "error": 1.0, "warning": 0.7, "notice": 0.4, "info": 0.25, "debug": 0.1, "trace": 0.1}
