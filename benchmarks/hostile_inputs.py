"""Hostile and broken inputs through the real command line: what happens to each, and its peak memory.

    python benchmarks/hostile_inputs.py            # one table row per input

Every crafted archive of tests/hostile.py, plus the largest genuine member the
default limits admit (30 minutes of float64 audio, as the original Python 2
archive and as numpy's own np.savez write it), runs in its own process; the
peak is that process's own maximum resident memory. The baseline row is the
same command on an honest two-label archive, measured in the same run.
"""
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_SPEC = importlib.util.spec_from_file_location("hostile", os.path.join(ROOT, "tests", "hostile.py"))
hostile = sys.modules["hostile"] = importlib.util.module_from_spec(_SPEC)  # tests/hostile.py's builders; tests/ is no package
_SPEC.loader.exec_module(hostile)

AUDIO_SECONDS = 30 * 60  # the longest recording the default max_member_mb is sized for


def thirty_minute_member(py2):
    """A genuine-looking member: 30 min of float64 audio and 20,000 labels, as Python 2 (BINSTRING) or np.save (BINBYTES) writes it."""
    audio = np.zeros(AUDIO_SECONDS * 44100).tobytes()
    data = (b"T" + struct.pack("<I", len(audio)) + audio) if py2 else hostile.raw(audio)
    labels = hostile.lst(*(hostile.interval(i * 4410, i * 4410 + 8820, 40 + i % 40, beat=(i % 8) / 8) for i in range(20_000)))
    return hostile.pickled(hostile.entry(hostile.call(hostile.TREE, labels),
                                         hostile.array(hostile.dtype("f8"), (AUDIO_SECONDS * 44100,), data)))


def write_inputs(folder):
    """Write every input archive into folder → [(row name, path)]."""
    def write(name, member):
        path = os.path.join(folder, name + ".npz")
        hostile.write_archive(path, {"0001": hostile.honest(), "0666": member})
        return path
    inputs = [("baseline: an honest two-label archive", write("honest", hostile.honest()))]
    inputs += [(attack.__name__.replace("_", " "), write(attack.__name__, attack(os.path.join(folder, "pwned"))))
               for attack in hostile.ATTACKS]
    for py2 in (True, False):
        path = os.path.join(folder, f"long{int(py2)}.npz")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("0001.npy", hostile.npy_member(thirty_minute_member(py2)))
        inputs.append(("genuine 30-min member, " + ("Python 2 pickle" if py2 else "np.savez pickle"), path))
    return inputs


def main():
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        # written by a child process, so that this one stays small and its children start small
        listing = subprocess.run([sys.executable, __file__, "--write-inputs", folder], check=True,
                                 capture_output=True, text=True).stdout
        for name, path in json.loads(listing):
            work = tempfile.mkdtemp(dir=folder)
            command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--data_path={path}",
                       f"--output_dir={work}/out", f"--cache_dir={work}/cache", "--max_minutes=0.01", "--epochs=1",
                       "--num_outputs=0"]
            code, out, err, peak = hostile.run_measured(command, work, timeout=600)
            said = [line for line in err.splitlines() if line.startswith("error:")] or \
                   [line for line in out.splitlines() if line.startswith(("songs:", "warning:"))] or ["(nothing)"]
            ran = "RAN CODE" if os.path.exists(os.path.join(folder, "pwned")) else ""
            rows.append((name, code, peak, ran or said[0][:110]))
            print(f"{name}: exit {code}, {peak:.0f} MB", file=sys.stderr, flush=True)
    print("\n| input | exit | peak MB | what the run said |\n|---|---|---|---|")
    for name, code, peak, said in rows:
        print(f"| {name} | {code} | {peak:.0f} | {said.replace('|', '/')} |")
    print(f"\nworst peak: {max(row[2] for row in rows):.0f} MB; baseline {rows[0][2]:.0f} MB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write-inputs"]:
        print(json.dumps(write_inputs(sys.argv[2])))
    else:
        main()
