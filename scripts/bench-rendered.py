#!/usr/bin/env python3
"""Rendered-image timing, Yunying against Orthanc in the same run: one
512x512 CT frame of the benchmark series (yunying-bench's cache,
~/.cache/yunying/bench/ct800) stored in each, then 50 GET .../rendered as
image/jpeg and image/png over a keep-alive connection; prints the first
(uncached) and the median time. Needs a release build of yunying, DCMTK's
dcmdump, Orthanc with its DICOMweb plugin, and python requests (the test
venv). To move into yunying-bench with the pixels release."""
import subprocess, time, tempfile, os, statistics, requests, json, sys, pathlib, signal
BIN = os.environ.get("YUNYING_BIN", os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release/yunying"))
f = os.path.expanduser("~/.cache/yunying/bench/ct800/00400.dcm")
raw = open(f, "rb").read()
body = b"--B\r\nContent-Type: application/dicom\r\n\r\n" + raw + b"\r\n--B--\r\n"
ct = 'multipart/related; type="application/dicom"; boundary=B'
def uids():
    out = subprocess.run(["dcmdump", "+P", "0020,000d", "+P", "0020,000e", "+P", "0008,0018", f], capture_output=True, text=True).stdout
    v = [l.split("[")[1].split("]")[0] for l in out.splitlines()]
    return v
st, se, sop = uids()
def timeit(get, n=50):
    first = None; ts = []
    for i in range(n):
        t = time.perf_counter(); r = get(); d = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, r.status_code
        if first is None: first = d
        else: ts.append(d)
    return first, statistics.median(ts), len(r.content)
# Yunying
d = tempfile.mkdtemp()
subprocess.run([BIN, "token", "create", "--name", "b", "--actions", "all", "--out", d + "/t", "--data", d + "/data"], check=True, capture_output=True)
tok = open(d + "/t").read().strip()
p = subprocess.Popen([BIN, "serve", "--http", "127.0.0.1:18090", "--dicom", "off", "--data", d + "/data"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
while "ready" not in p.stdout.readline(): pass
s = requests.Session(); s.headers["Authorization"] = "Bearer " + tok
assert s.post("http://127.0.0.1:18090/dicom-web/studies", data=body, headers={"Content-Type": ct}).status_code == 200
u = f"http://127.0.0.1:18090/dicom-web/studies/{st}/series/{se}/instances/{sop}/rendered"
for acc in ["image/jpeg", "image/png"]:
    first, med, size = timeit(lambda: s.get(u, headers={"Accept": acc}))
    print(f"yunying {acc}: first {first:.1f} ms, median {med:.2f} ms, {size} bytes")
p.send_signal(signal.SIGTERM); p.wait()
# Orthanc
od = tempfile.mkdtemp()
cfg = {"StorageDirectory": od, "IndexDirectory": od, "HttpPort": 18042, "DicomPort": 18043, "RemoteAccessAllowed": True, "AuthenticationEnabled": False, "Plugins": ["/usr/lib/orthanc/libOrthancDicomWeb.so.1.7"]}
json.dump(cfg, open(od + "/c.json", "w"))
o = subprocess.Popen(["/usr/sbin/Orthanc", od + "/c.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for i in range(100):
    try:
        if requests.get("http://127.0.0.1:18042/system").status_code == 200: break
    except Exception: pass
    time.sleep(0.1)
r = requests.post("http://127.0.0.1:18042/instances", data=raw); oid = r.json()["ID"]
for acc in ["image/jpeg", "image/png"]:
    ou = f"http://127.0.0.1:18042/dicom-web/studies/{st}/series/{se}/instances/{sop}/rendered"
    os_ = requests.Session(); first, med, size = timeit(lambda: os_.get(ou, headers={"Accept": acc}))
    print(f"orthanc {acc}: first {first:.1f} ms, median {med:.2f} ms, {size} bytes")
o.terminate(); o.wait()
