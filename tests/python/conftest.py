"""Black-box tests: third-party DICOMweb clients against the real `yunying` binary.

The `yunying` fixture starts `yunying serve` on a free port with a fresh data
directory and stops it afterwards. Real test files come from the pinned
`scripts/fetch-testdata.sh` (directory in $YUNYING_TESTDATA).
"""
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest
import requests


def pytest_addoption(parser):
    parser.addoption("--yunying-bin", default=os.environ.get("YUNYING_BIN", "target/debug/yunying"),
                     help="path of the yunying binary under test")


class Server:
    def __init__(self, binary, extra=()):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix="yunying-py-")
        self.data = pathlib.Path(self.tmp.name) / "data"
        env = dict(os.environ, YUNYING_LOG=os.environ.get("YUNYING_TEST_LOG", "warn"))
        # Every data endpoint needs a credential: a region-wide API token made
        # with the CLI before the server starts.
        token_file = pathlib.Path(self.tmp.name) / "token"
        subprocess.run([binary, "token", "create", "--name", "pytests", "--actions", "all", "--out", str(token_file),
                        "--data", str(self.data)], check=True, capture_output=True, env=env, timeout=60)
        self.token = token_file.read_text().strip()
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.http = requests.Session()
        self.http.headers.update(self.headers)
        self.proc = subprocess.Popen(
            [binary, "serve", "--http", "127.0.0.1:0", "--dicom", "127.0.0.1:0", "--data", str(self.data), *extra],
            stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 60
        self.base = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("yunying: listening on "):
                self.base = line.split("listening on ", 1)[1].strip()
            if line.startswith("yunying: dicom listening on "):
                self.dicom_port = int(line.split()[4].rsplit(":", 1)[1])
            if self.base and getattr(self, "dicom_port", None):
                break
        assert self.base, "yunying printed no listening address"
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("yunying did not become healthy")
        self.dicomweb = self.base + "/dicom-web"

    def cli(self, *args):
        """Runs `yunying ARGS --data DIR` on this server's data directory (e.g.
        `ae add ...` while it runs); asserts success and returns its stdout."""
        r = subprocess.run([self.binary, *args, "--data", str(self.data)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"yunying {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}"
        return r.stdout

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def yunying(request):
    server = Server(request.config.getoption("--yunying-bin"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def testdata():
    d = pathlib.Path(os.environ.get("YUNYING_TESTDATA", pathlib.Path.home() / ".cache/yunying/testdata"))
    if not (d / "MANIFEST.txt").exists():
        pytest.fail(f"test data missing in {d}: run scripts/fetch-testdata.sh")
    return d
