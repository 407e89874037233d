// The BullMQ peer of benches/queue.sh (issue 6): the same no-op workload as benches/queue.rs,
// against BullMQ on a local Redis (started by queue.sh with AOF, `appendfsync everysec`).
//
//   node benches/peers/bullmq_bench.js PORT [JOBS] [BATCH] [CONCURRENCY] [LATENCY_JOBS]
//
// 1. Throughput: JOBS no-op jobs enqueued with addBulk in batches of BATCH, then one Worker
//    (CONCURRENCY) drains them: enqueue jobs/s, drain jobs/s, and end to end (first enqueue
//    to last completion).
// 2. Latency: LATENCY_JOBS jobs one at a time, each enqueued after the previous one started:
//    enqueue → handler start, p50/p99 (one process, one clock).
// Prints one JSON line.
"use strict";

const { Queue, Worker } = require("bullmq");

const port = Number(process.argv[2]);
const jobs = Number(process.argv[3] || 100000);
const batch = Number(process.argv[4] || 1000);
const concurrency = Number(process.argv[5] || 256);
const latencyJobs = Number(process.argv[6] || 1000);
const connection = { host: "127.0.0.1", port };

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))];
}

async function throughput() {
  const queue = new Queue("throughput", { connection });
  await queue.waitUntilReady();
  let done = 0;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const started = performance.now();
  for (let i = 0; i < jobs; i += batch) {
    const n = Math.min(batch, jobs - i);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: "noop", data: {} })));
  }
  const enqueued = performance.now();
  const worker = new Worker("throughput", async () => {}, { connection, concurrency });
  worker.on("completed", () => {
    done += 1;
    if (done === jobs) resolveAll();
  });
  await all;
  const finished = performance.now();
  await worker.close();
  await queue.close();
  return {
    enqueue_per_sec: Math.round(jobs / ((enqueued - started) / 1000)),
    drain_per_sec: Math.round(jobs / ((finished - enqueued) / 1000)),
    end_to_end_per_sec: Math.round(jobs / ((finished - started) / 1000)),
  };
}

async function latency() {
  const queue = new Queue("latency", { connection });
  let next;
  const samples = [];
  const worker = new Worker(
    "latency",
    async (job) => {
      samples.push(performance.now() - job.data.t);
      next();
    },
    { connection, concurrency: 1 },
  );
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  for (let i = 0; i < latencyJobs; i++) {
    const startedRun = new Promise((r) => (next = r));
    await queue.add("noop", { t: performance.now() });
    await startedRun;
  }
  await worker.close();
  await queue.close();
  samples.sort((a, b) => a - b);
  return {
    latency_p50_ms: Number(quantile(samples, 0.5).toFixed(3)),
    latency_p99_ms: Number(quantile(samples, 0.99).toFixed(3)),
  };
}

(async () => {
  const t = await throughput();
  const l = await latency();
  console.log(
    JSON.stringify({ label: "bullmq", jobs, batch, concurrency, ...t, ...l }),
  );
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
