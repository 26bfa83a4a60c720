// Where an app container's ports are published on its host (container.bind), and where the
// action's health probe, which runs on the host itself over SSH, then reaches them. Pure.

/**
 * Docker's port binding for `hostPort` on a host reached at `host`: `bind: host` means that very
 * address; no bind, no HostIp (Docker's default: every interface, IPv4 and IPv6).
 */
export function portBinding(bind: string | undefined, host: string, hostPort: number): { HostIp?: string; HostPort: string } {
  const HostPort = String(hostPort);
  if (bind === undefined) return { HostPort };
  return { HostIp: bind === 'host' ? host : bind, HostPort };
}

/**
 * The address a probe from the host itself connects to: loopback when the port is published on
 * every interface, else the one address it is published on (it does not answer on loopback).
 */
export function probeAddress(hostIp: string | undefined): string {
  if (!hostIp || hostIp === '0.0.0.0') return '127.0.0.1';
  if (hostIp === '::') return '::1';
  return hostIp;
}

/** The HostIp that HostConfig.PortBindings (as the engine reports it) gives `hostPort`. */
export function publishedOn(portBindings: unknown, hostPort: number): string | undefined {
  const bindings = Object.values((portBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>);
  return bindings.flatMap((list) => list ?? []).find((binding) => binding.HostPort === String(hostPort))?.HostIp;
}
