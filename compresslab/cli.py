"""``compresslab`` command line: lab, run-lessons, student (and more as lessons grow)."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path


def _cmd_lab(args) -> int:
    from . import course

    try:
        folder = course.prepare_workdir(Path(args.dir) if args.dir else None, edition=args.edition)
    except ValueError as exc:
        print(f"compresslab lab: error: {exc}", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}",
           f"--ServerApp.ip={args.ip}",
           # a classroom works offline: no news feed, no update check against the internet (the
           # pop-ups that would ask are off by default too: compresslab/jupyter/overrides.json)
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if args.port:
        cmd.append(f"--ServerApp.port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += args.extra  # unknown options go to JupyterLab, e.g. --IdentityProvider.token=...
    print(f"compresslab: opening the lessons in {folder}", flush=True)
    proc = subprocess.Popen(cmd)

    def forward(_signum, _frame):
        # Ctrl-C or SIGTERM: stop JupyterLab cleanly. Its own SIGINT handler would ask "Shut down
        # this Jupyter server (y/[n])?" on stdin and, with no terminal (stdin at end of file, as
        # in CI or a service), read "no" and keep running; SIGTERM stops it without asking.
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # pragma: no cover - handled by forward()
            continue
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code


def _cmd_run_lessons(args) -> int:
    from . import course

    paths = course.lesson_paths(args.paths)
    rows = []
    for p in paths:
        print(f"running {p} ...", flush=True)
        r = course.run_notebook(p, timeout=args.timeout, write=args.write)
        rows.append(r)
    width = max(len(str(r.path.name)) for r in rows) if rows else 6
    print(f"\n{'lesson':<{width}}  {'seconds':>8}  status")
    for r in rows:
        print(f"{r.path.name:<{width}}  {r.seconds:>8.1f}  {r.status}" + (f"  {r.error}" if r.error else ""))
    failed = [r for r in rows if r.status != "ok"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} lessons ran without error")
    return 1 if failed else 0


def _cmd_student(args) -> int:
    from . import course

    try:
        written = course.write_student_editions(args.src, args.output, force=args.force)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"compresslab student: error: {exc}", file=sys.stderr)
        return 2
    for w in written:
        print(f"wrote {w}")
    return 0


def _cmd_bench(args) -> int:
    from . import backend, bench

    if not backend.torch_available():
        print("compresslab bench: error: the standard comparison times torch models (int8 through "
              f"torch's kernels) and needs torch, which is not installed: {backend.install_hint('torch')}",
              file=sys.stderr)
        return 2
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
        bench.run_bench(args.out, batch=args.batch, sizes=sizes, repeat=args.repeat,
                        threads=args.threads, seed=args.seed, progress=not args.no_progress)
    except (ImportError, ValueError) as exc:
        print(f"compresslab bench: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_grade(args) -> int:
    from . import grading

    try:
        rows = grading.grade(args.submissions, args.output, time_limit=args.timeout,
                             memory_mb=args.memory or grading.MEMORY_MB)
    except (FileNotFoundError, ValueError) as exc:
        print(f"compresslab grade: error: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"wrote {len(rows)} rows to {args.output}: "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0


def _seconds(text: str) -> float:
    from .grading import MAX_TIME_LIMIT, check_time_limit

    try:
        return check_time_limit(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds above 0 and at most "
                                         f"{MAX_TIME_LIMIT:g}") from None


def _megabytes(text: str) -> int:
    from .grading import MAX_MEMORY_MB, check_memory

    try:
        return check_memory(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MB above 0 and at most "
                                         f"{MAX_MEMORY_MB}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compresslab", description="Learn neural-network compression "
                                "and acceleration in JupyterLab.")
    sub = p.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="open the lessons in JupyterLab (other options are passed "
                         "on to jupyter lab)")
    lab.add_argument("--dir", help="folder for your copy of the lessons (default: the repository's "
                     "lessons/ in a source checkout, else ~/compresslab-lessons)")
    lab.add_argument("--edition", choices=("student", "instructor"), default=None,
                     help="student (exercises to do) or instructor (with solutions); default: the "
                     "repository's lessons in a source checkout, the student edition from a wheel")
    lab.add_argument("--ip", default="127.0.0.1")
    lab.add_argument("--port", type=int, default=0, help="port (default: JupyterLab's choice)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    lab.set_defaults(func=_cmd_lab)

    run = sub.add_parser("run-lessons", help="execute lessons headless and print a table")
    run.add_argument("paths", nargs="*", help="notebooks or folders (default: every lesson)")
    run.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    run.add_argument("--write", action="store_true", help="save the outputs into the notebooks")
    run.set_defaults(func=_cmd_run_lessons)

    st = sub.add_parser("student", help="write student editions (solutions removed)")
    st.add_argument("src", help="a lesson notebook or a folder of them")
    st.add_argument("-o", "--output", required=True, help="output folder (or .ipynb for one file)")
    st.add_argument("--force", action="store_true", help="overwrite existing notebooks, even the source")
    st.set_defaults(func=_cmd_student)

    gr = sub.add_parser("grade", help="run submitted notebooks and write a CSV of exercise results")
    gr.add_argument("submissions", help="folder with one sub-folder per student")
    gr.add_argument("-o", "--output", default="grades.csv", help="CSV file to write")
    gr.add_argument("--timeout", type=_seconds, default=300.0, help="seconds per notebook")
    gr.add_argument("--memory", type=_megabytes, default=None,
                    help="memory (address space) limit of a submission's processes in MB (default: 2048)")
    gr.set_defaults(func=_cmd_grade)

    bench = sub.add_parser("bench", help="measure dense vs pruned vs int8 vs sparse speed on this "
                           "machine; print a table, write a JSON report and a PNG plot")
    bench.add_argument("--out", help="folder for bench.json and bench.png (default: print only)")
    bench.add_argument("--batch", type=int, default=64, help="batch size of the model comparison")
    bench.add_argument("--repeat", type=int, default=15, help="interleaved rounds per comparison")
    bench.add_argument("--threads", type=int, default=None, help="threads for BLAS and torch "
                       "(default: leave as is)")
    bench.add_argument("--sizes", default="1024,4096,4096,10",
                       help="layer sizes of the MLP, comma-separated (default: 1024,4096,4096,10)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(func=_cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
