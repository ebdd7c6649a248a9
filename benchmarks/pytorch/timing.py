"""Google Benchmark's timing, for the PyTorch sides of froster's benchmarks (standard library only)."""

import time


def repetitions_of(step, min_time, repetitions):
    """Runs `repetitions` repetitions of `step`, each as many calls as `min_time` seconds take (at least one).
    Returns one (real seconds, process CPU seconds, iterations) per repetition, the times per call."""
    results = []
    for _ in range(repetitions):
        iterations, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while True:
            step()
            iterations += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        results.append((elapsed / iterations, (time.process_time() - cpu_start) / iterations, iterations))
    return results
