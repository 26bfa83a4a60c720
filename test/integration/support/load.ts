// Steady traffic through a load balancer while a deploy runs: several keep-alive clients, each
// sending requests back to back at a bounded rate over its own connection, counting every non-2xx
// answer and every transport error, and recording which version answered. Bounded in time: it
// stops itself.
import http from 'node:http';

/** One failed request, with what a test needs to judge whose failure it was. */
export interface LoadFailure {
  /** Which client (each has one keep-alive connection at a time). */
  client: number;
  /** When the request was sent and when it failed (ms since the epoch). */
  sentAt: number;
  at: number;
  /**
   * `closed-before-response`: the connection was closed or reset before any byte of an answer;
   * `http`: a non-2xx answer; `timeout`: no answer in 10 s; `transport`: any other error.
   */
  kind: 'closed-before-response' | 'http' | 'timeout' | 'transport';
  /** Whether the request went out on a kept-alive connection an earlier request had used. */
  reusedSocket: boolean;
  detail: string;
}

export interface LoadReport {
  sent: number;
  ok: number;
  /** Non-2xx answers and transport errors, with what happened. */
  failed: number;
  failures: string[];
  /** Every failure (up to 1000), structured. */
  errors: LoadFailure[];
  /** Versions served, in the order they were first seen, with counts. */
  versions: Record<string, number>;
  seconds: number;
  /** Response times of the answered requests, in ms. */
  latency: { p50: number; p99: number; max: number };
  /** When each counted request ended (ms since the epoch), answered or failed, and whether it failed. */
  ended: { at: number; failed: boolean }[];
}

export interface LoadGenerator {
  stop(): Promise<LoadReport>;
  /** The report so far, without stopping. */
  snapshot(): LoadReport;
}

export interface LoadOptions {
  url: string;
  clients?: number;
  /** Requests per second per client at most (hundreds in total by default). */
  ratePerClient?: number;
  /** Safety bound: the generator stops by itself after this long. */
  maxSeconds?: number;
  /** Only start counting once the site first answers 2xx (a first deploy onto empty hosts). */
  waitUntilServing?: boolean;
}

export function startLoad(options: LoadOptions): LoadGenerator {
  const clients = options.clients ?? 8;
  const interval = 1000 / (options.ratePerClient ?? 50);
  // One connection per client: a connection a load balancer closes is then seen by one client.
  const agents = Array.from({ length: clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const started = Date.now();
  const report: LoadReport = { sent: 0, ok: 0, failed: 0, failures: [], errors: [], versions: {}, seconds: 0, latency: { p50: 0, p99: 0, max: 0 }, ended: [] };
  const times: number[] = [];
  let running = true;
  let serving = !options.waitUntilServing;
  const deadline = started + (options.maxSeconds ?? 600) * 1000;

  const once = (client: number) =>
    new Promise<void>((done) => {
      const sentAt = performance.now();
      const sentAtMs = Date.now();
      let answered = false;
      let timedOut = false;
      const failure = (kind: LoadFailure['kind'], detail: string) =>
        fail(detail, { client, sentAt: sentAtMs, at: Date.now(), kind, reusedSocket: request.reusedSocket, detail });
      const request = http.get(options.url, { agent: agents[client], timeout: 10_000 }, (response) => {
        answered = true;
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) serving = true;
          if (serving) {
            report.sent++;
            times.push(performance.now() - sentAt);
            if (status >= 200 && status < 300) {
              report.ok++;
              report.ended.push({ at: Date.now(), failed: false });
              const version = body.trim();
              report.versions[version] = (report.versions[version] ?? 0) + 1;
            } else {
              failure('http', `HTTP ${status} ${body.trim().slice(0, 80)}`);
            }
          }
          done();
        });
        response.on('error', (error) => {
          if (serving) failure('transport', `response error: ${error.message}`);
          done();
        });
      });
      request.on('timeout', () => {
        timedOut = true;
        request.destroy(new Error('timed out'));
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (serving) {
          report.sent++;
          const closed = !answered && !timedOut && ['ECONNRESET', 'EPIPE'].includes(error.code ?? '');
          failure(timedOut ? 'timeout' : closed ? 'closed-before-response' : 'transport', `transport error: ${error.message}`);
        }
        done();
      });
    });

  const fail = (what: string, failure: LoadFailure) => {
    report.failed++;
    report.ended.push({ at: Date.now(), failed: true });
    if (report.failures.length < 20) report.failures.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
    if (report.errors.length < 1000) report.errors.push(failure);
  };

  const client = async (_: unknown, index: number) => {
    while (running && Date.now() < deadline) {
      const next = Date.now() + interval;
      await once(index);
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  const loops = Array.from({ length: clients }, client);

  const snapshot = (): LoadReport => {
    const sorted = [...times].sort((a, b) => a - b);
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
    return {
      ...report,
      versions: { ...report.versions },
      failures: [...report.failures],
      ended: [...report.ended],
      errors: [...report.errors],
      seconds: (Date.now() - started) / 1000,
      latency: { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? 0) },
    };
  };
  return {
    snapshot,
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const agent of agents) agent.destroy();
      return snapshot();
    },
  };
}

/** Requests that ended between two instants (ms since the epoch), all or only the failed (or answered) ones. */
export function endedWithin(loads: LoadReport[], from: number, to: number, failed?: boolean): number {
  return loads.flatMap((l) => l.ended).filter((e) => e.at >= from && e.at <= to && (failed === undefined || e.failed === failed)).length;
}

/** Runs `work` under steady load on `url` and returns the work's result with the load report. */
export async function underLoad<T>(url: string, work: () => Promise<T>, waitUntilServing = false): Promise<[T, LoadReport]> {
  const load = startLoad({ url, clients: 8, ratePerClient: 40, maxSeconds: 300, waitUntilServing });
  await new Promise((r) => setTimeout(r, 500));
  try {
    const result = await work();
    await new Promise((r) => setTimeout(r, 500));
    return [result, await load.stop()];
  } catch (error) {
    await load.stop();
    throw error;
  }
}

/** Runs `work` under steady load through every frontend (4 clients each), one report per frontend. */
export async function underLoadThrough<T>(frontends: string[], work: () => Promise<T>): Promise<[T, LoadReport[]]> {
  const loads = frontends.map((frontend) => startLoad({ url: `${frontend}/`, clients: 4, ratePerClient: 40, maxSeconds: 300 }));
  await new Promise((r) => setTimeout(r, 500));
  try {
    const result = await work();
    await new Promise((r) => setTimeout(r, 500));
    return [result, await Promise.all(loads.map((load) => load.stop()))];
  } catch (error) {
    await Promise.all(loads.map((load) => load.stop()));
    throw error;
  }
}
