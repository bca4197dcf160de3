"""What every benchmark here shares: run openduck and a baseline interleaved,
keep the best time of each, and print rows per second and their ratio."""

import time


def best_times(runs, sides, rows):
    """Runs each (name, work) of `sides` `runs` times, interleaved; `work`
    returns the rows it handled, which must be `rows`. Returns the best
    seconds per name."""
    best = {name: float("inf") for name, _ in sides}
    for _ in range(runs):
        for name, work in sides:
            start = time.perf_counter()
            handled = work()
            seconds = time.perf_counter() - start
            assert handled == rows, f"{name} handled {handled} rows, not {rows}"
            best[name] = min(best[name], seconds)
    return best


def report(header, rows, best):
    """Prints rows per second of each side, and each side's ratio to the
    embedded DuckDB baseline."""
    rate = {name: rows / seconds for name, seconds in best.items()}
    width = max(len(name) for name in best)
    print(header)
    for name in best:
        print(f"{name:>{width}}: {rate[name]:>14,.0f} rows/s  ({best[name]:.3f} s)")
    for name in best:
        if name != "embedded":
            print(f"{'ratio':>{width}}: {rate[name] / rate['embedded']:.2f} ({name} / embedded DuckDB)")
