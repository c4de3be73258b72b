// BullMQ baseline: enqueue JOBS no-op jobs (addBulk), then drain them with one Worker at CONCURRENCY and print
// jobs/s, the same shape as wgate's no-op drain (`BENCH_ONLY=noop cargo bench -p wgate-worker --bench queue`).
// Env: REDIS_URL (redis://127.0.0.1:6379), JOBS (30000), CONCURRENCY (256), REMOVE_ON_COMPLETE (0: completed
// jobs are kept, as wgate keeps its records). Prints one JSON line last.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
  throw new Error(`REDIS_URL must be a loopback address, got ${url.hostname}`);
}
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const jobs = Number(process.env.JOBS ?? 30000);
const concurrency = Number(process.env.CONCURRENCY ?? 256);
const removeOnComplete = process.env.REMOVE_ON_COMPLETE === '1';
const name = `peer-bullmq-${process.pid}-${Date.now()}`;

async function redisCpu(client) {
  const info = await client.info('cpu');
  const field = (k) => Number((info.match(new RegExp(`^${k}:([0-9.]+)`, 'm')) ?? [0, 0])[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

const probe = new IORedis(connection);
const queue = new Queue(name, { connection });
await queue.waitUntilReady();

let t = performance.now();
const bulk = 1000;
for (let i = 0; i < jobs; i += bulk) {
  const batch = [];
  for (let j = i; j < Math.min(jobs, i + bulk); j++) {
    batch.push({ name: 'session-create', data: { name: `bench ${j}` }, opts: { removeOnComplete } });
  }
  await queue.addBulk(batch);
}
const enqueueSecs = (performance.now() - t) / 1000;

let done = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const cpuBefore = await redisCpu(probe);
t = performance.now();
const worker = new Worker(name, async () => {}, { connection, concurrency, autorun: false });
worker.on('completed', () => {
  if (++done === jobs) finish();
});
worker.on('failed', (_job, err) => {
  console.error('job failed', err);
});
worker.run();
await finished;
const drainSecs = (performance.now() - t) / 1000;
const cpuPerJobUs = ((await redisCpu(probe)) - cpuBefore) / jobs * 1e6;

await worker.close();
await queue.obliterate({ force: true });
await queue.close();
probe.disconnect();

const result = {
  peer: 'bullmq',
  version: '6.7.0',
  jobs,
  concurrency,
  remove_on_complete: removeOnComplete,
  enqueue_jobs_per_s: Math.round(jobs / enqueueSecs),
  drain_jobs_per_s: Math.round(jobs / drainSecs),
  redis_cpu_us_per_job: Number(cpuPerJobUs.toFixed(1)),
};
console.log(`bullmq ${result.version}: no-op drain ${result.drain_jobs_per_s} jobs/s (${jobs} jobs, concurrency ${concurrency}, removeOnComplete ${removeOnComplete}), Redis CPU ${result.redis_cpu_us_per_job} us/job, addBulk ${result.enqueue_jobs_per_s} jobs/s`);
console.log(JSON.stringify(result));
