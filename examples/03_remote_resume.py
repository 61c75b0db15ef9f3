"""Hardware in the loop, end to end: a plant served in one process, physics-aware training against it
from another, the trainer killed midway (SIGKILL, as a power cut or an out-of-memory kill would) and
resumed, then a learned twin fitted from the run's recording.

It runs the three commands the README shows, in subprocesses, from a scratch folder:

    pnnlab serve --plant shg --plant-args '{"n_inputs": 12, "n_outputs": 7, "mismatch": "typical", "noise": "typical"}' \\
        --port 0 --token-file token.txt
    pnnlab run remote_pat.toml              # the [remote] table points the model at the served device
    pnnlab run --resume runs/<run folder>   # after the kill: continues from the last checkpoint

The served SHG plant stands in for the instrument: the trainer never sees its hidden truth, only
what comes back over gRPC (docs/remote.md). The run folder's ``queries.sqlite`` holds every query;
the resumed run replays the ones after its checkpoint instead of asking the device again, so the
device's own meter ends equal to the number of recorded queries (checked below; the bit-identity of a
resumed and an uninterrupted run is tested in tests/test_resume.py).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pnnlab.data import load_vowels
from pnnlab.plants.optics.shg import SHGPlant
from pnnlab.recording import Recording
from pnnlab.twins import LearnedTwin, fit_twin
from pnnlab.twins.fit import relative_error
from pnnlab.twins.grouped import GroupedControls

PNNLAB = [sys.executable, "-m", "pnnlab.cli"]
PLANT_ARGS = {"n_inputs": 12, "n_outputs": 7, "mismatch": "typical", "noise": "typical", "seed": 0}
EPOCHS = 6


def wait_for(predicate, *, timeout: float, what: str, poll: float = 0.05):
    """Poll ``predicate()`` until it returns something truthy (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(PNNLAB + ["serve", "--plant", "shg", "--plant-args", json.dumps(PLANT_ARGS),
                                        "--port", "0", "--token-file", "token.txt"],
                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = wait_for(lambda: server.stdout.readline(), timeout=60, what="the server to start")
    while not line.startswith("address:"):
        if server.poll() is not None:
            raise RuntimeError(f"pnnlab serve exited: {line}{server.stdout.read()}")
        line = server.stdout.readline()
    return server, line.split()[1]


def main() -> None:
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="pnnlab-remote-"))
    server, address = start_server(folder)
    print(f"1. pnnlab serve: the SHG plant is served at {address} (loopback only, token in token.txt)")
    try:
        (folder / "remote_pat.toml").write_text(f"""
name = "remote-pat"
seed = 0
[data]
name = "vowels"
[model]
name = "shg_classifier"
mismatch = "typical"
noise = "typical"
[[methods]]
name = "pat"
[train]
epochs = {EPOCHS}
lr = 0.005
batch_size = 16
[remote]
address = "{address}"
token_file = "token.txt"
""")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        trainer = subprocess.Popen(PNNLAB + ["run", "remote_pat.toml", "--out", "runs", "--no-progress",
                                             "--checkpoint-every", "0"],
                                   cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        run_dir = wait_for(lambda: next((folder / "runs").glob("*-remote-pat"), None) if (folder / "runs").is_dir()
                           else None, timeout=120, what="the run folder")
        steps_per_epoch = -(-len(load_vowels(seed=0).y_train) // 16)
        kill_at = random.Random(0).randint(steps_per_epoch, (EPOCHS - 1) * steps_per_epoch)

        def steps_done() -> int:
            path = run_dir / "metrics.jsonl"
            return sum('"kind": "step"' in line for line in path.read_text().splitlines()) if path.is_file() else 0

        wait_for(lambda: steps_done() >= kill_at or trainer.poll() is not None, timeout=300,
                 what=f"step {kill_at}")
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=30)
        print(f"2. pnnlab run remote_pat.toml: trainer killed with SIGKILL after {steps_done()} of "
              f"{EPOCHS * steps_per_epoch} steps ({json.loads((run_dir / 'status.json').read_text())['status']!r} "
              f"in status.json)")

        resumed = subprocess.run(PNNLAB + ["run", "--resume", str(run_dir.relative_to(folder)), "--no-progress"],
                                 cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        if resumed.returncode != 0:
            raise RuntimeError(f"the resume failed:\n{resumed.stdout}\n{resumed.stderr}")
        print(f"3. pnnlab run --resume {run_dir.name}:")
        print("   " + "\n   ".join(line for line in resumed.stdout.splitlines() if line.strip()))

        # the device made no query twice: its own meter equals the queries in the recording
        from pnnlab.remote import RemotePlant
        token = (folder / "token.txt").read_text().strip()
        with Recording(run_dir / "queries.sqlite") as recording:
            recorded = len(recording)
            pairs = recording.to_dataset(plant="pat/0")
            specs = recording.plants["pat/0"]["control_specs"]
        probe = RemotePlant(address, token=token, acquire=False)
        served = probe.remote_meter()["queries"]
        probe.close()
        print(f"   device meter: {served} queries executed; recording: {recorded} queries "
              f"({'none repeated' if served == recorded else 'MISMATCH'})")
        if served != recorded:
            raise RuntimeError("the device executed a different number of queries than the run recorded")

        # 4. a learned twin from the recording: fit on the first 80 % of the recorded queries (in time),
        # judge it on the last 20 %, beside the nominal (design-value) twin the run trained with
        n = len(pairs.y)
        cut = int(torch.searchsorted(pairs.seq, pairs.seq[int(0.8 * n)]))
        train = (pairs.x[:cut], {k: v[:cut] for k, v in pairs.controls.items()}, pairs.y[:cut])
        held = (pairs.x[cut:], {k: v[cut:] for k, v in pairs.controls.items()}, pairs.y[cut:])
        shapes = {k: s.shape for k, s in specs.items()}
        twin, report = fit_twin(LearnedTwin(in_features=12, out_features=7, control_shapes=shapes), train,
                                epochs=150, lr=3e-3, seed=0)
        design = SHGPlant(n_inputs=12, n_outputs=7).nominal_twin()
        nominal = GroupedControls(design, control_shapes=shapes)
        with torch.no_grad():
            learned_err, nominal_err = relative_error(twin, *held), relative_error(nominal, *held)
        print(f"4. learned twin fitted from {cut} recorded samples (no new queries): held-out relative error "
              f"{learned_err:.3f} on the last {n - cut} samples; the nominal twin's: {nominal_err:.3f}")
        print(f"run folder: {run_dir}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
