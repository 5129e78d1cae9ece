// Preloaded into a regmirror process by the benchmark's diagnosis (`node --import this-file ...`): it
// listens on undici's diagnostics channels (no change to regmirror) and, when the process exits, writes
// one JSON file (path in REGMIRROR_BENCH_PROBE) with every HTTP request's timeline — created (handed to
// undici, i.e. past regmirror's own host limiter), headers sent on which socket, response headers,
// body end — every connection opened, the process's CPU time and its event-loop delay.

import diagnosticsChannel from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const out = process.env.REGMIRROR_BENCH_PROBE;
if (out) {
  const origin = performance.timeOrigin;
  const now = () => origin + performance.now();
  /** @type {WeakMap<object, number>} */
  const ids = new WeakMap();
  /** @type {WeakMap<object, number>} */
  const socketIds = new WeakMap();
  /** @type {Array<Record<string, unknown>>} */
  const requests = [];
  /** @type {Array<Record<string, unknown>>} */
  const connections = [];
  let nextSocket = 0;
  const socketId = (socket) => {
    let id = socketIds.get(socket);
    if (id === undefined) {
      id = ++nextSocket;
      socketIds.set(socket, id);
    }
    return id;
  };
  const recordOf = (request) => {
    const i = ids.get(request);
    return i === undefined ? undefined : requests[i];
  };
  diagnosticsChannel.subscribe('undici:request:create', ({ request }) => {
    ids.set(request, requests.length);
    requests.push({
      method: request.method,
      origin: String(request.origin),
      path: request.path,
      created: now(),
    });
  });
  diagnosticsChannel.subscribe('undici:client:sendHeaders', ({ request, socket }) => {
    const r = recordOf(request);
    if (r) {
      r.sent = now();
      r.socket = socketId(socket);
    }
  });
  diagnosticsChannel.subscribe('undici:request:headers', ({ request, response }) => {
    const r = recordOf(request);
    if (r) {
      r.headers = now();
      r.status = response.statusCode;
    }
  });
  diagnosticsChannel.subscribe('undici:request:trailers', ({ request }) => {
    const r = recordOf(request);
    if (r) r.ended = now();
  });
  diagnosticsChannel.subscribe('undici:request:error', ({ request, error }) => {
    const r = recordOf(request);
    if (r) {
      r.ended = now();
      r.error = String(error?.code ?? error?.message ?? error);
    }
  });
  diagnosticsChannel.subscribe('undici:client:connected', ({ connectParams, socket }) => {
    connections.push({
      at: now(),
      host: `${connectParams.hostname}:${connectParams.port}`,
      socket: socketId(socket),
    });
  });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpuStart = process.cpuUsage();
  process.on('exit', () => {
    loop.disable();
    const cpu = process.cpuUsage(cpuStart);
    writeFileSync(
      out,
      JSON.stringify({
        startedAt: origin,
        exitedAt: now(),
        cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000 },
        eventLoopDelayMs: {
          mean: loop.mean / 1e6,
          p50: loop.percentile(50) / 1e6,
          p99: loop.percentile(99) / 1e6,
          max: loop.max / 1e6,
        },
        requests,
        connections,
      }),
    );
  });
}
