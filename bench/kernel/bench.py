"""kumo's Jupyter kernel, measured with Debian's Jupyter (make bench-kernel).

  start     kernel start to ready (kernel_info answered), kumo against
            ipykernel (Debian's python3 kernel) in the same run
  execute   round trip of one execute request: a trivial cell run live,
            the same cell replayed in a later session; ipykernel's
            trivial cell for scale
  notebook  a 50-cell notebook of 10 ssh_run calls each on a local node,
            replayed headless through nbclient, against `kumo run` of the
            same notebook (the same run, replayed)
  nbclient  51 trivial cells through nbclient, kumo against ipykernel:
            what nbclient itself costs per cell

Usage: bench.py KUMO [ROUNDS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import jupyter_client
import nbclient
import nbformat

KUMO = os.path.abspath(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def median_ms(xs):
    return statistics.median(xs) * 1000


def start_ready(kernel, cwd):
    t = time.perf_counter()
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name=kernel, cwd=cwd, startup_timeout=60)
    took = time.perf_counter() - t
    return took, km, kc


def stop(km, kc):
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def round_trip(kc, code):
    t = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
    took = time.perf_counter() - t
    assert reply["content"]["status"] == "ok", reply["content"]
    return took


def main():
    work = tempfile.mkdtemp(prefix="kumo-bench-kernel-")
    os.environ["JUPYTER_DATA_DIR"] = os.path.join(work, "jupyter")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    subprocess.run([KUMO, "kernel", "install", "--user"], check=True, stdout=subprocess.DEVNULL)
    try:
        bench_start(work)
        bench_execute(work)
        bench_notebook(work)
        bench_nbclient(work)
    finally:
        for d in ("exec", "nb"):
            path = os.path.join(work, d)
            if os.path.isdir(path):
                subprocess.run([KUMO, "destroy", "--all", "--yes"], cwd=path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def bench_start(work):
    times = {}
    for kernel in ("kumo", "python3"):
        xs = []
        for _ in range(ROUNDS):
            took, km, kc = start_ready(kernel, work)
            xs.append(took)
            stop(km, kc)
        times[kernel] = median_ms(xs)
    print("start to ready: kumo %.0f ms, ipykernel %.0f ms (kumo/ipykernel %.2f)"
          % (times["kumo"], times["python3"], times["kumo"] / times["python3"]))


def bench_execute(work):
    d = os.path.join(work, "exec")
    os.makedirs(d)
    cells = ["v%d = %d * 2" % (i, i) for i in range(ROUNDS * 3)]
    _, km, kc = start_ready("kumo", d)
    live = [round_trip(kc, c) for c in cells]
    stop(km, kc)
    _, km, kc = start_ready("kumo", d)
    replayed = [round_trip(kc, c) for c in cells]
    stop(km, kc)
    _, km, kc = start_ready("python3", d)
    ipy = [round_trip(kc, c) for c in cells]
    stop(km, kc)
    print("execute round trip: kumo live %.1f ms, kumo replayed %.1f ms, ipykernel %.1f ms (kumo live/ipykernel %.2f)"
          % (median_ms(live), median_ms(replayed), median_ms(ipy), median_ms(live) / median_ms(ipy)))


def bench_notebook(work, cells=50, calls=10):
    d = os.path.join(work, "nb")
    os.makedirs(d)
    lines = ['# %% Node', 'n = unit_group("bench").create_unit("n", spec("local", "small")).nodes()[0]']
    for c in range(cells):
        lines.append("\n# %% Cell " + str(c))
        for i in range(calls):
            lines.append('r%d_%d = ssh_run(n, "echo cell %d call %d")' % (c, i, c, i))
    with open(os.path.join(d, "replay.star"), "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run([KUMO, "convert", "replay.star"], cwd=d, check=True, stdout=subprocess.DEVNULL)
    os.remove(os.path.join(d, "replay.star"))
    subprocess.run([KUMO, "run", "-q", "replay.ipynb"], cwd=d, check=True, stdout=subprocess.DEVNULL)
    run, nbc = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        out = subprocess.run([KUMO, "run", "-q", "replay.ipynb"], cwd=d, check=True, capture_output=True, text=True).stdout
        run.append(time.perf_counter() - t)
        assert "%d replayed" % (cells + 1) in out, out
        nb = nbformat.read(os.path.join(d, "replay.ipynb"), 4)
        t = time.perf_counter()
        nbclient.NotebookClient(nb, kernel_name="kumo", timeout=600, resources={"metadata": {"path": d}}).execute()
        nbc.append(time.perf_counter() - t)
        shown = [o["data"]["text/plain"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "display_data"]
        assert len(shown) == cells + 1 and all(s.startswith("↺ replayed") for s in shown), shown[:3]
    print("%d-cell notebook (%d calls) replayed: nbclient on the kernel %.0f ms, kumo run %.0f ms (nbclient/kumo run %.2f)"
          % (cells, cells * calls + 1, median_ms(nbc), median_ms(run), median_ms(nbc) / median_ms(run)))


def bench_nbclient(work, cells=51):
    """nbclient's own cost per cell, on trivial cells: ipykernel and kumo."""
    d = os.path.join(work, "trivial")
    os.makedirs(d)
    times = {}
    for kernel in ("python3", "kumo"):
        xs = []
        for r in range(ROUNDS):
            nb = nbformat.v4.new_notebook()
            nb.cells = [nbformat.v4.new_code_cell("x%d = %d" % (i, i)) for i in range(cells)]
            t = time.perf_counter()
            nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": d}}).execute()
            xs.append(time.perf_counter() - t)
        times[kernel] = median_ms(xs)
    print("nbclient, %d trivial cells (kernel start included): kumo %.0f ms, ipykernel %.0f ms (kumo/ipykernel %.2f)"
          % (cells, times["kumo"], times["python3"], times["kumo"] / times["python3"]))


if __name__ == "__main__":
    main()
