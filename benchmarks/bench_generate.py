"""Generation benchmark: `eqcell generate slstm -o -` as a whole process, against the imports it needs.

    python benchmarks/bench_generate.py                 # 15 runs each, writes benchmarks/results/generate.json
    python benchmarks/bench_generate.py --runs 30 --out /tmp/results

What a user waits for is the whole command: interpreter start, imports (click, jinja2, yaml,
sympy), parsing, analysis, rendering and writing. So each run is a fresh subprocess, timed from
outside (wall clock, `time.perf_counter`), and its CPU time (user + system, from
`resource.getrusage(RUSAGE_CHILDREN)`) is recorded too. References, timed the same way and
alternated with it run by run: `python -c "pass"` (the interpreter alone) and
`python -c "import sympy, jinja2, click, yaml"` (the floor: the libraries generation must import).

It also checks that generating imports no deep-learning framework (keras, tensorflow, tf_keras,
jax, torch, ...): `eqcell.cli.main(["generate", "slstm", "-o", "-"])` runs in a fresh interpreter
that then lists the framework modules in `sys.modules`.

Goal (issue 8): median wall time of `eqcell generate slstm -o -` <= 1.10x the floor's, both
measured in the same run (the machine's speed cancels out of the ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_RATIO = 1.10
FLOOR = 'python -c "import sympy, jinja2, click, yaml"'
FRAMEWORKS = ("keras", "tensorflow", "tf_keras", "jax", "jaxlib", "flax", "torch", "torchvision",
              "tensorboard", "tensorflow_probability", "mlx")

FRAMEWORK_CHECK = f"""
import contextlib, io, json, sys
import eqcell.cli
out = io.StringIO()
code = 0
with contextlib.redirect_stdout(out):
    try:
        eqcell.cli.main(["generate", "slstm", "-o", "-"])
    except SystemExit as exit:
        code = exit.code or 0
roots = sorted({{name.split(".")[0] for name in sys.modules}})
print(json.dumps({{"exit_code": code, "output_chars": len(out.getvalue()),
                  "frameworks": [r for r in roots if r in {FRAMEWORKS!r}],
                  "numpy_imported": "numpy" in roots}}))
"""


def eqcell_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m eqcell`."""
    script = os.path.join(os.path.dirname(sys.executable), "eqcell")
    if os.path.exists(script):
        return [script]
    found = shutil.which("eqcell")
    return [found] if found else [sys.executable, "-m", "eqcell"]


# As a user's installation runs: Python keeps the compiled modules (.pyc) of eqcell as it does
# of sympy and jinja2; PYTHONDONTWRITEBYTECODE (set on some machines) would make eqcell alone
# recompile its modules on every run, and Jinja's cache of compiled templates is on.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=CHILD_ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command (default 15)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    args = parser.parse_args(argv)

    env_note = {k: os.environ[k] for k in ("KERAS_BACKEND",) if k in os.environ}
    commands = {
        "eqcell generate slstm -o -": eqcell_command() + ["generate", "slstm", "-o", "-"],
        FLOOR: [sys.executable, "-c", "import sympy, jinja2, click, yaml"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }
    # Warm-up (disk cache, .pyc files), then the commands alternated run by run.
    for name, cmd in commands.items():
        _, _, proc = run_once(cmd)
        if proc.returncode != 0:
            print(f"{name}: exit status {proc.returncode}\n{proc.stderr}", file=sys.stderr)
            return 1
    samples = {name: {"wall": [], "cpu": []} for name in commands}
    output_chars = None
    for _ in range(args.runs):
        for name, cmd in commands.items():
            wall, cpu, proc = run_once(cmd)
            if proc.returncode != 0:
                print(f"{name}: exit status {proc.returncode}\n{proc.stderr}", file=sys.stderr)
                return 1
            samples[name]["wall"].append(wall)
            samples[name]["cpu"].append(cpu)
            if name.startswith("eqcell"):
                output_chars = len(proc.stdout)

    check = subprocess.run([sys.executable, "-c", FRAMEWORK_CHECK], capture_output=True, text=True)
    try:
        imports = json.loads(check.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        imports = {"error": (check.stderr or check.stdout)[-2000:]}

    results = {name: {"command": commands[name], "wall_s": summary(s["wall"]), "cpu_s": summary(s["cpu"])}
               for name, s in samples.items()}
    gen = results["eqcell generate slstm -o -"]
    median = gen["wall_s"]["median"]
    floor = results[FLOOR]["wall_s"]["median"]
    ratio = median / floor
    no_frameworks = "error" not in imports and imports.get("exit_code") == 0 and not imports.get("frameworks")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": args.runs,
        "env": env_note,
        "results": results,
        "generated_chars": output_chars,
        "framework_imports": imports,
        "ratio_to_floor": ratio,
        "target_ratio": TARGET_RATIO,
        "checks": {
            "ratio_to_floor": "PASS" if ratio <= TARGET_RATIO else "MISS",
            "no_framework_import": "PASS" if no_frameworks else "MISS",
        },
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "generate.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)

    print(f"{args.runs} runs each, alternated; whole process, wall clock (CPU = user + system of the child); "
          f"load average {', '.join(f'{v:.1f}' for v in report['load_average'])}")
    print(f"  {'command':<30} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU median s':>13}")
    for name, r in results.items():
        print(f"  {name:<30} {r['wall_s']['median']:>9.3f} {r['wall_s']['min']:>7.3f} {r['wall_s']['max']:>7.3f} "
              f"{r['cpu_s']['median']:>13.3f}")
    print(f"  eqcell generate - floor: {median - floor:+.3f} s median")
    print(f"{report['checks']['ratio_to_floor']}: eqcell generate slstm -o - / floor = {ratio:.3f}x "
          f"(medians {median:.3f} s / {floor:.3f} s) vs goal <= {TARGET_RATIO}x")
    if "error" in imports:
        print(f"MISS: framework import check failed to run: {imports['error']}")
    else:
        print(f"{report['checks']['no_framework_import']}: frameworks imported by generate: "
              f"{imports['frameworks'] or 'none'} (exit {imports['exit_code']}, {imports['output_chars']} chars; "
              f"numpy imported: {imports['numpy_imported']})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
