#!/usr/bin/env python3
"""run_corpus.py FAULTLINE [NAME...]: the stress corpus (corpus_programs.py) under `faultline run`.

For each program: generate its input, run it natively, then under
`FAULTLINE run --limit L --swap-dir WORK --stats FILE -- CMD` (--stats rather than --json, so that
stdout is the program's alone and can be compared), each run bounded by the program's timeout
(the whole process group is killed at the end of it), and check:
  - the faultline run ended (no timeout), with the native run's exit status (0);
  - stdout and the program's output files are byte for byte the native run's;
  - the statistics file exists: exit_status 0, io_errors 0, checksum_errors 0, evictions > 0 (the
    limit was felt), and each process's resident_bytes_peak <= limit + 1 MiB (faultline held its
    limit, which is per process) and its io and checksum errors are 0;
  - stderr has no line of faultline's warnings or errors, and no abseil RAW: line;
  - the native peak RSS is at least the program's `pressure` times the limit (else the test has
    lost its pressure).
Prints per program "PASS name (...)", "FAIL name: why" with the tails of the logs, or
"SKIP name: why" (a program not installed; with CI=true that is a FAIL). Wall times and peak RSS
are reported, never checked: peak RSS is wait4's (the largest single process) and the process
tree's (the sum of VmRSS over the tree, sampled every 50 ms, so a shorter peak can be missed).
Exit status: 0 when nothing failed, 77 (meson's SKIP) when userfaultfd is not usable here
(1 with CI=true), 1 otherwise. NAME... runs only those programs (FAULTLINE_CORPUS_ONLY too).

run_corpus.py --bench BENCH FAULTLINE [NAME...]: the bench mode. For each program, generates its
input and runs `BENCH --quick --faultline FAULTLINE --swap-dir WORK --command NAME LIMIT -- CMD`
(BENCH is faultline-bench-programs): native, `faultline run` at the limit, and the kernel's swap
in a memory cgroup v1 at the same limit, with the bench's tables on stdout. Only stdout is
compared there (gcc's object file is not); correctness is the test's job. FAULTLINE_CORPUS_BENCH_ARGS
adds options (e.g. "--repetitions 3").
"""

import sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import corpus_programs

MiB = 1 << 20
IN_CI = os.environ.get("CI") == "true"
ALARMING = re.compile(r"^faultline[^:]*: (warning|error)|\bRAW:|dropped behind|reads as zeros",
                      re.IGNORECASE)


def uffd_usable():
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
            if f.read().strip() == "1":
                return True
    except OSError:
        pass
    return os.access("/dev/userfaultfd", os.R_OK | os.W_OK)


def tree_rss_kib(root):
    """The sum of VmRSS (KiB) over `root` and its descendants; 0 when it is gone."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    pending.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


RUNNING = []  # the process group of the run in progress, for the signal handler
BENCHING = []  # the bench in progress: it must remove its swap file and cgroup before we go


def on_signal(signum, frame):
    for pgid in RUNNING:
        kill_group(pgid)
    for proc in BENCHING:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    sys.exit(128 + signum)


class Run:
    """One run of a command: exit status (negative: killed by that signal), wall seconds,
    wait4's peak RSS and the sampled process-tree peak (bytes), whether it timed out."""

    def __init__(self, argv, stdout_path, stderr_path, timeout, cwd):
        start = time.monotonic()
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=cwd, start_new_session=True)
        RUNNING.append(proc.pid)
        self.timed_out = False
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            tree_peak = max(tree_peak, tree_rss_kib(proc.pid))
            if time.monotonic() - start > timeout and not self.timed_out:
                self.timed_out = True
                kill_group(proc.pid)
            time.sleep(0.05)
        kill_group(proc.pid)  # whatever the program left running in its session
        RUNNING.remove(proc.pid)
        self.wall = time.monotonic() - start
        self.status = os.waitstatus_to_exitcode(status)
        self.peak_rss = usage.ru_maxrss * 1024
        self.tree_peak = tree_peak * 1024


def kill_group(pgid):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def describe(status):
    if status < 0:
        return "killed by signal %d (%s)" % (-status, signal.Signals(-status).name)
    return "exit status %d" % status


def same_file(a, b):
    return os.path.exists(a) and os.path.exists(b) and \
        subprocess.run(["cmp", "-s", a, b]).returncode == 0


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return f.readlines()[-lines:]
    except OSError:
        return []


def mib(n):
    return "%.0f" % (n / MiB)


class Corpus:
    def __init__(self, faultline, work):
        self.faultline = faultline
        self.work = work
        self.failed = False

    def fail(self, name, reasons, logs):
        self.failed = True
        print("FAIL %s: %s" % (name, "; ".join(reasons)))
        for log in logs:
            lines = tail(log)
            if lines:
                print("  --- last lines of %s:" % os.path.basename(log))
                sys.stdout.writelines("  | " + line for line in lines)
        sys.stdout.flush()

    def check_stats(self, program, stats_path):
        """The reasons the statistics file shows a failure (empty: none), and the stats."""
        try:
            with open(stats_path) as f:
                stats = json.load(f)
        except (OSError, ValueError) as e:
            return ["no statistics file from faultline run (%s)" % e], {}
        why = []
        for field in ("exit_status", "io_errors", "checksum_errors"):
            if stats.get(field, 0) != 0:
                why.append("%s %s" % (field, stats.get(field)))
        if stats.get("evictions", 0) <= 0:
            why.append("evictions %s: nothing was evicted at --limit %dM (over the whole "
                       "process tree)" % (stats.get("evictions"), program.limit))
        # The limit is each process's (README, "A process tree"): the top-level resident peak of a
        # tree is the sum of each process's peak, reached at different times.
        for process in stats.get("processes", [stats]):
            resident = process.get("resident_bytes_peak", 0)
            if resident > program.limit * MiB + MiB:
                why.append("process %s (%s): resident_bytes_peak %s MiB > limit %dM"
                           % (process.get("pid"), process.get("command"), mib(resident),
                              program.limit))
            for field in ("io_errors", "checksum_errors"):
                if process.get(field, 0) != 0:
                    why.append("process %s: %s %s" % (process.get("pid"), field, process[field]))
        return why, stats

    def run_program(self, program):
        missing = program.missing()
        if missing:
            what = ", ".join("%s (Debian package %s)" % m for m in missing)
            if IN_CI:
                self.fail(program.name, ["not installed in CI: " + what], [])
            else:
                print("SKIP %s: not installed: %s" % (program.name, what))
            return
        work = os.path.join(self.work, program.name)
        os.makedirs(work)
        logs = {k: os.path.join(work, "%s.%s" % (program.name, k))
                for k in ("native.out", "native.err", "fl.out", "fl.err", "fl.json")}
        try:
            argv = program.prepare(work)
        except (OSError, subprocess.CalledProcessError) as e:
            self.fail(program.name, ["preparing the input: %s" % e], [])
            return
        native = Run(argv, logs["native.out"], logs["native.err"], program.timeout, work)
        if native.timed_out or native.status != 0:
            why = "timed out" if native.timed_out else describe(native.status)
            self.fail(program.name, ["the native run failed: " + why], [logs["native.err"]])
            return
        for output in program.outputs:
            os.rename(os.path.join(work, output), os.path.join(work, output + ".native"))
        command = [self.faultline, "run", "--limit", "%dM" % program.limit, "--swap-dir", work,
                   "--stats", logs["fl.json"], "--"] + argv
        fl = Run(command, logs["fl.out"], logs["fl.err"], program.timeout, work)
        why = []
        if fl.timed_out:
            why.append("timed out after %d s (a hang, or far too slow)" % program.timeout)
        elif fl.status != native.status:
            why.append("faultline run: %s, natively %s" % (describe(fl.status),
                                                           describe(native.status)))
        stats_why, stats = self.check_stats(program, logs["fl.json"])
        if not fl.timed_out:
            why += stats_why
        if not same_file(logs["native.out"], logs["fl.out"]):
            why.append("stdout differs from the native run's")
        for output in program.outputs:
            path = os.path.join(work, output)
            if not same_file(path + ".native", path):
                why.append("%s differs from the native run's" % output)
        alarming = [line.rstrip() for line in tail(logs["fl.err"], 10000) if ALARMING.search(line)]
        if alarming:
            why.append("%d faultline warning/error lines on stderr, first: %s"
                       % (len(alarming), alarming[0]))
        if native.peak_rss < program.pressure * program.limit * MiB:
            why.append("native peak RSS %s MiB is not at least %g times the limit %dM"
                       % (mib(native.peak_rss), program.pressure, program.limit))
        summary = ("limit %dM; native %.1f s, peak RSS %s MiB, tree %s MiB; faultline %.1f s, "
                   "peak RSS %s MiB, tree %s MiB, resident peak %s MiB, managed peak %s MiB, "
                   "evictions %s, swap-ins %s" %
                   (program.limit, native.wall, mib(native.peak_rss), mib(native.tree_peak),
                    fl.wall, mib(fl.peak_rss), mib(fl.tree_peak),
                    mib(stats.get("resident_bytes_peak", 0)),
                    mib(stats.get("managed_bytes_peak", 0)), stats.get("evictions"),
                    stats.get("faults_swap_in")))
        if why:
            self.fail(program.name, why + [summary], [logs["fl.err"]])
        else:
            print("PASS %s (%s)" % (program.name, summary))
            sys.stdout.flush()
            shutil.rmtree(work)


def bench(bench_exe, faultline, programs, work):
    """Runs each program through faultline-bench-programs; returns True when all succeeded."""
    ok = True
    extra = os.environ.get("FAULTLINE_CORPUS_BENCH_ARGS", "").split()
    for program in programs:
        if program.missing():
            print("SKIP %s: not installed: %s" % (program.name, program.missing()))
            continue
        directory = os.path.join(work, program.name)
        os.makedirs(directory)
        argv = program.prepare(directory)
        sys.stdout.flush()
        command = [bench_exe, "--quick"] + extra + [
            "--faultline", faultline, "--swap-dir", directory, "--command", program.name,
            "%dM" % program.limit, "--"] + argv
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        BENCHING.append(proc)
        ok = proc.wait() == 0 and ok
        BENCHING.remove(proc)
        shutil.rmtree(directory)
    return ok


def main():
    args = sys.argv[1:]
    bench_exe = None
    if args[:1] == ["--bench"] and len(args) >= 2:
        bench_exe = os.path.abspath(args[1])
        args = args[2:]
    if not args:
        print("usage: %s [--bench BENCH] FAULTLINE [NAME...]" % sys.argv[0], file=sys.stderr)
        return 2
    faultline = os.path.abspath(args[0])
    only = args[1:] or os.environ.get("FAULTLINE_CORPUS_ONLY", "").split()
    if not uffd_usable():
        print("%s: no full userfaultfd here (needs root, vm.unprivileged_userfaultfd=1 or "
              "access to /dev/userfaultfd)" % ("FAIL" if IN_CI else "SKIP"))
        return 1 if IN_CI else 77
    if not os.access(faultline, os.X_OK):
        print("FAIL: %s is not an executable" % faultline)
        return 1
    os.environ["LC_ALL"] = "C"
    # meson test sets it: glibc's malloc then fills every allocation, so a native run touches all
    # it allocates (xz -9: 675 MiB instead of 42) while the faultline run (jemalloc) does not.
    os.environ.pop("MALLOC_PERTURB_", None)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    programs = [p for p in corpus_programs.PROGRAMS if not only or p.name in only]
    unknown = set(only) - {p.name for p in corpus_programs.PROGRAMS}
    if unknown:
        print("FAIL: no such corpus programs: %s" % " ".join(sorted(unknown)))
        return 1
    work = tempfile.mkdtemp(prefix="faultline-corpus.", dir=os.environ.get("TMPDIR", "/var/tmp"))
    os.environ["TMPDIR"] = work
    if bench_exe:
        try:
            return 0 if bench(bench_exe, faultline, programs, work) else 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    corpus = Corpus(faultline, work)
    try:
        for program in programs:
            corpus.run_program(program)
    finally:
        if corpus.failed and os.environ.get("FAULTLINE_CORPUS_KEEP"):
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if corpus.failed else 0


if __name__ == "__main__":
    sys.exit(main())
