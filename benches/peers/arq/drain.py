"""arq baseline: enqueue JOBS no-op jobs, then drain them with one burst-mode Worker (max_jobs = CONCURRENCY) and
print jobs/s, the same shape as wgate's no-op drain and benches/peers/bullmq/drain.mjs.

Env: REDIS_URL (redis://127.0.0.1:6379), JOBS (30000), CONCURRENCY (256), POLL_DELAY (0.005 s: arq sleeps this
long between polls of its sorted set; its default, 0.5 s, would cap it far lower). Results are kept (arq's default,
as wgate keeps its records). Prints one JSON line last.
"""

import asyncio
import json
import os
import time
from urllib.parse import urlparse

from arq import Worker, create_pool
from arq.connections import RedisSettings


async def noop(ctx):
    return None


async def redis_cpu(redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def main() -> None:
    url = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"REDIS_URL must be a loopback address, got {url.hostname}")
    settings = RedisSettings(host=url.hostname, port=url.port or 6379)
    jobs = int(os.environ.get("JOBS", "30000"))
    concurrency = int(os.environ.get("CONCURRENCY", "256"))
    poll_delay = float(os.environ.get("POLL_DELAY", "0.005"))
    queue = f"peer-arq-{os.getpid()}"

    redis = await create_pool(settings, default_queue_name=queue)
    t = time.perf_counter()
    for start in range(0, jobs, 500):
        await asyncio.gather(*(redis.enqueue_job("noop", _queue_name=queue) for _ in range(start, min(jobs, start + 500))))
    enqueue_secs = time.perf_counter() - t

    worker = Worker(
        functions=[noop],
        redis_pool=redis,
        queue_name=queue,
        burst=True,
        max_jobs=concurrency,
        poll_delay=poll_delay,
        handle_signals=False,
        log_results=False,
    )
    cpu = await redis_cpu(redis)
    t = time.perf_counter()
    await worker.main()
    drain_secs = time.perf_counter() - t
    cpu_per_job_us = (await redis_cpu(redis) - cpu) / jobs * 1e6
    done = worker.jobs_complete
    await worker.close()

    result = {
        "peer": "arq",
        "version": "0.28.0",
        "jobs": jobs,
        "completed": done,
        "concurrency": concurrency,
        "poll_delay_s": poll_delay,
        "enqueue_jobs_per_s": round(jobs / enqueue_secs),
        "drain_jobs_per_s": round(done / drain_secs),
        "redis_cpu_us_per_job": round(cpu_per_job_us, 1),
    }
    print(
        f"arq {result['version']}: no-op drain {result['drain_jobs_per_s']} jobs/s ({done} of {jobs} jobs, max_jobs "
        f"{concurrency}, poll_delay {poll_delay} s), Redis CPU {result['redis_cpu_us_per_job']} us/job, enqueue "
        f"{result['enqueue_jobs_per_s']} jobs/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
