// The container each role runs: the same spec for master and backup but for name and host port,
// and the labels that let a later deploy read what is running. Pure.
import type { EnvironmentConfig, PortsConfig, RoleConfig } from '../config/schema.js';
import { LABELS, type ContainerSpec, type OneOffSpec, type Release, type Role, type RoleSpec, type Slot } from './ports.js';

export interface SpecContext {
  app: string;
  environment: EnvironmentConfig;
  /** Values of container.secrets, read from the step's environment. */
  secrets: Record<string, string>;
  runUrl: string;
  now: () => Date;
}

export const containerName = (app: string, role: Role) => (role === 'master' ? app : `${app}-backup`);
export const lockName = (app: string) => `${app}-deploy-lock`;
/** Where a no-gap replacement puts the old container, still serving, while the new one takes the role's name. */
export const oldName = (app: string, role: Role) => `${containerName(app, role)}-old`;
/** The host port of a role's slot: its own port (a) or its spare (b). */
export const slotPort = (ports: PortsConfig, role: Role, slot: Slot = 'a') => (slot === 'b' ? ports[`${role}-spare`] : ports[role]);
/** Where an adopted container waits, stopped, until the rollout that replaced it has succeeded. */
export const asideName = (app: string, role: Role) => `${containerName(app, role)}-adopted`;

/** What a one-off container is for; its name is APP-PURPOSE, one at a time per host. */
export type OneOffPurpose = 'release-command' | 'run';
export const oneOffName = (app: string, purpose: OneOffPurpose) => `${app}-${purpose}`;

/** A one-off container of `release`: the app's environment and volumes, and `command`. */
export function oneOffSpec(ctx: SpecContext, purpose: OneOffPurpose, release: Release, command: string[]): OneOffSpec {
  const { container } = ctx.environment;
  return {
    name: oneOffName(ctx.app, purpose),
    release,
    command,
    env: { ...container.env, ...ctx.secrets },
    volumes: container.volumes,
    init: container.init,
    labels: { ...releaseLabels(ctx, release), [LABELS.oneOff]: purpose },
  };
}

/** What every container of a release carries: whose, where, which release, when and by which run. */
function releaseLabels(ctx: SpecContext, release: Release): Record<string, string> {
  return {
    [LABELS.app]: ctx.app,
    [LABELS.environment]: ctx.environment.name,
    [LABELS.version]: release.version,
    [LABELS.digest]: release.digest,
    [LABELS.deployedAt]: ctx.now().toISOString(),
    [LABELS.runUrl]: ctx.runUrl,
  };
}

/** A container of a role beside the web role: its own command, variables and stop timeout; `secrets`: the role's (container.secrets and its own). */
export function roleSpec(ctx: SpecContext, role: RoleConfig, name: string, release: Release): RoleSpec {
  const { container } = ctx.environment;
  return {
    name,
    role: role.name,
    release,
    command: role.command,
    env: { ...role.env, ...ctx.secrets },
    volumes: container.volumes,
    restart: container.restart,
    stopTimeout: role.stopTimeout,
    init: container.init,
    ready: role.ready,
    labels: { ...releaseLabels(ctx, release), [LABELS.role]: role.name, ...historyLabel(release) },
  };
}

const historyLabel = (release: Release): Record<string, string> => (release.history?.length ? { [LABELS.history]: release.history.join(' ') } : {});

export function containerSpec(ctx: SpecContext, role: Role, release: Release, slot: Slot = 'a'): ContainerSpec {
  const { container, ports } = ctx.environment;
  return {
    name: containerName(ctx.app, role),
    role,
    release,
    hostPort: slotPort(ports, role, slot),
    bind: container.bind,
    containerPort: container.port,
    env: { ...container.env, ...ctx.secrets },
    volumes: container.volumes,
    restart: container.restart,
    stopTimeout: container['stop-timeout'],
    init: container.init,
    labels: {
      ...releaseLabels(ctx, release),
      [LABELS.role]: role,
      ...(slot === 'b' ? { [LABELS.slot]: slot } : {}),
      ...historyLabel(release),
    },
  };
}
