// HAProxy's Runtime API for one backend, over the load balancer's SSH connection: the admin
// socket is forwarded as a channel, one per command (HAProxy answers one command and closes),
// so the load balancer needs neither socat nor a shell for the deploy user.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { BackendCounters, HaproxyProcess, LoadBalancerDriver, ServerCounters, ServerStatus } from '../rollout/ports.js';
import { SshConnection, type SshOptions } from './ssh.js';

// Names go into Runtime API commands: nothing that could end or extend one.
const NAME = /^[A-Za-z0-9_.:-]+$/;
const STATES = new Set(['ready', 'drain', 'maint']);
const COMMAND_TIMEOUT_MS = 10_000;

export class HaproxyError extends Error {
  override name = 'HaproxyError';
}

/** What HaproxyRuntime needs from an SSH connection. */
export type SocketTunnel = Pick<SshConnection, 'host' | 'failure' | 'forwardStreamLocal' | 'dispose'>;

export class HaproxyRuntime implements LoadBalancerDriver {
  private readonly where: string;

  constructor(
    private readonly tunnel: SocketTunnel,
    private readonly socketPath: string,
    readonly backend: string,
  ) {
    checkName('backend', backend);
    this.where = `HAProxy backend ${backend} on ${tunnel.host}`;
  }

  dispose(): void {
    this.tunnel.dispose();
  }

  async findServers(targets: { address: string; port: number }[]): Promise<(string | undefined)[]> {
    const command = `show servers state ${this.backend}`;
    const answer = await this.command(command);
    const rows = parseServersState(answer);
    if (!rows) throw this.refused(command, answer);
    return Promise.all(
      targets.map(async ({ address, port }) => {
        // HAProxy shows resolved addresses; a host configured by name is looked up the same way.
        const addresses = isIP(address) ? [address] : (await lookup(address, { all: true })).map((entry) => entry.address);
        return rows.find((row) => row.srv_port === String(port) && (addresses.includes(row.srv_addr ?? '') || row.srv_fqdn === address))?.srv_name;
      }),
    );
  }

  /** One server's name for address:port (check, and the driver's tests). */
  async findServer(address: string, port: number): Promise<string | undefined> {
    return (await this.findServers([{ address, port }]))[0];
  }

  async setState(server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    checkName('server', server);
    if (!STATES.has(state)) throw new HaproxyError(`not a server state: ${JSON.stringify(state)}`);
    const command = `set server ${this.backend}/${server} state ${state}`;
    // Success is an empty answer; anything else is HAProxy explaining why not.
    const answer = await this.command(command);
    if (answer.trim()) throw this.refused(command, answer);
  }

  async statuses(): Promise<Map<string, ServerStatus>> {
    return new Map((await this.serverRows()).map((row) => [row.svname ?? '', { status: row.status ?? '', sessions: Number(row.scur || 0), queued: Number(row.qcur || 0) }]));
  }

  /** One server's status (the driver's tests); the rollout reads them all at once (statuses). */
  async status(server: string): Promise<ServerStatus> {
    checkName('server', server);
    const status = (await this.statuses()).get(server);
    if (!status) throw new HaproxyError(`${this.where}: there is no server ${server}`);
    return status;
  }

  async counters(timeoutMs = COMMAND_TIMEOUT_MS): Promise<BackendCounters> {
    // One connection for both: `show info` names the process whose counters these are.
    const command = `show info;show stat ${this.backend} 4 -1`;
    const answer = await this.command(command, timeoutMs);
    const rows = parseStatCsv(answer);
    if (!rows) throw this.refused(command, answer);
    const process = processOf(answer);
    const own = rows.filter((row) => row.pxname === this.backend && row.svname !== 'BACKEND');
    return {
      ...(process ? { process } : {}),
      // HTTP counters are empty in mode tcp.
      http: own.every((row) => (row.req_tot ?? '') !== ''),
      servers: new Map(own.map((row) => [row.svname ?? '', countersOf(row)])),
    };
  }

  /** The level of a session on the admin socket (show cli level): the deploy needs `admin`. */
  async cliLevel(): Promise<string> {
    return (await this.command('show cli level')).trim();
  }

  /** Every server of the backend as `show stat` reports it; undefined when there is no such backend. */
  async servers(): Promise<BackendServer[] | undefined> {
    const rows = await this.serverRows(true);
    return rows?.map((row) => ({
      name: row.svname ?? '',
      address: row.addr ?? '',
      backup: row.bck === '1',
      status: row.status ?? '',
      checkStatus: row.check_status ?? '',
      sessions: Number(row.scur || 0),
      secondsInState: Number(row.lastchg || 0),
      // HTTP counters are empty in mode tcp.
      countsRequests: (row.req_tot ?? '') !== '',
    }));
  }

  /** The backend's server rows of `show stat`; with `mayBeMissing`, undefined for no such backend. */
  private async serverRows(mayBeMissing: true): Promise<Record<string, string>[] | undefined>;
  private async serverRows(): Promise<Record<string, string>[]>;
  private async serverRows(mayBeMissing = false): Promise<Record<string, string>[] | undefined> {
    // show stat <proxy> <type> <server id>: type 4 = servers, -1 = all of them.
    const command = `show stat ${this.backend} 4 -1`;
    const answer = await this.command(command);
    if (mayBeMissing && /^No such proxy/m.test(answer)) return undefined;
    const rows = parseStatCsv(answer);
    if (!rows) throw this.refused(command, answer);
    return rows.filter((row) => row.pxname === this.backend && row.svname !== 'BACKEND');
  }

  private refused(command: string, answer: string): HaproxyError {
    return new HaproxyError(`${this.where}: "${command}" was answered: ${answer.trim() || '(nothing)'}`);
  }

  /** Sends one command and reads the answer to the end, within `timeoutMs` from the start. */
  private async command(command: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const stream = await this.tunnel.forwardStreamLocal(this.socketPath).catch((error: Error) => {
      throw new HaproxyError(`${this.where}: cannot reach the admin socket ${this.socketPath}: ${error.message}`);
    });
    return new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const fail = (why: string) => {
        clearTimeout(timer);
        stream.destroy();
        reject(new HaproxyError(`${this.where}: "${command}" ${why}`));
      };
      const timer = setTimeout(() => fail(`got no complete answer within ${timeoutMs / 1000}s`), Math.max(0, deadline - Date.now()));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error: Error) => fail(`failed: ${error.message}`));
      stream.on('end', () => {
        clearTimeout(timer);
        stream.destroy();
        // A lost SSH connection ends the channel too: a cut answer must not pass for a reply
        // (an empty one would read as a successful "set server").
        const lost = this.tunnel.failure;
        if (lost) reject(new HaproxyError(`${this.where}: "${command}" failed: ${lost.message}`));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
      stream.end(`${command}\n`);
    });
  }
}

/** One server of a backend, from `show stat` (text HAProxy reports: print it as untrusted). */
export interface BackendServer {
  name: string;
  /** address:port */
  address: string;
  backup: boolean;
  /** UP, DOWN, MAINT, DRAIN, no check, ... */
  status: string;
  /** L7OK, L4CON, ...; empty when the server has no health check */
  checkStatus: string;
  sessions: number;
  secondsInState: number;
  /** Whether HAProxy counts this server's HTTP requests and answers (mode http): the receipt reads them. */
  countsRequests: boolean;
}

/** The process from `show info` (Pid, Uptime_sec); undefined when the answer has neither. */
export function processOf(text: string): HaproxyProcess | undefined {
  const field = (name: string) => text.match(new RegExp(`^${name}: *(\\d+)`, 'm'))?.[1];
  const [pid, uptime] = [field('Pid'), field('Uptime_sec')];
  return pid === undefined ? undefined : { pid: Number(pid), uptimeSeconds: Number(uptime ?? 0) };
}

/** A server's counters from its `show stat` row (an absent column reads 0). */
export function countersOf(row: Record<string, string>): ServerCounters {
  const n = (column: string) => Number(row[column] || 0);
  return {
    requests: n('req_tot'),
    http5xx: n('hrsp_5xx'),
    connectionErrors: n('econ'),
    responseErrors: n('eresp'),
    retries: n('wretr'),
    redispatches: n('wredis'),
    responseMs: n('rtime'),
    totalMs: n('ttime'),
  };
}

/** Opens the load balancer's SSH connection and drives one backend over it. */
export async function connectLoadBalancer(
  options: SshOptions,
  haproxy: { socket: string; backend: string },
): Promise<HaproxyRuntime> {
  const tunnel = await SshConnection.connect(options);
  try {
    return new HaproxyRuntime(tunnel, haproxy.socket, haproxy.backend);
  } catch (error) {
    tunnel.dispose();
    throw error;
  }
}

function checkName(what: string, name: string): void {
  if (!NAME.test(name)) throw new HaproxyError(`not an HAProxy ${what} name: ${JSON.stringify(name)}`);
}

/**
 * Rows of `show servers state`, keyed by its header line's column names
 * (`# be_id be_name srv_id srv_name srv_addr ... srv_port ...`); undefined for any other answer.
 */
export function parseServersState(text: string): Record<string, string>[] | undefined {
  return table(text, 'srv_name', (line) => line.split(' '));
}

/** Rows of `show stat` (CSV under a `# pxname,svname,...` header); undefined for any other answer. */
export function parseStatCsv(text: string): Record<string, string>[] | undefined {
  return table(text, 'svname', csvFields);
}

function table(text: string, key: string, split: (line: string) => string[]): Record<string, string>[] | undefined {
  const lines = text.split('\n').map((line) => line.trimEnd());
  const start = lines.findIndex((line) => line.startsWith('# '));
  const columns = start < 0 ? [] : split(lines[start]!.slice(2));
  if (!columns.includes(key)) return undefined;
  return lines
    .slice(start + 1)
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const fields = split(line);
      return Object.fromEntries(columns.map((column, i) => [column, fields[i] ?? '']).filter(([column]) => column !== ''));
    });
}

/** One CSV line; HAProxy quotes fields that contain commas or quotes. */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c !== '"') field += c;
      else if (line[i + 1] === '"') field += line[++i];
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}
