"""What the QUIC benchmark scripts (quic-scale.py, quic-workers.py) share.
Imported by name: Python puts a script's own directory on its path."""
import os


def proc_cpu_threads(pid):
    """CPU time of every thread of a live process, in seconds, or None: the
    scheduler's nanosecond counts of /proc/PID/task/*/schedstat (a clock
    tick, 10 ms, would be 0.5 us per request here). /proc/PID/schedstat
    alone covers only the main thread, and a thread that has ended is no
    longer listed: read it while the threads run."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9
