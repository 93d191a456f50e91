#!/usr/bin/env python3
"""ops/cpu-split.py: runs a command (the load generator) and prints the CPU every process kind
used meanwhile, from /proc: the gateway, each service's workers and supervisor, `choreo up`,
Redis, Postgres, and the command itself (its rusage). With --orders-from-output, also the CPU
per decided order (confirmed + cancelled + failed, parsed from `choreo load`'s summary line).

Counts every redis-server and postgres process of the machine: run it with no other servers
busy. Usage: ops/cpu-split.py -- choreo load --gateway ... --orders N --rate R
"""
import os
import re
import resource
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def kind(argv):
    if not argv:
        return None
    name = os.path.basename(argv[0])
    joined = " ".join(argv)
    if name.startswith("redis-server"):
        return "redis"
    if name.startswith("postgres") or joined.startswith("postgres:"):
        return "postgres"
    if name == "choreo" and len(argv) > 1:
        if argv[1] == "gateway":
            return "gateway"
        if argv[1] == "up":
            return "choreo up"
        if argv[1] == "worker" and len(argv) > 2:
            return ("workers " if "--single" in argv else "supervisor ") + argv[2]
    return None


def snapshot():
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        label = kind(argv)
        if label:
            seen[pid] = (label, (int(fields[11]) + int(fields[12])) / TICKS)
    return seen


def main():
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    before = snapshot()
    started = time.monotonic()
    process = subprocess.run(args, stdout=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    after = snapshot()
    sys.stdout.write(process.stdout)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    split = {"load generator": usage.ru_utime + usage.ru_stime}
    for pid, (label, seconds) in after.items():
        split[label] = split.get(label, 0) + seconds - (before.get(pid, (label, 0))[1])
    # "N confirmed, cancelled [code: n, ...], failed [code: n, ...]"
    match = re.search(r"(\d+) confirmed, cancelled \[([^\]]*)\], failed \[([^\]]*)\]", process.stdout)
    decided = 0
    if match:
        decided = int(match.group(1)) + sum(int(n) for n in re.findall(r"\d+", match.group(2) + match.group(3)))
    total = sum(split.values())
    system = total - split["load generator"]
    print(f"cpu: {total:.2f} s in all over {wall:.1f} s ({total / wall:.2f} cores; the load generator's set-up"
          f" of users and products included), {system:.2f} s without the load generator", end="")
    if decided:
        print(f"; per decided order ({decided}): {1000 * system / decided:.2f} ms (Choreo, Redis, Postgres),"
              f" {1000 * total / decided:.2f} ms with the load generator")
    else:
        print()
    for label, seconds in sorted(split.items(), key=lambda item: -item[1]):
        print(f"  {label:28} {seconds:7.2f} s  {100 * seconds / total if total else 0:5.1f}%")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
