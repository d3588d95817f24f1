"""Shared fixtures. Every test writes under its own temporary STORYFLOW_HOME."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import stop

# Prefect must not phone home (and on a fresh database that also causes "database is locked").
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
STORIES = REPO / "stories"


@pytest.fixture
def storyflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh output folder, set as STORYFLOW_HOME for the test."""
    home = tmp_path / "outputs"
    home.mkdir()
    monkeypatch.setenv("STORYFLOW_HOME", str(home))
    return home


@pytest.fixture
def write_story(tmp_path: Path):
    """write_story(text, name='story.md') -> path of a story file in a temporary folder."""

    def write(text: str | bytes, name: str = "story.md") -> Path:
        path = tmp_path / "stories" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def torch_on_one_thread():
    """Tiny models run on one torch thread during the test (tests.tiny_sound.one_torch_thread: their operations
    are so small that a pool of threads only waits, and two test workers share two cores)."""
    from tests.tiny_sound import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def prefect_server_state(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` on a free loopback port for the whole session.

    Started through the same code as `make ui`, stopped afterwards by its process id.
    Yields {"api_url", "home"}: the server keeps its database under "home".
    """
    import socket

    from flows.server import start_server, stop_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefect_home = tmp_path_factory.mktemp("prefect-server")
    state = start_server(prefect_home, port=port, wait_s=120)
    try:
        yield {"api_url": state["api_url"], "home": prefect_home}
    finally:
        stop_server(prefect_home)


@pytest.fixture(scope="session")
def prefect_server(prefect_server_state) -> str:
    """The session Prefect server's API URL; subprocesses get it as PREFECT_API_URL."""
    return prefect_server_state["api_url"]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on a free loopback port for the whole session, with an empty database.

    A fresh cluster in a temporary folder (initdb as the `postgres` user when we run as root,
    which PostgreSQL refuses to run as), fsync off because it is thrown away afterwards, TCP on
    127.0.0.1 only and its unix socket inside that folder. Yields a SQLAlchemy URL
    `postgresql+psycopg://storyflow@127.0.0.1:PORT/storyflow_test`; afterwards the server is
    stopped by its process id (SIGINT: fast shutdown) and the cluster removed.
    Without the server binaries the tests that need it skip, unless STORYFLOW_REQUIRE_POSTGRES=1
    (CI sets it), where they fail instead.
    """
    import shutil
    import subprocess
    import tempfile

    # 1. the server binaries, the driver, and the user the server runs as
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        _postgres_unavailable(
            "PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin",
            "install the server (apt-get install postgresql), or run .ci/run, which installs it",
        )
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("the psycopg driver is not installed", "install the test dependencies: make install")
    run_as: dict = {}
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            _postgres_unavailable("running as root and there is no 'postgres' user to run the server as",
                                  "create one (useradd --system postgres) or run the tests as another user")
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    # 2. a fresh cluster in a private folder the server's user owns (pytest's tmp folders are root-only)
    folder = Path(tempfile.mkdtemp(prefix="storyflow-pg-"))
    if run_as:
        os.chown(folder, run_as["user"], run_as["group"])
    data = folder / "data"
    server = None
    try:
        initdb = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "storyflow", "--auth=trust", "--encoding=UTF8",
             "--no-locale", "--no-sync"],
            capture_output=True, text=True, timeout=120, **run_as,
        )  # fmt: skip
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")

        # 3. start it on a free loopback port (again on another port if that one was taken meanwhile)
        log_path = folder / "server.log"
        for _attempt in range(3):
            port = _free_port()
            with open(log_path, "ab") as log:
                server = subprocess.Popen(
                    [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                     "-k", str(folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **run_as,
                )  # fmt: skip
            admin = _wait_for_postgres(psycopg, server, port, wait_s=60)
            if admin is not None:
                break
            server.wait()
        else:
            pytest.fail(f"PostgreSQL did not start; its log:\n{log_path.read_text()[-3000:]}")

        # 4. the database the catalog tests use
        with admin:
            admin.execute("CREATE DATABASE storyflow_test")
        yield f"postgresql+psycopg://storyflow@127.0.0.1:{port}/storyflow_test"
    finally:
        # 5. fast shutdown by process id (SIGINT: roll back open transactions, disconnect, exit)
        if server is not None:
            stop(server, signal.SIGINT, timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


_database_numbers = itertools.count(1)


@pytest.fixture
def pg_database(postgres_url: str):
    """The URL of a new, empty database on the session's PostgreSQL server; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    name = f"catalog_{next(_database_numbers)}"

    def admin() -> psycopg.Connection:
        return psycopg.connect(host=server.host, port=server.port, user=server.username, dbname="postgres",
                               autocommit=True)  # fmt: skip

    with admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin() as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # also ends connections a failed test left open


def _postgres_bin_dir() -> Path | None:
    """The folder holding initdb and postgres: from PATH, else the newest /usr/lib/postgresql/N/bin."""
    import shutil

    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    installed = Path("/usr/lib/postgresql").glob("*/bin")  # Debian: one folder per major version
    candidates += sorted(installed, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, reverse=True)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "postgres").is_file()), None)


def _postgres_unavailable(reason: str, fix: str):
    """Skip the PostgreSQL tests, or fail them where CI requires PostgreSQL (STORYFLOW_REQUIRE_POSTGRES=1)."""
    if os.environ.get("STORYFLOW_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (STORYFLOW_REQUIRE_POSTGRES=1) but {reason}; fix: {fix}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason} ({fix})")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_postgres(psycopg, server, port: int, wait_s: float):
    """An autocommit admin connection once the server accepts one; None if the server exited first."""
    import time

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return None  # e.g. the port was taken between choosing it and binding it
        try:
            return psycopg.connect(host="127.0.0.1", port=port, user="storyflow", dbname="postgres",
                                   autocommit=True, connect_timeout=2)  # fmt: skip
        except psycopg.OperationalError:
            time.sleep(0.1)
    server.kill()
    server.wait()
    pytest.fail(f"PostgreSQL did not accept connections on 127.0.0.1:{port} within {wait_s:.0f} s")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 server on a free loopback port for the session; stopped by its process id afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto's S3 server did not start; its log:\n{log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{endpoint}/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        stop(server)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under -n, the tests of a module that defines a module-scoped fixture run on one worker; the others are
    dealt one by one to whichever worker is free.

    xdist's default distribution ("load") deals a module's tests to both workers, and a module-scoped fixture
    (a film made once for a module's checks, tiny models built once) is then made again in each worker that
    got one of them. (`--dist loadgroup` with xdist_group marks would say so per module, but pytest-xdist 3.8
    cannot rename pytest 9's test ids, so it groups nothing.) An explicit --dist other than load is kept."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixturesMadeOnce(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _defines_a_module_fixture(config.rootpath / module) else nodeid

    return ModuleFixturesMadeOnce(config, log)


@functools.cache
def _defines_a_module_fixture(module: Path) -> bool:
    try:
        return 'scope="module"' in module.read_text(encoding="utf-8")
    except OSError:
        return False


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the temporary Prefect servers that films run in this process started, while pytest still holds its
    streams. Prefect would stop them at exit, and log its goodbye to a stream pytest has closed by then (a
    '--- Logging error ---' traceback at the end of every run). Prefect keeps them in a private registry only."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is not None:
        for server in list(server_module.SubprocessASGIServer._instances.values()):
            server.stop()
