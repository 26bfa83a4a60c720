// What the rollout needs from the outside world, and nothing more. The drivers implement these
// over SSH (Docker Engine API and HAProxy Runtime API through forwarded sockets); the unit tests
// implement them in memory. Nothing here knows about SSH, dockerode or sockets.

export type Role = 'master' | 'backup';

/**
 * Where a role's container is published (rollout.procedure: no-gap): slot `a` on the role's
 * port (ports.master / ports.backup), slot `b` on its spare port (ports.master-spare /
 * ports.backup-spare), each with its own HAProxy server. A no-gap replacement starts the new
 * container in the slot the old one is not in; the backup-first procedure keeps the slot.
 */
export type Slot = 'a' | 'b';

/** Labels that carry the deployment state on each container (no state file anywhere). */
export const LABELS = {
  app: 'deploy-action.app',
  role: 'deploy-action.role',
  environment: 'deploy-action.environment',
  version: 'deploy-action.version',
  digest: 'deploy-action.digest',
  deployedAt: 'deploy-action.deployed-at',
  /** On a one-off container: what it is for (release-command, run). */
  oneOff: 'deploy-action.one-off',
  runUrl: 'deploy-action.run-url',
  history: 'deploy-action.history',
  /** The slot the container is published in (absent: a). */
  slot: 'deploy-action.slot',
} as const;

/** An image pinned by digest, with the release tag it was deployed as. */
export interface Release {
  /** e.g. v1.4.0 */
  version: string;
  /** repository@sha256:... */
  ref: string;
  digest: string;
  /**
   * The releases the environment went through up to this one, oldest first, as
   * `version@digest` (the `deploy-action.history` label): where a rollback finds what ran
   * when GitHub keeps no deployment history.
   */
  history?: string[];
  /**
   * Read from a running container that deploy-action did not create (started by hand or by
   * the process it replaces): drained like any other, and on a rollback put back as it was
   * (the very container, set aside), never recreated from the config.
   */
  adopted?: boolean;
}

export interface AppContainer {
  id: string;
  name: string;
  role: Role;
  /** From labels; undefined for a container this action did not create. */
  release?: Release;
  running: boolean;
  /** From the slot label; absent for slot a and for containers this action did not create. */
  slot?: Slot;
}

export interface ContainerSpec {
  name: string;
  role: Role;
  release: Release;
  hostPort: number;
  /** container.bind: the address hostPort is published on, or `host`; absent: every interface. */
  bind?: string | undefined;
  containerPort: number;
  /** Plain and secret variables, merged; never logged. */
  env: Record<string, string>;
  volumes: string[];
  restart: string;
  stopTimeout: number;
  init: boolean;
  labels: Record<string, string>;
}

/**
 * A one-off container of a release (a release command, a `command: run` task): the app's image,
 * environment and volumes, no published port, a command of its own (arguments, never shell text).
 */
export interface OneOffSpec {
  name: string;
  release: Release;
  command: string[];
  /** Plain and secret variables, merged; never logged. */
  env: Record<string, string>;
  volumes: string[];
  init: boolean;
  labels: Record<string, string>;
}

/**
 * When a new container of a role beside the web role counts as started: the image's HEALTHCHECK
 * says healthy, or it ran `running` seconds without exiting or restarting.
 */
export type ReadyRule = { healthcheck: true } | { running: number };

/** A container of a role beside the web role (a worker): APP-ROLE-N, or one set aside as APP-ROLE-N-previous. */
export interface RoleContainer {
  id: string;
  name: string;
  /** The role's name (deploy-action.role). */
  role: string;
  /** From labels; undefined when they are missing or not trusted. */
  release?: Release;
  running: boolean;
}

/** A container of a role beside the web role: the app's image, environment and volumes, its own command, no port. */
export interface RoleSpec {
  name: string;
  role: string;
  release: Release;
  command: string[];
  /** Plain and secret variables, merged; never logged. */
  env: Record<string, string>;
  volumes: string[];
  restart: string;
  stopTimeout: number;
  init: boolean;
  /** { running: N }: the image's HEALTHCHECK is turned off (a worker has no port it would probe). */
  ready: ReadyRule;
  labels: Record<string, string>;
}

/** `detail` reads after the container's role: "healthy after 2s (HTTP 200)", "exited with code 1". */
export type HealthVerdict =
  | { healthy: true; detail: string }
  | { healthy: false; detail: string; logs: string };

export interface HealthCheck {
  path: string;
  timeoutSeconds: number;
  intervalSeconds: number;
}

export interface DeployLock {
  holder: string;
  runUrl: string;
  runId: string;
  /** GITHUB_RUN_ATTEMPT: a re-run keeps the run id, and must not take its own dead attempt for live. */
  attempt: string;
  version: string;
  since: Date;
}

export type LockOwner = Pick<DeployLock, 'runId' | 'attempt'>;

export interface RegistryCredentials {
  username: string;
  password: string;
  serveraddress: string;
}

/** One application host, reached over one SSH connection. */
export interface HostDriver {
  readonly host: string;
  /** Checks the engine answers. */
  ping(): Promise<void>;
  /** The app's master and backup containers, by their labels/names. */
  containers(app: string): Promise<Partial<Record<Role, AppContainer>>>;
  /** Digest the registry holds for repository:tag (null when missing). */
  resolveDigest(repository: string, tag: string, auth?: RegistryCredentials): Promise<string | null>;
  /** Pulls an image by reference; fails on any error in the progress stream. */
  pull(ref: string, auth?: RegistryCredentials, onProgress?: (line: string) => void): Promise<void>;
  /** Graceful stop (SIGTERM, then SIGKILL after stopTimeout) and removal; no-op when absent. */
  stopAndRemove(name: string, stopTimeout: number): Promise<void>;
  /**
   * Graceful stop, then renames the container to `asideName`, keeping it whole (image,
   * settings, volumes) to be put back; fails when `asideName` is taken.
   */
  setAside(name: string, asideName: string, stopTimeout: number): Promise<void>;
  /**
   * Renames a running container to `asideName`, then stops it gracefully (a role's worker, set
   * aside to be put back): a rename that fails leaves it running under its name, untouched.
   */
  moveAside(name: string, asideName: string, stopTimeout: number): Promise<void>;
  /**
   * Stops a container moved aside gracefully (waiting out a stop still in flight: a killed run's
   * engine carries its stop through), starts it, then renames it back to `name`: cut short in
   * between, it is still found under `asideName`, and moving it back again finishes the job.
   */
  moveBack(asideName: string, name: string, stopTimeout: number): Promise<void>;
  /** Renames a container, running or not, leaving it as it is (no-gap: the old one steps aside for the new). */
  rename(name: string, newName: string): Promise<void>;
  /** Renames a container set aside back to `name` and starts it. */
  restore(asideName: string, name: string): Promise<void>;
  /** Whether a container named `name` exists (running or not): a set-aside that may not have finished. */
  hasContainer(name: string): Promise<boolean>;
  /** Creates and starts a container; returns its id. */
  run(spec: ContainerSpec): Promise<string>;
  /**
   * Waits until the container is healthy: Docker's HEALTHCHECK when the image has one, and a
   * 2xx answer from http://127.0.0.1:hostPort{path} on the host. Reports progress. Ends at
   * once, not healthy, when `signal` aborts.
   */
  waitHealthy(name: string, hostPort: number, check: HealthCheck, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<HealthVerdict>;
  /** The app's containers of roles beside the web role (set-aside ones too), by their labels. */
  roleContainers(app: string): Promise<RoleContainer[]>;
  /** Creates and starts a container of a role beside the web role; returns its id. */
  runRole(spec: RoleSpec): Promise<string>;
  /**
   * Waits until a role's new container is ready by `rule`, at most `timeoutSeconds`; not ready
   * at once when it exits, restarts or its HEALTHCHECK says unhealthy, or when `signal` aborts.
   */
  waitReady(name: string, rule: ReadyRule, timeoutSeconds: number, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<HealthVerdict>;
  /** Atomically takes the deploy lock (a created, never started, labelled container). */
  acquireLock(name: string, lock: DeployLock, image: string): Promise<{ acquired: true } | { acquired: false; current: DeployLock }>;
  /** Removes the lock when it is ours (run id and attempt match); returns whether it removed one. */
  releaseLock(name: string, owner: LockOwner): Promise<boolean>;
  /**
   * Writes the run's journal into its lock `name` (one of two slots, written in turn): what the
   * run is doing, kept next to the lock, for a run that takes the lock over after this one died.
   */
  writeLockJournal(name: string, slot: 0 | 1, text: string): Promise<void>;
  /** The journal texts the lock `name` holds (empty without a lock or a journal). */
  readLockJournal(name: string): Promise<string[]>;
  /** Removes unused images of the repository beyond the newest `keep`, never those in `protect`. */
  pruneImages(repository: string, keep: number, protect: string[]): Promise<string[]>;
}

export interface ServerStatus {
  /** HAProxy's status column: UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2"... */
  status: string;
  /** Current sessions. */
  sessions: number;
  /** Queued requests. */
  queued: number;
}

/**
 * Every load balancer in front of an environment, driven as one: what the rollout goes through.
 * A server is named once for all of them (LoadBalancers in drivers/load-balancers.ts maps the
 * name to each load balancer's own server).
 */
export interface LoadBalancerFleet {
  /**
   * On every load balancer at once; `drain` leaves a server the operator had in MAINT there as it
   * is (nothing reaches it).
   */
  setState(server: string, state: 'ready' | 'drain' | 'maint'): Promise<void>;
  /** All of them together: UP only when every one reports UP; sessions and queue added up. */
  status(server: string): Promise<ServerStatus>;
  /** Back to the state each load balancer had before the deploy, READY where the operator had not taken it out. */
  restoreState(server: string): Promise<void>;
  /**
   * Every server's counters on every load balancer that answered within `timeoutMs`, by load
   * balancer and fleet server name, in one command per load balancer; those that did not are
   * named. A load balancer still answering an earlier reading is not asked again meanwhile.
   */
  counters(timeoutMs: number): Promise<FleetCounters>;
}

/**
 * A server's counters as HAProxy's `show stat` reports them: totals since HAProxy started
 * (they restart at 0 on a reload), and response times averaged over its last 1024 requests.
 */
export interface ServerCounters {
  /** req_tot: HTTP requests sent to the server. */
  requests: number;
  /** hrsp_5xx */
  http5xx: number;
  /** econ: failed connection attempts. */
  connectionErrors: number;
  /** eresp: responses cut short or refused. */
  responseErrors: number;
  /** wretr */
  retries: number;
  /** wredis */
  redispatches: number;
  /** rtime: ms to the first response byte. */
  responseMs: number;
  /** ttime: ms for the whole session. */
  totalMs: number;
}

/** The HAProxy process that answered (`show info`): a reload starts another, counting from 0. */
export interface HaproxyProcess {
  pid: number;
  uptimeSeconds: number;
}

export interface BackendCounters {
  process?: HaproxyProcess;
  /** false: the backend counts no HTTP requests (mode tcp), so nothing can judge its errors. */
  http?: boolean;
  /** By the load balancer's own server name. */
  servers: Map<string, ServerCounters>;
}

export interface FleetCounters {
  /** Load balancer host → fleet server name → counters. */
  read: Map<string, Map<string, ServerCounters>>;
  /** Load balancer host → the process that answered. */
  processes?: Map<string, HaproxyProcess>;
  /** Load balancers whose backend counts no HTTP requests (mode tcp). */
  withoutHttp?: string[];
  /** Load balancers that did not answer, with why. */
  failed: Map<string, string>;
}

/** The HAProxy Runtime API of one backend on one load balancer. */
export interface LoadBalancerDriver {
  /**
   * The backend's server names for address:port pairs (undefined where it has none), from one
   * read of the backend: at a thousand hosts, one command instead of two thousand.
   */
  findServers(targets: { address: string; port: number }[]): Promise<(string | undefined)[]>;
  setState(server: string, state: 'ready' | 'drain' | 'maint'): Promise<void>;
  /** Every server of the backend's status, by the load balancer's own server name, from one read. */
  statuses(): Promise<Map<string, ServerStatus>>;
  /** Every server of the backend's counters and the process counting them; gives up after `timeoutMs`. */
  counters(timeoutMs?: number): Promise<BackendCounters>;
}
