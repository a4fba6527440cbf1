"""Settings: one frozen object built once from options, environment and the config file.

Secrets are never taken from argv: they come from environment variables, a 0600 file named in the config, or a
prompt. The names of every environment variable escli reads are the constants below.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from escli.errors import UsageError
from escli.strategies import FAILOVER, FAN_OUT, STRATEGIES, STRATEGY_CHOICES

ENV_URL = "ESCLI_URL"
ENV_URL_FALLBACK = "ELASTICSEARCH_URL"
ENV_CLUSTER = "ESCLI_CLUSTER"
ENV_STRATEGY = "ESCLI_STRATEGY"
ENV_API_KEY = "ESCLI_API_KEY"
ENV_USERNAME = "ESCLI_USERNAME"
ENV_PASSWORD = "ESCLI_PASSWORD"
ENV_CLOUD_ID = "ESCLI_CLOUD_ID"
ENV_CA_CERTS = "ESCLI_CA_CERTS"
ENV_CACHE_DIR = "ESCLI_CACHE_DIR"
# The shared cache level (Redis): its URL, and its password from the environment or a 0600 file, never inline.
ENV_CACHE_URL = "ESCLI_CACHE_URL"
ENV_CACHE_PASSWORD = "ESCLI_CACHE_PASSWORD"
ENV_CACHE_PASSWORD_FILE = "ESCLI_CACHE_PASSWORD_FILE"
ENV_CONFIG = "ESCLI_CONFIG"
# A file holding the secret (docker/systemd secrets style); it must be 0600 like the config file's *_file.
ENV_API_KEY_FILE = "ESCLI_API_KEY_FILE"
ENV_PASSWORD_FILE = "ESCLI_PASSWORD_FILE"
ENV_MAX_ANSWER_MB = "ESCLI_MAX_ANSWER_MB"

DEFAULT_URL = "http://127.0.0.1:9200"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_CONNECTIONS = 16
DEFAULT_CACHE_TTL = 300.0
DEFAULT_CACHE_SIZE_LIMIT = 512 * 1024 * 1024
DEFAULT_CACHE_MEMORY_LIMIT = 64 * 1024 * 1024
# The bound on one answer, inflated size included (es/wire.py): 128 MiB. The largest page escli asks for is an
# export page at --page-size 10000 (the engine's max_result_window): 5.4 MB of the sample `products` hits, so the
# bound leaves room for documents averaging ~13 KB at that page size, and it sits above the engine's own bound
# on a request (http.max_content_length, 100 MB). A server that sends more is stopped there, with memory at
# most the bound; `max_answer_mb` (config) or ESCLI_MAX_ANSWER_MB raise it.
DEFAULT_MAX_ANSWER_MB = 128
DEFAULT_MAX_ANSWER = DEFAULT_MAX_ANSWER_MB * 2**20
DEFAULT_CACHE_TIMEOUT = 0.2  # the shared level's own short timeout: never more than this lost to it per search


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "escli" / "config.toml"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CACHE_DIR):
        return Path(env[ENV_CACHE_DIR])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "escli"


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cloud_id: str | None = None

    def __repr__(self) -> str:  # never leak a secret through a debug print
        return f"Credentials(api_key={'***' if self.api_key else None}, username={self.username!r})"

    @property
    def principal(self) -> str:
        """Who we are, for cache keys: the user name, or a digest of the API key's id part; never a secret."""
        if self.username:
            return f"user:{self.username}"
        if self.api_key:
            import hashlib

            return "apikey:" + hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
        return "anonymous"


@dataclass(frozen=True)
class Settings:
    urls: tuple[str, ...] = (DEFAULT_URL,)
    cluster: str | None = None
    credentials: Credentials = field(default_factory=Credentials)
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    connections: int = DEFAULT_CONNECTIONS
    sniff: bool = False
    output: str | None = None
    use_cache: bool = True
    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_ttl: float = DEFAULT_CACHE_TTL
    cache_size_limit: int = DEFAULT_CACHE_SIZE_LIMIT
    cache_memory_limit: int = DEFAULT_CACHE_MEMORY_LIMIT
    cache_url: str | None = None
    cache_password: str | None = field(default=None, repr=False)
    cache_timeout: float = DEFAULT_CACHE_TIMEOUT
    cache_ca_certs: str | None = None
    quiet: bool = False
    verbose: int = 0
    debug: bool = False
    weight: float = 1.0  # this cluster's share under --strategy weighted
    max_answer: int = DEFAULT_MAX_ANSWER  # bytes one answer may have, inflated (es/wire.py)
    # Several clusters (-c a -c b, or a group): each member is a whole single-cluster Settings (its own URLs,
    # credentials, TLS, weight, name); empty for one cluster, so every single-cluster path is unchanged. With
    # members, the fields above are the first member's, so anything that is not routing-aware talks to it.
    members: tuple[Settings, ...] = ()
    strategy: str | None = None  # one of STRATEGIES when there are members

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def identity(self) -> str:
        """The cluster as the cache sees it: its name or sorted URLs, and who asks. For several clusters, a
        digest of the set of the members' identities (any of them may answer a routed search), plus the strategy
        for a fan-out (its merged answer is not any one cluster's)."""
        if self.members:
            import hashlib

            parts = sorted(m.identity for m in self.members)
            if self.strategy == FAN_OUT:
                parts.append(FAN_OUT)
            return "set:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
        where = self.cluster or ",".join(sorted(u.rstrip("/") for u in self.urls))
        return f"{where}|{self.credentials.principal}"


def load_config(path: Path, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The config file, every key checked (escli.config_schema): a bad value is a UsageError naming the file,
    the table and the key; an unknown key goes to `warn` with the closest known one."""
    if not path.exists():
        return {}
    import tomllib  # only when there is a config file: ~4 ms of start-up otherwise

    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    from escli.config_schema import check_config

    return check_config(raw, path, warn)


def _read_secret_file(path_text: str, what: str, config: Path) -> str:
    path = Path(path_text).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UsageError(f"{config}: {what} file {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{config}: {what} file {path} must not be readable by others (chmod 600 {path})")
    return path.read_text().strip()


def _env_secret_file(env: Mapping[str, str], name: str) -> str | None:
    """A secret from the file an environment variable names (ESCLI_PASSWORD_FILE=/run/secrets/es)."""
    if not env.get(name):
        return None
    return _read_secret_file(env[name], "secret", Path(f"${name}"))


def _secret(table: Mapping[str, Any], key: str, env: Mapping[str, str], config: Path, cluster: str) -> str | None:
    """A secret named in a cluster table: `<key>_env` names a variable, `<key>_file` a 0600 file."""
    if f"{key}_env" in table:
        name = str(table[f"{key}_env"])
        if name not in env:
            raise UsageError(f"{config}: [clusters.{cluster}] {key}_env names {name}, which is not set")
        return env[name]
    if f"{key}_file" in table:
        return _read_secret_file(str(table[f"{key}_file"]), key, config)
    if key in table and key in ("api_key", "password"):
        raise UsageError(f"{config}: [clusters.{cluster}] {key} must come from {key}_env or {key}_file, not inline")
    return None


@dataclass(frozen=True, eq=False, repr=False)  # fewer generated methods: built on every run, compared never
class GlobalOptions:
    """The global options as given on the command line, built once per run (cli/common.py) and handed whole to
    `resolve`; None is "not given". Field names are the options' parameter names (cli/common.GLOBAL_PARAMS)."""

    url: Sequence[str] | None = None
    cluster: Sequence[str] | None = None
    strategy: str | None = None
    ca_certs: str | None = None
    insecure: bool | None = None
    timeout: float | None = None
    max_retries: int | None = None
    connections: int | None = None
    output: str | None = None
    no_cache: bool | None = None
    cache_dir: Path | None = None
    cache_url: str | None = None
    quiet: bool | None = None
    verbose: int | None = None
    debug: bool | None = None

    def with_(self, **changes: Any) -> GlobalOptions:
        return replace(self, **changes)


NO_OPTIONS = GlobalOptions()


def resolve(
    options: GlobalOptions = NO_OPTIONS,
    *,
    env: Mapping[str, str] | None = None,
    prompt_password: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """Merge options > environment > config file > defaults into one Settings.

    `options.cluster`: names, each a [clusters.NAME] or a [groups.NAME]; several clusters give a Settings
    with `members` (one resolved Settings each) and a `strategy`."""
    o = options
    urls, cluster, strategy, ca_certs, timeout = o.url, o.cluster, o.strategy, o.ca_certs, o.timeout
    max_retries, connections, cache_url = o.max_retries, o.connections, o.cache_url
    env = os.environ if env is None else env
    cfg_path = config_path(env)
    config = load_config(cfg_path, warn)
    _check_options(timeout, max_retries, connections)
    clusters: dict[str, Any] = config.get("clusters", {})
    given = list(cluster or ()) or \
        [n.strip() for n in env.get(ENV_CLUSTER, "").split(",") if n.strip()]
    names, label, group_strategy = _expand_clusters(given, config, cfg_path)
    if len(names) > 1:
        if urls:
            raise UsageError(f"--url and several clusters ({', '.join(names)}): give one or the other")
        # no `warn`: the file was checked (and warned about) once
        members = tuple(resolve(o.with_(url=None, cluster=(n,), strategy=None), env=env,
                                prompt_password=prompt_password) for n in names)
        chosen = _strategy(strategy, env, group_strategy, cfg_path)
        return replace(members[0], cluster=label, members=members, strategy=chosen)
    if strategy is not None or env.get(ENV_STRATEGY):
        _strategy(strategy, env, None, cfg_path)  # a bad value is an error even with one cluster
    name = names[0] if names else None
    if name is None and not urls and not env.get(ENV_URL) and not env.get(ENV_URL_FALLBACK):
        defaults = [n for n, t in clusters.items() if isinstance(t, dict) and t.get("default")]
        name = defaults[0] if defaults else None
    table: dict[str, Any] = {}
    if name is not None:
        if name not in clusters:
            known = ", ".join(sorted(clusters)) or "none"
            raise UsageError(f"--cluster {name}: no [clusters.{name}] in {cfg_path} (known: {known})")
        table = clusters[name]

    if urls:
        final_urls = tuple(urls)
    elif env.get(ENV_URL) and not cluster:
        final_urls = tuple(u.strip() for u in env[ENV_URL].split(",") if u.strip())
    elif table.get("urls") or table.get("url"):
        final_urls = tuple(table.get("urls") or table["url"])  # a list of strings (config_schema)
    elif env.get(ENV_URL_FALLBACK):
        final_urls = tuple(u.strip() for u in env[ENV_URL_FALLBACK].split(",") if u.strip())
    else:
        final_urls = (DEFAULT_URL,)
    for u in final_urls:
        if not u.startswith(("http://", "https://")):
            raise UsageError(f"--url {u}: must start with http:// or https://")
        if "@" in u.split("//", 1)[1].split("/", 1)[0]:
            raise UsageError("--url: put credentials in the environment or config file, not in the URL")

    creds = Credentials(
        api_key=env.get(ENV_API_KEY) or _env_secret_file(env, ENV_API_KEY_FILE)
        or _secret(table, "api_key", env, cfg_path, name or ""),
        username=env.get(ENV_USERNAME) or table.get("username"),
        password=env.get(ENV_PASSWORD) or _env_secret_file(env, ENV_PASSWORD_FILE)
        or _secret(table, "password", env, cfg_path, name or ""),
        cloud_id=env.get(ENV_CLOUD_ID) or table.get("cloud_id"),
    )
    if creds.username and creds.password is None and not creds.api_key and prompt_password:
        creds = replace(creds, password=_prompt_password(creds.username))

    # every value below has its type and range already (config_schema.check_config)
    verify = not o.insecure and table.get("verify", True)
    cache_table: dict[str, Any] = config.get("cache", {})
    cache_ttl = cache_table.get("ttl", DEFAULT_CACHE_TTL)
    cache_size = int(cache_table.get("size_limit_mb", DEFAULT_CACHE_SIZE_LIMIT / 2**20) * 2**20)
    memory_size = int(cache_table.get("memory_mb", DEFAULT_CACHE_MEMORY_LIMIT / 2**20) * 2**20)
    shared_timeout = cache_table.get("timeout_ms", DEFAULT_CACHE_TIMEOUT * 1000) / 1000
    shared_url, shared_password = _cache_url(cache_url, env, cache_table, cfg_path)
    return Settings(
        urls=final_urls,
        cluster=name,
        credentials=creds,
        ca_certs=ca_certs or env.get(ENV_CA_CERTS) or table.get("ca_certs"),
        verify_certs=verify,
        timeout=timeout if timeout is not None else table.get("timeout", DEFAULT_TIMEOUT),
        max_retries=max_retries if max_retries is not None else table.get("max_retries", DEFAULT_MAX_RETRIES),
        connections=connections if connections is not None else table.get("connections", DEFAULT_CONNECTIONS),
        sniff=table.get("sniff", False),
        output=o.output,
        use_cache=not o.no_cache,
        cache_dir=o.cache_dir or default_cache_dir(env),
        cache_ttl=cache_ttl,
        cache_size_limit=cache_size,
        cache_memory_limit=memory_size,
        cache_url=shared_url,
        cache_password=shared_password,
        cache_timeout=shared_timeout,
        cache_ca_certs=str(cache_table["ca_certs"]) if cache_table.get("ca_certs") else None,
        quiet=bool(o.quiet),
        verbose=int(o.verbose or 0),
        debug=bool(o.debug),
        weight=table.get("weight", 1.0),
        max_answer=_max_answer(env, table, cfg_path, name),
    )


def _max_answer(env: Mapping[str, str], table: Mapping[str, Any], cfg_path: Path, name: str | None) -> int:
    """ESCLI_MAX_ANSWER_MB > [clusters.NAME] max_answer_mb > 128, in bytes."""
    raw = env.get(ENV_MAX_ANSWER_MB, "").strip()
    if raw:
        from escli.text import parse_float

        try:
            mb = parse_float(raw)
        except ValueError:
            mb = 0.0
        if not 0 < mb < float("inf"):
            raise UsageError(f"{ENV_MAX_ANSWER_MB}={raw}: must be a number of MiB above 0 (default "
                             f"{DEFAULT_MAX_ANSWER_MB})")
        return max(1, int(mb * 2**20))
    return max(1, int(table.get("max_answer_mb", DEFAULT_MAX_ANSWER_MB) * 2**20))


def _check_options(timeout: float | None, max_retries: int | None, connections: int | None) -> None:
    """The options (and their callers' values) that feed the same settings as the config keys: same ranges."""
    if timeout is not None and not 0 < timeout < float("inf"):
        raise UsageError(f"--timeout {timeout:g}: must be more than 0 seconds and finite")
    if max_retries is not None and max_retries < 0:
        raise UsageError(f"--max-retries {max_retries}: must be 0 or more")
    if connections is not None and connections < 1:
        raise UsageError(f"--connections {connections}: must be 1 or more")


def _expand_clusters(given: Sequence[str], config: Mapping[str, Any],
                     cfg_path: Path) -> tuple[list[str], str | None, str | None]:
    """(cluster names, in order, without repeats; a label for the set; the strategy its group names).

    A name is a [clusters.NAME] or a [groups.NAME] (whose `clusters` list is expanded in place)."""
    clusters: Mapping[str, Any] = config.get("clusters", {})
    groups: Mapping[str, Any] = config.get("groups", {})
    names: list[str] = []
    strategies: set[str] = set()
    for name in given:
        if name in groups and name not in clusters:
            table = groups[name]
            members = table.get("clusters") if isinstance(table, dict) else None
            if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
                raise UsageError(f'{cfg_path}: [groups.{name}] needs clusters = ["a", "b"] (names of '
                                 "[clusters.NAME] tables)")
            for m in members:
                if m not in clusters:
                    known = ", ".join(sorted(clusters)) or "none"
                    raise UsageError(f"{cfg_path}: [groups.{name}] clusters names {m}, which has no "
                                     f"[clusters.{m}] (known: {known})")
            if "strategy" in table:  # one of STRATEGIES (config_schema)
                strategies.add(table["strategy"])
            names.extend(members)
        else:
            names.append(name)  # an unknown name is reported where it is resolved, as for one cluster
    unique = list(dict.fromkeys(names))
    label = given[0] if len(given) == 1 else "+".join(given) if given else None
    if len(strategies) > 1:
        raise UsageError(f"--cluster {', '.join(given)}: the groups name different strategies "
                         f"({', '.join(sorted(strategies))}); choose one with --strategy")
    return unique, label, (strategies.pop() if strategies else None)


def _check_strategy(value: str, where: str) -> str:
    if value not in STRATEGIES:
        raise UsageError(f"{where} {value}: {STRATEGY_CHOICES}")
    return value


def _strategy(option: str | None, env: Mapping[str, str], group: str | None, cfg_path: Path) -> str:
    """--strategy > ESCLI_STRATEGY > the group's strategy > failover (in the order given)."""
    if option is not None:
        return _check_strategy(option, "--strategy")
    if env.get(ENV_STRATEGY):
        return _check_strategy(env[ENV_STRATEGY], ENV_STRATEGY)
    return group or FAILOVER


def _cache_url(option: str | None, env: Mapping[str, str], table: Mapping[str, Any],
               config: Path) -> tuple[str | None, str | None]:
    """The shared cache level's URL (--cache-url > ESCLI_CACHE_URL > [cache] url) and its password."""
    if option is not None:
        url, where = option, "--cache-url"
    elif env.get(ENV_CACHE_URL):
        url, where = env[ENV_CACHE_URL], ENV_CACHE_URL
    elif table.get("url"):
        url, where = str(table["url"]), f"{config}: [cache] url"
    else:
        return None, None
    url = url.strip()
    if not url:  # an empty --cache-url "" or ESCLI_CACHE_URL= turns the shared level off
        return None, None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise UsageError(f"{where} {url}: {exc}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise UsageError(f"{where} {url}: expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB")
    if parts.password is not None:
        raise UsageError(f"{where}: put the Redis password in {ENV_CACHE_PASSWORD}, {ENV_CACHE_PASSWORD_FILE} or "
                         "[cache] password_env / password_file, not in the URL")
    if "password" in table:
        raise UsageError(f"{config}: [cache] password must come from password_env or password_file, not inline")
    password = env.get(ENV_CACHE_PASSWORD) or _env_secret_file(env, ENV_CACHE_PASSWORD_FILE)
    if password is None and "password_env" in table:
        name = str(table["password_env"])
        if name not in env:
            raise UsageError(f"{config}: [cache] password_env names {name}, which is not set")
        password = env[name]
    if password is None and "password_file" in table:
        password = _read_secret_file(str(table["password_file"]), "password", config)
    return url, password


def _prompt_password(username: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError(
            f"no password for user {username}: set {ENV_PASSWORD}, or password_env/password_file in the config"
        )
    import getpass

    return getpass.getpass(f"Password for {username}: ")
