"""The PyTorch side of `beard bench --distill METHOD --torch`: the official distillation
script, unchanged (through tests/scripts/run_official_distill.py), for a few iterations on
the CIFAR-10 files in --cifar, with the official settings (main_DM.py's defaults;
command.txt's for IDM and BACON; main.py's for DC and DSA, DSA as its README runs it; the
issue's CIFAR-10 table for MTT, which reads the experts in --buffer-path) and the same
threads. Prints one line
    TORCH <seconds per iteration> <iterations timed> <CPU seconds per iteration>
measured between the ends of the image updates of consecutive iterations, so that the
set-up (data loading, the official loop's evaluation at iteration 0) is left out.

usage: bench_distill_torch.py --method DM --ipc 10 --iterations 5 --official DIR --cifar DIR
                              [--threads 2] [--buffer-path DIR (MTT)]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "scripts"))
from distill_fidelity import IDM_COMMON, IDM_IPC, OFFICIAL, official_args, steps_per_iteration  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", required=True)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--official", required=True)
    ap.add_argument("--cifar", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--buffer-path")
    a = ap.parse_args()
    code, script, _ = OFFICIAL[a.method]
    with tempfile.TemporaryDirectory() as work:
        timing = os.path.join(work, "timing.json")
        if a.method in ("DC", "DSA", "MTT"):
            args = official_args(a.method, a.ipc, a.iterations, a.buffer_path)
        else:
            args = ["--dataset", "CIFAR10", "--model", "ConvNet", "--ipc", str(a.ipc), "--Iteration",
                    str(a.iterations), "--num_exp", "1", "--num_eval", "1", "--epoch_eval_train", "0", "--data_path",
                    "data", "--save_path", "."]
            if a.method != "DM":
                args += IDM_COMMON + IDM_IPC.get(a.ipc, [])
        cmd = [sys.executable, os.path.join(HERE, "..", "tests", "scripts", "run_official_distill.py"), "--code",
               os.path.join(a.official, code), "--script", script, "--cifar", a.cifar, "--threads", str(a.threads),
               "--timing", timing, "--"] + args
        r = subprocess.run(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            sys.stderr.write(r.stderr[-2000:])
            sys.exit(1)
        tj = json.load(open(timing))
        stamps, cpu = tj["image_steps"], tj["image_steps_cpu"]
    per = steps_per_iteration(a.method, a.ipc)  # image-optimiser steps per iteration
    ends, cends = stamps[per - 1::per], cpu[per - 1::per]
    if len(ends) < 2:
        sys.exit("too few iterations to time")
    n = len(ends) - 1
    print("TORCH %.6f %d %.6f" % ((ends[-1] - ends[0]) / n, n, (cends[-1] - cends[0]) / n))


if __name__ == "__main__":
    main()
